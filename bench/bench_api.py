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
import os
import platform
import statistics
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from argon2_sweep import DEFAULT_SWEEP, argon2_micro, sweep_run  # noqa: E402
from loadgen import Bodies  # noqa: E402
from phases import (  # noqa: E402
    Phase,
    Runner,
    combine,
    constant_bodies,
    dump,
    fmt,
    print_header,
    print_phase,
    ratio,
    sanity,
    stack_cpu,
    valid,
)
from sqlalchemy import text  # noqa: E402
from stack import WRONG_CHECKS_PER_VERIFICATION, Argon2Params, Numbers, Stack  # noqa: E402

from verify.config import Settings  # noqa: E402

THROUGHPUT_TARGET = 0.5
P99_TARGET = 3.0


# -- the runs -------------------------------------------------------------------------------------


def _warm_up(stack: Stack, runner: Runner, starts: Bodies, seconds: float) -> None:
    """Unmeasured traffic to every endpoint first: imports, caches, pools, prepared statements."""
    print(f"  (warm-up: {seconds:g} s closed loop on each endpoint, not counted)", flush=True)
    for kind in ("constant", "insert"):
        runner.closed(f"warm-up {kind}", kind, constant_bodies(), seconds, warmup=0)
    runner.closed("warm-up start", "start", starts, seconds, warmup=0)
    runner.closed("warm-up check", "check", stack.check_bodies(runner.args.check_code), seconds, 0)


def main_run(stack: Stack, runner: Runner, args: argparse.Namespace, numbers: Numbers) -> dict:
    starts = numbers.start_bodies()
    default = Argon2Params(args.argon2_time_cost, args.argon2_memory_kib, args.argon2_parallelism)
    stack.start_app(default)
    sanity(stack, starts)
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
                bodies = constant_bodies()
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
                src = bodies if kind == app_kind else constant_bodies()
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
        "start_rps/insert_rps": ratio(rps["start"], rps["insert"]),
        "check_rps/insert_rps": ratio(rps["check"], rps["insert"]),
        "start_rps/constant_rps": ratio(rps["start"], rps["constant"]),
        "check_rps/constant_rps": ratio(rps["check"], rps["constant"]),
        "insert_rps/constant_rps": ratio(rps["insert"], rps["constant"]),
        "start_p99/insert_p99": ratio(s_o["start"].result.p99_ms, s_o["insert"].result.p99_ms),
        "check_p99/insert_p99": ratio(c_o["check"].result.p99_ms, c_o["insert"].result.p99_ms),
        "start_p99/constant_p99": ratio(s_o["start"].result.p99_ms, s_o["constant"].result.p99_ms),
        "check_p99/constant_p99": ratio(c_o["check"].result.p99_ms, c_o["constant"].result.p99_ms),
        "start_p50/insert_p50": ratio(s_o["start"].result.p50_ms, s_o["insert"].result.p50_ms),
        "check_p50/insert_p50": ratio(c_o["check"].result.p50_ms, c_o["insert"].result.p50_ms),
    }
    # Robust companions. p99: the ratio within each round (ceiling and app measured back to back),
    # median over rounds: a round spoiled by other users of the machine does not decide it.
    # Throughput: CPU per request (web + PostgreSQL + Redis), which contention disturbs far less
    # than rps; on a CPU-bound machine capacity is inversely proportional to it.
    for app_kind in ("start", "check"):
        runs = open_rounds_by_app[app_kind]
        for ceiling in ("insert", "constant"):
            per = [
                ratio(a.result.p99_ms, b.result.p99_ms)
                for a, b in zip(runs[app_kind], runs[ceiling], strict=True)
            ]
            ratios[f"{app_kind}_p99/{ceiling}_p99 per round"] = per  # type: ignore[assignment]
            ratios[f"{app_kind}_p99/{ceiling}_p99 median"] = statistics.median(per)
        ratios[f"{app_kind}_cpu_capacity/insert"] = ratio(
            stack_cpu(c["insert"]), stack_cpu(c[app_kind])
        )
        ratios[f"{app_kind}_cpu_capacity/constant"] = ratio(
            stack_cpu(c["constant"]), stack_cpu(c[app_kind])
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
    all_valid = valid(*summary)

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
            f"  {label:<40} {fmt(ratios[a], 2) if a else '':>10} "
            f"{fmt(ratios[b], 2) if b else '':>12}"
        )
    for app_kind in ("start", "check"):
        per = ratios[f"{app_kind}_p99/insert_p99 per round"]
        print(f"  ({app_kind} p99 / insert p99 per round: {', '.join(fmt(x, 2) for x in per)})")  # type: ignore[union-attr]
    print("\nTargets:")
    for label, ok in targets.items():
        print(f"  {label:<56} {'PASS' if ok else 'FAIL'}")
    if not all_valid:
        print(
            "  (a phase had more than 1% errors or ran out of bodies: these figures are not valid)"
        )
    return {
        "argon2": asdict(default),
        "argon2_micro": micro,
        "summary": [dump(p) for p in summary],
        "phases": [dump(p) for p in runner.phases],
        "rates": {"start_open": half("start"), "check_open": half("check")},
        "rps_per_round": per_round,
        "ratios": ratios,
        "targets": targets,
        "valid": all_valid,
    }


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
        out["about"] = {**about, "loadavg_after": os.getloadavg(), "starved": runner.starved}
        print(
            f"\nclosed-loop rounds run again for a starved server process: {runner.starved}"
            f"\nload average before {about['loadavg_before']}, after {os.getloadavg()}"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0 if args.argon2_sweep or out["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
