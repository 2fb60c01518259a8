"""Throughput and latency of starting and checking verifications, as ratios to ceilings of the same run.

    .venv/bin/python bench/bench_api.py                  # the main run (about 3 minutes)
    .venv/bin/python bench/bench_api.py --argon2-sweep   # check cost for several argon2 parameter sets

It builds everything it needs in a temporary directory and removes it at the end: a private PostgreSQL
cluster (tests/servers.py), a redis-server, the schema, one account and service. It then runs two
gunicorn servers with the same settings (workers, threads, worker class): the Verify app
(``verify.app:create_app_from_env()``) and bench/ceiling_app.py, whose two endpoints are the
ceilings: a constant response, and a one-row insert into the same database through the app's own
engine settings. No RQ worker runs: a start only enqueues a job in Redis (sending is never inside
the request), so the worker's work is not part of what is measured.

Every figure is printed next to its ratio against the ceilings measured in the same run: the machine
is shared and noisy, so absolute numbers from different runs are not comparable. See
bench/README.md and docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import httpx  # noqa: E402
import loadgen  # noqa: E402
from loadgen import Bodies, ConstantBodies, Result  # noqa: E402
from sqlalchemy import text  # noqa: E402
from stack import (  # noqa: E402
    WRONG_CHECKS_PER_VERIFICATION,
    Argon2Params,
    CpuMeter,
    Numbers,
    Stack,
)

from verify.config import Settings  # noqa: E402
from verify.domain.codes import CodeHasher  # noqa: E402

DEFAULT_SWEEP = "1:512,1:1024,1:4096,2:4096,1:19456,2:19456"
THROUGHPUT_TARGET = 0.5
P99_TARGET = 3.0
MAX_ERROR_RATE = 0.01


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
        self.rps_hint = 3000.0  # upper bound on any endpoint's rps, for sizing wrk's body file

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

        return self._measure(run, warm)

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


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def print_phase(phase: Phase) -> None:
    r = phase.result
    cpu = phase.cpu_ms
    rate = _fmt(r.target_rate, 0) if r.target_rate else "max"
    flags = []
    if r.error_rate > MAX_ERROR_RATE:
        flags.append(f"ERRORS {r.statuses}")
    if r.exhausted:
        flags.append("BODIES RAN OUT")
    if r.note:
        flags.append(r.note)
    web = cpu.get("app", 0.0) + cpu.get("ceiling", 0.0)
    print(
        f"  {r.name:<26} {r.mode:<6} {rate:>6} {_fmt(r.rps):>8} {_fmt(r.p50_ms, 2):>8} "
        f"{_fmt(r.p99_ms, 2):>8} {_fmt(r.max_ms, 1):>8} {r.errors:>5}   "
        f"{_fmt(web, 2):>6} {_fmt(cpu.get('postgres'), 2):>6} {_fmt(cpu.get('redis'), 2):>6} "
        f"{_fmt(cpu.get('client'), 2):>6} {_fmt(cpu.get('busy_pct'), 0):>5} "
        f"{_fmt(cpu.get('others_pct'), 0):>6}" + (("  " + "; ".join(flags)) if flags else ""),
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


# -- argon2 in-process timings ------------------------------------------------------------------


def argon2_micro(params: Argon2Params, budget: float = 0.6) -> dict[str, float]:
    """Microseconds per hash and per verify call in this process; and verifies/s on 2 threads."""
    hasher = CodeHasher(
        [secrets.token_bytes(32)],
        time_cost=params.time_cost,
        memory_cost_kib=params.memory_cost_kib,
        parallelism=params.parallelism,
    )
    sid = "VE" + "0" * 32
    stored = hasher.hash(sid, "123456")

    def per_call(fn: Callable[[], object]) -> float:
        samples = []
        for _ in range(3):
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < budget / 3:
                fn()
                n += 1
            samples.append((time.perf_counter() - t0) / n)
        return sorted(samples)[1] * 1e6

    hash_us = per_call(lambda: hasher.hash(sid, "123456"))
    verify_us = per_call(lambda: hasher.verify(sid, "654321", stored))

    counts = [0, 0]
    stop = time.perf_counter() + budget / 2

    def spin(i: int) -> None:
        while time.perf_counter() < stop:
            hasher.verify(sid, "654321", stored)
            counts[i] += 1

    threads = [threading.Thread(target=spin, args=(i,)) for i in range(2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    two_thread = sum(counts) / (time.perf_counter() - t0)
    return {
        "hash_us": hash_us,
        "verify_us": verify_us,
        "verify_per_s_1thread": 1e6 / verify_us,
        "verify_per_s_2threads": two_thread,
    }


# -- the runs -------------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def _valid(*phases: Phase) -> bool:
    return all(p.result.error_rate <= MAX_ERROR_RATE and not p.result.exhausted for p in phases)


def _constant() -> ConstantBodies:
    return ConstantBodies("To=%2B14155550123")


def _warm_up(stack: Stack, runner: Runner, starts: Bodies, seconds: float) -> None:
    """Unmeasured traffic to every endpoint first: imports, caches, pools, prepared statements."""
    print(f"  (warm-up: {seconds:g} s closed loop on each endpoint, not counted)", flush=True)
    for kind in ("constant", "insert"):
        runner.closed(f"warm-up {kind}", kind, _constant(), seconds, warmup=0)
    runner.closed("warm-up start", "start", starts, seconds, warmup=0)
    runner.closed("warm-up check", "check", stack.check_bodies(runner.args.check_code), seconds, 0)


def main_run(stack: Stack, runner: Runner, args: argparse.Namespace, numbers: Numbers) -> dict:
    starts = numbers.start_bodies()
    default = Argon2Params(args.argon2_time_cost, args.argon2_memory_kib, args.argon2_parallelism)
    stack.start_app(default)
    _sanity(stack, starts)
    micro = argon2_micro(default)
    print(
        f"argon2id {default.label}: hash {micro['hash_us']:.0f} us, verify {micro['verify_us']:.0f} "
        f"us per call in-process; {micro['verify_per_s_2threads']:.0f} verifies/s on 2 threads\n",
        flush=True,
    )
    print_header()
    _warm_up(stack, runner, starts, args.warmup_all)
    rounds, open_rounds = args.rounds, args.open_rounds
    slice_closed = args.duration / rounds
    slice_open = args.duration / open_rounds

    # Maximum throughput: closed loop, the four endpoints in turn, repeated in rounds, so that the
    # machine's drift lands on the ceilings and the app alike.
    by_kind: dict[str, list[Phase]] = {"constant": [], "insert": [], "start": [], "check": []}
    for i in range(rounds):
        print(f"  -- closed loop, round {i + 1}/{rounds}", flush=True)
        for kind in by_kind:
            if kind == "start":
                bodies: Bodies = starts
            elif kind == "check":  # every verification made so far that was never checked
                bodies = stack.check_bodies(args.check_code)
            else:
                bodies = _constant()
            phase = runner.closed(f"{kind} #{i + 1}", kind, bodies, slice_closed)
            by_kind[kind].append(phase)
            if kind == "constant":
                runner.rps_hint = max(runner.rps_hint, phase.result.rps)
    closed = {k: combine(k if k in ("start", "check") else f"{k} ceiling", v)
              for k, v in by_kind.items()}  # fmt: skip

    # Latency: open loop at half of each endpoint's own maximum (or of the insert ceiling's), with
    # the two ceilings at the very same rate, interleaved in rounds.
    def half(kind: str) -> float:
        if args.rate_basis == "target":  # half the throughput the target asks for
            return THROUGHPUT_TARGET * closed["insert"].result.rps / 2
        basis = closed[kind] if args.rate_basis == "own" else closed["insert"]
        return basis.result.rps / 2

    opened: dict[str, dict[str, Phase]] = {}
    open_rounds_by_app: dict[str, dict[str, list[Phase]]] = {}
    for app_kind in ("start", "check"):
        rate = half(app_kind)
        runs: dict[str, list[Phase]] = {"constant": [], "insert": [], app_kind: []}
        bodies = starts if app_kind == "start" else stack.check_bodies(args.check_code)
        for i in range(open_rounds):
            print(f"  -- open loop at {rate:.0f}/s ({app_kind}/2), round {i + 1}/{open_rounds}")
            for kind in runs:
                src = bodies if kind == app_kind else _constant()
                runs[kind].append(runner.open(f"{kind} #{i + 1}", kind, src, rate, slice_open))
        opened[app_kind] = {
            kind: combine(f"{kind} @ {app_kind}/2" + (" ceiling" if kind != app_kind else ""), v)
            for kind, v in runs.items()
        }
        open_rounds_by_app[app_kind] = runs

    summary = [*closed.values(), *opened["start"].values(), *opened["check"].values()]
    print(
        "\nSummary (closed: all rounds summed; open: latencies pooled over rounds; CPU per request)"
    )
    print_header()
    for phase in summary:
        print_phase(phase)

    c, s_o, c_o = closed, opened["start"], opened["check"]
    rps = {k: c[k].result.rps for k in c}
    ratios = {
        "start_rps/insert_rps": _ratio(rps["start"], rps["insert"]),
        "check_rps/insert_rps": _ratio(rps["check"], rps["insert"]),
        "start_rps/constant_rps": _ratio(rps["start"], rps["constant"]),
        "check_rps/constant_rps": _ratio(rps["check"], rps["constant"]),
        "insert_rps/constant_rps": _ratio(rps["insert"], rps["constant"]),
        "start_p99/insert_p99": _ratio(s_o["start"].result.p99_ms, s_o["insert"].result.p99_ms),
        "check_p99/insert_p99": _ratio(c_o["check"].result.p99_ms, c_o["insert"].result.p99_ms),
        "start_p99/constant_p99": _ratio(s_o["start"].result.p99_ms, s_o["constant"].result.p99_ms),
        "check_p99/constant_p99": _ratio(c_o["check"].result.p99_ms, c_o["constant"].result.p99_ms),
        "start_p50/insert_p50": _ratio(s_o["start"].result.p50_ms, s_o["insert"].result.p50_ms),
        "check_p50/insert_p50": _ratio(c_o["check"].result.p50_ms, c_o["insert"].result.p50_ms),
    }
    # Robust companions. p99: the ratio within each round (ceiling and app measured back to back),
    # median over rounds: a round spoiled by other users of the machine does not decide it.
    # Throughput: CPU per request (web + PostgreSQL + Redis), which contention disturbs far less
    # than rps; on a CPU-bound machine capacity is inversely proportional to it.
    for app_kind in ("start", "check"):
        runs = open_rounds_by_app[app_kind]
        for ceiling in ("insert", "constant"):
            per = [
                _ratio(a.result.p99_ms, b.result.p99_ms)
                for a, b in zip(runs[app_kind], runs[ceiling], strict=True)
            ]
            ratios[f"{app_kind}_p99/{ceiling}_p99 per round"] = per  # type: ignore[assignment]
            ratios[f"{app_kind}_p99/{ceiling}_p99 median"] = statistics.median(per)
        ratios[f"{app_kind}_cpu_capacity/insert"] = _ratio(
            _stack_cpu(c["insert"]), _stack_cpu(c[app_kind])
        )
        ratios[f"{app_kind}_cpu_capacity/constant"] = _ratio(
            _stack_cpu(c["constant"]), _stack_cpu(c[app_kind])
        )
    per_round = {k: [round(p.result.rps) for p in v] for k, v in by_kind.items()}
    targets = {
        "start throughput >= 0.5 x insert ceiling": ratios["start_rps/insert_rps"] >= THROUGHPUT_TARGET,
        "check throughput >= 0.5 x insert ceiling": ratios["check_rps/insert_rps"] >= THROUGHPUT_TARGET,
        "start p99 <= 3 x insert ceiling p99 (pooled)": ratios["start_p99/insert_p99"] <= P99_TARGET,
        "check p99 <= 3 x insert ceiling p99 (pooled)": ratios["check_p99/insert_p99"] <= P99_TARGET,
        "start p99 <= 3 x insert ceiling p99 (median of rounds)":
            ratios["start_p99/insert_p99 median"] <= P99_TARGET,
        "check p99 <= 3 x insert ceiling p99 (median of rounds)":
            ratios["check_p99/insert_p99 median"] <= P99_TARGET,
    }  # fmt: skip
    valid = _valid(*summary)

    print("\nRatios, same run (rps per round: " + "; ".join(
        f"{k} {v}" for k, v in per_round.items()) + ")")  # fmt: skip
    print(f"  {'':<40} {'vs insert':>10} {'vs constant':>12}")
    rs, rc = half("start"), half("check")
    rows = [
        ("start throughput (rps)", "start_rps/insert_rps", "start_rps/constant_rps"),
        ("check throughput (rps)", "check_rps/insert_rps", "check_rps/constant_rps"),
        ("start capacity from CPU/request", "start_cpu_capacity/insert",
         "start_cpu_capacity/constant"),
        ("check capacity from CPU/request", "check_cpu_capacity/insert",
         "check_cpu_capacity/constant"),
        (f"start p99 @ {rs:.0f}/s, pooled", "start_p99/insert_p99", "start_p99/constant_p99"),
        (f"start p99 @ {rs:.0f}/s, median of rounds", "start_p99/insert_p99 median",
         "start_p99/constant_p99 median"),
        (f"check p99 @ {rc:.0f}/s, pooled", "check_p99/insert_p99", "check_p99/constant_p99"),
        (f"check p99 @ {rc:.0f}/s, median of rounds", "check_p99/insert_p99 median",
         "check_p99/constant_p99 median"),
        (f"start p50 @ {rs:.0f}/s", "start_p50/insert_p50", None),
        (f"check p50 @ {rc:.0f}/s", "check_p50/insert_p50", None),
        ("insert ceiling throughput", None, "insert_rps/constant_rps"),
    ]  # fmt: skip
    for label, a, b in rows:
        print(
            f"  {label:<40} {_fmt(ratios[a], 2) if a else '':>10} "
            f"{_fmt(ratios[b], 2) if b else '':>12}"
        )
    for app_kind in ("start", "check"):
        per = ratios[f"{app_kind}_p99/insert_p99 per round"]
        print(f"  ({app_kind} p99 / insert p99 per round: {', '.join(_fmt(x, 2) for x in per)})")  # type: ignore[union-attr]
    print("\nTargets:")
    for label, ok in targets.items():
        print(f"  {label:<56} {'PASS' if ok else 'FAIL'}")
    if not valid:
        print(
            "  (a phase had more than 1% errors or ran out of bodies: these figures are not valid)"
        )
    return {
        "argon2": asdict(default),
        "argon2_micro": micro,
        "summary": [_dump(p) for p in summary],
        "phases": [_dump(p) for p in runner.phases],
        "rates": {"start_open": half("start"), "check_open": half("check")},
        "rps_per_round": per_round,
        "ratios": ratios,
        "targets": targets,
        "valid": valid,
    }


def _stack_cpu(phase: Phase) -> float:
    """CPU ms per request of the servers (web + PostgreSQL + Redis), client excluded."""
    cpu = phase.cpu_ms
    return sum(cpu.get(k, 0.0) for k in ("app", "ceiling", "postgres", "redis"))


def _dump(phase: Phase) -> dict[str, object]:
    out = asdict(phase.result)
    out.pop("latencies")
    return {**out, "cpu_ms": phase.cpu_ms}


def sweep_run(stack: Stack, runner: Runner, args: argparse.Namespace, numbers: Numbers) -> dict:
    """Per argon2 setting: restart the app, then insert ceiling, start, check (closed loop), then
    the insert ceiling and check at half the check maximum (open loop). Each setting is compared with
    the insert ceiling measured right next to it."""
    sets = [Argon2Params.parse(s) for s in args.argon2_sets.split(",")]
    starts = numbers.start_bodies()
    micro = {}
    print("argon2id in-process cost (one thread; and verifies/s with two threads):")
    for params in sets:
        micro[params] = argon2_micro(params)
        m = micro[params]
        print(
            f"  {params.label:<26} hash {m['hash_us']:>7.0f} us  verify {m['verify_us']:>7.0f} us"
            f"  {m['verify_per_s_2threads']:>6.0f} verifies/s on 2 threads",
            flush=True,
        )
    print()
    print_header()
    d = args.duration
    const = runner.closed("constant ceiling", "constant", _constant(), d)
    runner.rps_hint = max(runner.rps_hint, const.result.rps)
    rows = []
    for params in sets:
        stack.start_app(params)
        print(f"  -- argon2id {params.label}", flush=True)
        runner.closed("warm-up start", "start", starts, 2, warmup=0)
        insert = runner.closed("insert ceiling", "insert", _constant(), d)
        start = runner.closed("start", "start", starts, d)
        checks = stack.check_bodies(args.check_code)
        check = runner.closed("check", "check", checks, d)
        rate = check.result.rps / 2
        insert_o = runner.open("insert @ check/2", "insert", _constant(), rate, d)
        check_o = runner.open("check @ check/2", "check", checks, rate, d)
        rows.append((params, insert, start, check, insert_o, check_o))

    print(f"\nargon2 sweep (constant ceiling {const.result.rps:.0f} rps; ratios against the insert "
          "ceiling measured next to each setting)")  # fmt: skip
    print(
        "  CPU = web + PostgreSQL CPU ms per request, measured; argon2 share = the in-process hash "
        "(start) or verify (check) time over that CPU"
    )
    print(
        f"  {'argon2id':<26} {'hash':>6} {'verify':>6} {'start':>6} {'check':>6} {'start':>6} "
        f"{'check':>6} {'check':>6} {'start':>6} {'check':>6} {'check':>7} {'ins':>6} {'p99':>6}\n"
        f"  {'':<26} {'us':>6} {'us':>6} {'/ins':>6} {'/ins':>6} {'CPU':>6} {'CPU':>6} {'/const':>6} "
        f"{'argon':>6} {'argon':>6} {'p99 ms':>7} {'p99 ms':>6} {'ratio':>6}"
    )
    table = []
    for params, insert, start, check, insert_o, check_o in rows:
        m = micro[params]
        ins = insert.result.rps
        start_cpu = start.cpu_ms.get("app", math.nan) + start.cpu_ms.get("postgres", math.nan)
        check_cpu = check.cpu_ms.get("app", math.nan) + check.cpu_ms.get("postgres", math.nan)
        entry = {
            "argon2": asdict(params),
            "hash_us": m["hash_us"],
            "verify_us": m["verify_us"],
            "insert_rps": ins,
            "start_rps/insert_rps": _ratio(start.result.rps, ins),
            "check_rps/insert_rps": _ratio(check.result.rps, ins),
            "check_rps/constant_rps": _ratio(check.result.rps, const.result.rps),
            "start_cpu_ms": start_cpu,
            "check_cpu_ms": check_cpu,
            "insert_cpu_ms": insert.cpu_ms.get("ceiling", math.nan)
            + insert.cpu_ms.get("postgres", math.nan),
            "argon2_share_of_start": m["hash_us"] / 1000 / start_cpu,
            "argon2_share_of_check": m["verify_us"] / 1000 / check_cpu,
            "check_p99_ms": check_o.result.p99_ms,
            "insert_p99_ms": insert_o.result.p99_ms,
            "check_p99/insert_p99": _ratio(check_o.result.p99_ms, insert_o.result.p99_ms),
            "valid": _valid(start, check, insert_o, check_o),
        }
        table.append(entry)
        print(
            f"  {params.label:<26} {m['hash_us']:>6.0f} {m['verify_us']:>6.0f} "
            f"{_fmt(entry['start_rps/insert_rps'], 2):>6} {_fmt(entry['check_rps/insert_rps'], 2):>6} "
            f"{_fmt(start_cpu, 1):>6} {_fmt(check_cpu, 1):>6} "
            f"{_fmt(entry['check_rps/constant_rps'], 3):>6} "
            f"{entry['argon2_share_of_start']:>6.0%} {entry['argon2_share_of_check']:>6.0%} "
            f"{_fmt(check_o.result.p99_ms, 1):>7} {_fmt(insert_o.result.p99_ms, 1):>6} "
            f"{_fmt(entry['check_p99/insert_p99'], 2):>6}"
            + ("" if entry["valid"] else "  (not valid: errors or bodies ran out)")
        )
    inserts = [row[1] for row in rows]
    print(
        "  insert ceiling next to each setting: "
        + ", ".join(f"{p.result.rps:.0f} rps" for p in inserts)
        + "; its CPU per request: "
        + ", ".join(
            f"{p.cpu_ms.get('ceiling', math.nan) + p.cpu_ms.get('postgres', math.nan):.1f}"
            for p in inserts
        )
        + " ms"
    )
    return {"sweep": table, "phases": [_dump(p) for p in runner.phases]}


def _sanity(stack: Stack, starts: Bodies) -> None:
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


def _describe(stack: Stack, runner: Runner, args: argparse.Namespace) -> dict[str, object]:
    assert stack.engine is not None
    with stack.engine.connect() as conn:
        pg_version = conn.execute(text("SHOW server_version")).scalar()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "gunicorn": f"{args.workers} workers x {args.threads} threads (gthread), same for all servers",
        "closed_loop": (
            f"{runner.generator}, {args.connections} connections, "
            + (
                f"{args.duration:g} s"
                if args.argon2_sweep
                else f"{args.rounds} rounds x {args.duration / args.rounds:g} s"
            )
            + f" per endpoint, each after {args.warmup:g} s warm-up"
        ),
        "open_loop": (
            f"python asyncio, {args.open_connections} connections, evenly spaced, latency from the "
            f"scheduled time; "
            + (
                f"{args.duration:g} s"
                if args.argon2_sweep
                else f"{args.open_rounds} rounds x {args.duration / args.open_rounds:g} s"
            )
            + f" per endpoint, each after {args.warmup:g} s warm-up"
        ),
        "check_code": args.check_code,
        "rate_basis": args.rate_basis,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--duration", type=float,
        help="measured seconds per endpoint and mode, split over the rounds (10; sweep: 5)",
    )  # fmt: skip
    p.add_argument("--warmup", type=float, default=1, help="warm-up seconds before each run (1)")
    p.add_argument(
        "--warmup-all", type=float, default=3,
        help="unmeasured seconds on each endpoint before the first measurement (3)",
    )  # fmt: skip
    p.add_argument("--rounds", type=int, default=2, help="closed-loop rounds (2)")
    p.add_argument("--open-rounds", type=int, default=3, help="open-loop rounds (3)")
    p.add_argument("--connections", type=int, default=64, help="closed-loop connections (64)")
    p.add_argument("--open-connections", type=int, default=64, help="open-loop connections (64)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers for every server (2)")
    p.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (4)")
    p.add_argument(
        "--loadgen", choices=("auto", "wrk", "python"), default="auto",
        help="closed-loop generator: wrk if installed (auto), or the Python client",
    )  # fmt: skip
    p.add_argument(
        "--check-code", choices=("wrong", "right"), default="wrong",
        help=f"wrong: {WRONG_CHECKS_PER_VERIFICATION} wrong codes per verification (default); "
        "right: one right code each (approves it)",
    )  # fmt: skip
    p.add_argument(
        "--rate-basis", choices=("own", "insert", "target"), default="own",
        help="open-loop rate: half the endpoint's own max (default), half the insert ceiling's, "
        "or half the throughput target (0.5 x the insert ceiling's)",
    )  # fmt: skip
    p.add_argument("--argon2-time-cost", type=int, default=Settings().argon2.time_cost)
    p.add_argument("--argon2-memory-kib", type=int, default=Settings().argon2.memory_cost_kib)
    p.add_argument("--argon2-parallelism", type=int, default=Settings().argon2.parallelism)
    p.add_argument("--argon2-sweep", action="store_true", help="measure several argon2 settings")
    p.add_argument(
        "--argon2-sets", default=DEFAULT_SWEEP,
        help=f"time:memory_kib[:parallelism],... for the sweep ({DEFAULT_SWEEP})",
    )  # fmt: skip
    p.add_argument("--json", type=Path, help="also write the results to this file")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 5.0 if args.argon2_sweep else 10.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    numbers = Numbers()
    with Stack(args, lift_abuse_limits=True) as stack:
        runner = Runner(stack, args)
        about = _describe(stack, runner, args)
        print("Verify API benchmark (ratios against ceilings measured in this same run)")
        for key, value in about.items():
            print(f"  {key:<15} {value}")
        print(flush=True)
        if args.argon2_sweep:
            out = sweep_run(stack, runner, args, numbers)
        else:
            out = main_run(stack, runner, args, numbers)
        out["about"] = {**about, "loadavg_after": os.getloadavg()}
        print(f"\nload average before {about['loadavg_before']}, after {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0 if args.argon2_sweep or out["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
