"""What bench_api.py measures with: phases (a run of one endpoint, with its CPU per request),
the runner that makes them (closed loop by wrk or Python, open loop by Python, each metered), their
printing, and the small checks and figures both the main run and the argon2 sweep use.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import httpx  # noqa: E402
import loadgen  # noqa: E402
from loadgen import Bodies, ConstantBodies, Result  # noqa: E402
from stack import CpuMeter, Gunicorn, Stack, worker_cpu  # noqa: E402

MAX_ERROR_RATE = 0.01
# A closed-loop round in which one gunicorn process did less than this share of the busiest one's
# work is run again, up to STARVED_RETRIES times. gunicorn's processes share one listening socket,
# and which of them accepts the burst of connections a load generator opens at once is a race: now
# and then one got (nearly) all of them, and the round measured half the machine at half speed
# (one worker 0.8 s of CPU and the other 4.0 s over the same round, on the ceilings or on the app
# at random). Such a round measures the race, not the server. Open-loop runs open their
# connections one by one as the requests come, and are not affected.
STARVED = 0.5
STARVED_RETRIES = 3


# -- phases ---------------------------------------------------------------------------------------


@dataclass
class Phase:
    result: Result
    cpu_ms: dict[str, float]  # per successful request; busy_pct/steal_pct: whole machine


def combine(name: str, phases: list[Phase]) -> Phase:
    """Several runs (rounds) of one endpoint as one: summed counts, pooled latencies."""
    results = [p.result for p in phases]
    first = results[0]
    out = Result(
        name, first.mode, first.generator, first.connections,
        sum(r.duration for r in results), target_rate=first.target_rate,
    )  # fmt: skip
    out.completed = sum(r.completed for r in results)
    out.errors = sum(r.errors for r in results)
    for r in results:
        for k, v in r.statuses.items():
            out.statuses[k] = out.statuses.get(k, 0) + v
    out.rps = out.completed / out.duration if out.duration else 0.0
    out.exhausted = any(r.exhausted for r in results)
    out.note = "; ".join(sorted({r.note for r in results if r.note}))
    pooled = sorted(x for r in results for x in r.latencies)
    weights = [r.completed for r in results]
    if pooled:
        loadgen.fill_latency(out, pooled)
    elif sum(weights):  # wrk gives percentiles per run only: their request-weighted mean
        out.p50_ms = sum(r.p50_ms * w for r, w in zip(results, weights, strict=True)) / sum(weights)
        out.p99_ms = sum(r.p99_ms * w for r, w in zip(results, weights, strict=True)) / sum(weights)
        out.max_ms = max(r.max_ms for r in results)
    cpu: dict[str, float] = {}
    total = sum(weights) or 1
    for p, w in zip(phases, weights, strict=True):
        for k, v in p.cpu_ms.items():
            if not math.isnan(v):
                cpu[k] = cpu.get(k, 0.0) + v * w / total
    return Phase(out, cpu)


class Runner:
    def __init__(self, stack: Stack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.meter = CpuMeter(stack.roots)
        self.use_wrk = args.loadgen == "wrk" or (
            args.loadgen == "auto" and loadgen.wrk_path() is not None
        )
        if args.loadgen == "wrk" and loadgen.wrk_path() is None:
            raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install wrk)")
        self.generator = "wrk" if self.use_wrk else "python"
        self.phases: list[Phase] = []
        self.starved = 0  # closed-loop rounds run again (see STARVED)
        self.rps_hint = 3000.0  # upper bound on any endpoint's rps, for sizing wrk's body file

    def _server(self, kind: str) -> Gunicorn:
        server = self.stack.ceiling if kind in ("constant", "insert") else self.stack.app
        assert server is not None
        return server

    def _target(self, kind: str) -> tuple[int, str, dict[str, str], set[int]]:
        stack = self.stack
        headers = stack.tenant.headers  # sent to the ceilings too, so requests are the same size
        if kind in ("constant", "insert"):
            assert stack.ceiling is not None
            return (stack.ceiling.port, f"/{kind}", headers, {200 if kind == "constant" else 201})
        assert stack.app is not None
        base = f"/v2/Services/{stack.tenant.service_sid}"
        if kind == "start":
            return (stack.app.port, f"{base}/Verifications", headers, {201})
        return (stack.app.port, f"{base}/VerificationCheck", headers, {200})

    def _measure(self, run: Callable[[], Result], warmup: float, show: bool = True) -> Phase:
        before = self.meter.snapshot()
        result = run()
        spent = CpuMeter.delta(before, self.meter.snapshot())
        machine = spent.pop("_total"), spent.pop("_idle"), spent.pop("_steal")
        # CPU over warm-up + measured window, per request of both, approximately.
        total = result.completed * (1 + warmup / max(result.duration, 1e-9))
        cpu_ms = {k: v * 1000 / total if total else math.nan for k, v in spent.items()}
        cpu_ms["busy_pct"] = 100 * (1 - machine[1] / machine[0]) if machine[0] else math.nan
        cpu_ms["steal_pct"] = 100 * machine[2] / machine[0] if machine[0] else math.nan
        # What the rest of the machine (other users' processes) took meanwhile.
        ours = sum(spent.values())
        busy = machine[0] - machine[1]
        cpu_ms["others_pct"] = 100 * max(0.0, busy - ours) / machine[0] if machine[0] else math.nan
        phase = Phase(result, cpu_ms)
        self.phases.append(phase)
        if show:
            print_phase(phase)
        return phase

    def closed(
        self, name: str, kind: str, bodies: Bodies, duration: float, warmup: float | None = None
    ) -> Phase:
        port, path, headers, expect = self._target(kind)
        args = self.args
        warm = args.warmup if warmup is None else warmup
        if self.use_wrk:
            duration = max(1, round(duration))

            def run() -> Result:
                return loadgen.closed_loop_wrk(
                    name, port, path, headers, bodies,
                    connections=args.connections, warmup=warm, duration=duration,
                    expect_rps=self.rps_hint, workdir=self.stack.workdir,
                )  # fmt: skip
        else:

            def run() -> Result:
                return loadgen.closed_loop_python(
                    name, port, path, headers, bodies,
                    connections=args.connections, warmup=warm, duration=duration, expect=expect,
                )  # fmt: skip

        root = self._server(kind).pid
        for attempt in range(1 + STARVED_RETRIES):
            before = worker_cpu(root)
            phase = self._measure(run, warm, show=False)
            after = worker_cpu(root)
            spent = [after[pid] - before[pid] for pid in before if pid in after]
            shares = "/".join(f"{x:.1f}" for x in spent)
            if len(spent) < 2 or min(spent) >= STARVED * max(spent):
                break
            if attempt == STARVED_RETRIES:
                phase.result.note = f"one server process starved (CPU s {shares})"
                break
            self.phases.pop()
            self.starved += 1
            print(f"  {name}: one server process starved (CPU s {shares}), run again", flush=True)
        print_phase(phase)
        return phase

    def open(self, name: str, kind: str, bodies: Bodies, rate: float, duration: float) -> Phase:
        port, path, headers, expect = self._target(kind)
        args = self.args

        def run() -> Result:
            return loadgen.open_loop(
                name, port, path, headers, bodies,
                rate=rate, connections=args.open_connections, warmup=args.warmup,
                duration=duration, expect=expect,
            )  # fmt: skip

        return self._measure(run, args.warmup)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def print_phase(phase: Phase) -> None:
    r = phase.result
    cpu = phase.cpu_ms
    rate = fmt(r.target_rate, 0) if r.target_rate else "max"
    flags = []
    if r.error_rate > MAX_ERROR_RATE:
        flags.append(f"ERRORS {r.statuses}")
    if r.exhausted:
        flags.append("BODIES RAN OUT")
    if r.note:
        flags.append(r.note)
    web = cpu.get("app", 0.0) + cpu.get("ceiling", 0.0)
    print(
        f"  {r.name:<26} {r.mode:<6} {rate:>6} {fmt(r.rps):>8} {fmt(r.p50_ms, 2):>8} "
        f"{fmt(r.p99_ms, 2):>8} {fmt(r.max_ms, 1):>8} {r.errors:>5}   "
        f"{fmt(web, 2):>6} {fmt(cpu.get('postgres'), 2):>6} {fmt(cpu.get('redis'), 2):>6} "
        f"{fmt(cpu.get('client'), 2):>6} {fmt(cpu.get('busy_pct'), 0):>5} "
        f"{fmt(cpu.get('others_pct'), 0):>6}" + (("  " + "; ".join(flags)) if flags else ""),
        flush=True,
    )


def print_header() -> None:
    print(
        f"  {'phase':<26} {'mode':<6} {'rate/s':>6} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'err':>5}   {'CPU ms per request':^27} {'machine':^12}\n"
        f"  {'':<26} {'':<6} {'':>6} {'':>8} {'':>8} {'':>8} {'':>8} {'':>5}   "
        f"{'web':>6} {'pg':>6} {'redis':>6} {'client':>6} {'busy%':>5} {'others':>6}",
        flush=True,
    )


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def valid(*phases: Phase) -> bool:
    return all(p.result.error_rate <= MAX_ERROR_RATE and not p.result.exhausted for p in phases)


def constant_bodies() -> ConstantBodies:
    return ConstantBodies("To=%2B14155550123")


def stack_cpu(phase: Phase) -> float:
    """CPU ms per request of the servers (web + PostgreSQL + Redis), client excluded."""
    cpu = phase.cpu_ms
    return sum(cpu.get(k, 0.0) for k in ("app", "ceiling", "postgres", "redis"))


def dump(phase: Phase) -> dict[str, object]:
    out = asdict(phase.result)
    out.pop("latencies")
    return {**out, "cpu_ms": phase.cpu_ms}


def sanity(stack: Stack, starts: Bodies) -> None:
    """One start and one wrong check by hand, so that a broken setup fails loudly and early."""
    assert stack.app is not None
    base = f"http://127.0.0.1:{stack.app.port}/v2/Services/{stack.tenant.service_sid}"
    body = starts.next()
    assert body is not None
    to = body.split("&")[0].split("=", 1)[1].replace("%2B", "+")
    auth = (stack.tenant.account_sid, stack.tenant.auth_token)
    r = httpx.post(f"{base}/Verifications", data={"To": to, "Channel": "sms"}, auth=auth)
    if r.status_code != 201:
        raise SystemExit(f"sanity start failed: {r.status_code} {r.text}")
    r = httpx.post(f"{base}/VerificationCheck", data={"To": to, "Code": "0000000"}, auth=auth)
    if r.status_code != 200 or r.json().get("status") != "pending":
        raise SystemExit(f"sanity check failed: {r.status_code} {r.text}")
