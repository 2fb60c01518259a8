"""The argon2 side of bench_api.py: in-process hash and verify timings for a parameter set, and
the sweep (``--argon2-sweep``) that measures check throughput and latency for several sets against
the ceilings, restarting the app for each.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for path in (ROOT, BENCH):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from phases import Runner, constant_bodies, dump, fmt, print_header, ratio, valid  # noqa: E402
from stack import Argon2Params, Numbers, Stack  # noqa: E402

from verify.domain.codes import CodeHasher  # noqa: E402

DEFAULT_SWEEP = "1:512,1:1024,1:4096,2:4096,1:19456,2:19456"


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
    const = runner.closed("constant ceiling", "constant", constant_bodies(), d)
    runner.rps_hint = max(runner.rps_hint, const.result.rps)
    rows = []
    for params in sets:
        stack.start_app(params)
        print(f"  -- argon2id {params.label}", flush=True)
        runner.closed("warm-up start", "start", starts, 2, warmup=0)
        insert = runner.closed("insert ceiling", "insert", constant_bodies(), d)
        start = runner.closed("start", "start", starts, d)
        checks = stack.check_bodies(args.check_code)
        check = runner.closed("check", "check", checks, d)
        rate = check.result.rps / 2
        insert_o = runner.open("insert @ check/2", "insert", constant_bodies(), rate, d)
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
            "start_rps/insert_rps": ratio(start.result.rps, ins),
            "check_rps/insert_rps": ratio(check.result.rps, ins),
            "check_rps/constant_rps": ratio(check.result.rps, const.result.rps),
            "start_cpu_ms": start_cpu,
            "check_cpu_ms": check_cpu,
            "insert_cpu_ms": insert.cpu_ms.get("ceiling", math.nan)
            + insert.cpu_ms.get("postgres", math.nan),
            "argon2_share_of_start": m["hash_us"] / 1000 / start_cpu,
            "argon2_share_of_check": m["verify_us"] / 1000 / check_cpu,
            "check_p99_ms": check_o.result.p99_ms,
            "insert_p99_ms": insert_o.result.p99_ms,
            "check_p99/insert_p99": ratio(check_o.result.p99_ms, insert_o.result.p99_ms),
            "valid": valid(start, check, insert_o, check_o),
        }
        table.append(entry)
        print(
            f"  {params.label:<26} {m['hash_us']:>6.0f} {m['verify_us']:>6.0f} "
            f"{fmt(entry['start_rps/insert_rps'], 2):>6} {fmt(entry['check_rps/insert_rps'], 2):>6} "
            f"{fmt(start_cpu, 1):>6} {fmt(check_cpu, 1):>6} "
            f"{fmt(entry['check_rps/constant_rps'], 3):>6} "
            f"{entry['argon2_share_of_start']:>6.0%} {entry['argon2_share_of_check']:>6.0%} "
            f"{fmt(check_o.result.p99_ms, 1):>7} {fmt(insert_o.result.p99_ms, 1):>6} "
            f"{fmt(entry['check_p99/insert_p99'], 2):>6}"
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
    return {"sweep": table, "phases": [dump(p) for p in runner.phases]}
