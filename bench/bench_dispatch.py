"""Delivery dispatch: worker-pool throughput against a provider that accepts instantly, as a ratio to
RQ's own throughput for a no-op job with the same workers; and start-request latency with a
provider that takes 300 ms, as a ratio to one that takes 0 ms (sending is never inside the request).

    .venv/bin/python bench/bench_dispatch.py            # about 2 minutes
    .venv/bin/python bench/bench_dispatch.py --jobs 2000 --workers-rq 2

Builds its own PostgreSQL cluster and redis-server (bench/stack.py), an ``http`` provider pointing at
a local receiver (an asyncio server in its own process that parses just enough HTTP/1.1 keep-alive
requests and answers 200 with a JSON message id, after the latency part's provider delay),
and runs ``python -m workers.worker --burst`` processes. Throughput is measured from the jobs' own
start/end times in RQ (process start-up is not counted). It prints ratios; it is not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for path in (ROOT, BENCH):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import httpx  # noqa: E402
from receiver import Receiver, receiving  # noqa: E402
from rq import Queue  # noqa: E402
from rq.job import Job  # noqa: E402
from stack import Argon2Params, CpuMeter, Numbers, Stack  # noqa: E402

from verify.db import make_session_factory  # noqa: E402
from verify.domain.clock import SystemClock  # noqa: E402
from verify.domain.codes import CodeHasher  # noqa: E402
from verify.domain.providers import ProviderFields, ProviderRegistry  # noqa: E402
from verify.domain.sends import StartRequest  # noqa: E402
from verify.domain.verifications import VerificationService  # noqa: E402
from verify.events.ssrf import parse_networks  # noqa: E402
from verify.redisconn import connect  # noqa: E402

SECRET = "whsec_" + "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2g="
THROUGHPUT_TARGET = 0.8
LATENCY_TARGET = 1.1


def noop() -> None:
    """The ceiling: a job that does nothing, run by the same workers."""


# -- throughput ----------------------------------------------------------------------------------


class Collect:
    """A dispatcher that keeps the attempt sids instead of enqueuing them (enqueued in bulk later)."""

    def __init__(self) -> None:
        self.sids: list[str] = []

    def dispatch(self, attempt_sid: str, account_sid: str | None = None) -> None:
        self.sids.append(attempt_sid)


def make_attempts(stack: Stack, numbers: Numbers, start: int, count: int) -> list[str]:
    settings = stack.settings
    assert stack.engine is not None
    sessions = make_session_factory(stack.engine)
    a2 = settings.argon2
    hasher = CodeHasher(
        settings.code_peppers,
        time_cost=a2.time_cost,
        memory_cost_kib=a2.memory_cost_kib,
        parallelism=a2.parallelism,
    )
    collect = Collect()
    with sessions() as session:
        service = VerificationService(
            session,
            clock=SystemClock(),
            hasher=hasher,
            sealer=stack.sealer,
            dispatcher=collect,
            limits=settings.limits,
        )
        for i in range(start, start + count):
            service.start(
                stack.tenant.account_sid,
                stack.tenant.service_sid,
                StartRequest(to=numbers.number(i), channel="sms"),
            )
    return collect.sids


def run_workers(stack: Stack, workers: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}
    env.update(stack.settings.as_environ())
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH), str(ROOT)])
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "workers.worker", "--burst"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    for p in procs:
        p.wait(600)


def jobs_per_second(queue: Queue, ids: list[str]) -> tuple[float, int]:
    jobs = [j for j in Job.fetch_many(ids, connection=queue.connection) if j is not None]
    done = [j for j in jobs if j.started_at and j.ended_at]
    if len(done) < 2:
        return 0.0, len(done)
    first = min(j.started_at for j in done)
    last = max(j.ended_at for j in done)
    return len(done) / max((last - first).total_seconds(), 1e-9), len(done)


class JobCpu:
    """CPU seconds of each part while workers run a batch (``stack.CpuMeter``): the workers (this
    process's children, counted once they have exited; this process only waits for them meanwhile),
    PostgreSQL, Redis and the receiver (the outside world)."""

    def __init__(self, stack: Stack, receiver: Receiver) -> None:
        def roots() -> dict[str, int | None]:
            parts = stack.roots()
            pid = receiver.process.pid
            return {"postgres": parts["postgres"], "redis": parts["redis"], "receiver": pid}

        self._meter = CpuMeter(roots)

    def snapshot(self) -> dict[str, float]:
        seen = self._meter.snapshot()
        return {
            "workers": seen["client"],
            **{k: seen[k] for k in ("postgres", "redis", "receiver")},
        }

    def per_job(
        self, before: dict[str, float], jobs: int, idle: dict[str, float] | None = None
    ) -> dict[str, float]:
        """Milliseconds per job since ``before``, less ``idle`` (the same workers with no jobs)."""
        after = self.snapshot()
        spent = {k: (after[k] - before[k]) * 1000 - (idle or {}).get(k, 0.0) for k in after}
        return {k: v / max(jobs, 1) for k, v in spent.items()}


def throughput(
    stack: Stack, args: argparse.Namespace, numbers: Numbers, receiver: Receiver
) -> dict[str, float]:
    redis = connect(stack.settings)
    queue = Queue(stack.settings.queue_name, connection=redis)
    out: dict[str, float] = {}
    cpu = JobCpu(stack, receiver)
    # What the worker processes cost with nothing to do (start-up, imports, exit): taken out of
    # each batch's CPU below.
    queue.empty()
    before = cpu.snapshot()
    run_workers(stack, args.workers_rq)
    idle = cpu.per_job(before, 1)
    offset = 0
    for round_ in range(args.rounds):
        queue.empty()
        ids = [f"noop-{round_}-{i}" for i in range(args.jobs)]
        with redis.pipeline() as pipe:
            for jid in ids:
                queue.enqueue("bench_dispatch.noop", job_id=jid, result_ttl=600, pipeline=pipe)
            pipe.execute()
        before = cpu.snapshot()
        run_workers(stack, args.workers_rq)
        noop_rate, noop_done = jobs_per_second(queue, ids)
        noop_cpu = cpu.per_job(before, noop_done, idle)

        sids = make_attempts(stack, numbers, offset, args.jobs)
        offset += args.jobs
        ids = [f"send-{sid}" for sid in sids]
        with redis.pipeline() as pipe:
            for sid in sids:
                queue.enqueue(
                    "verify.jobs.deliver",
                    sid,
                    job_id=f"send-{sid}",
                    result_ttl=600,
                    pipeline=pipe,
                )
            pipe.execute()
        before = cpu.snapshot()
        run_workers(stack, args.workers_rq)
        send_rate, send_done = jobs_per_second(queue, ids)
        send_cpu = cpu.per_job(before, send_done, idle)
        results = [Job.fetch(i, connection=redis).return_value() for i in ids[:50]]
        sent = sum(1 for r in results if r == "sent")
        print(
            f"  round {round_ + 1}: no-op {noop_rate:8.1f} jobs/s ({noop_done} jobs)   "
            f"deliver {send_rate:8.1f} jobs/s ({send_done} jobs, {sent}/50 sampled 'sent')   "
            f"ratio {send_rate / noop_rate:.2f}"
        )
        ours = sum(v for k, v in send_cpu.items() if k != "receiver")
        print(
            "    CPU ms per job (workers, postgres, redis, receiver): no-op "
            + ", ".join(f"{v:.2f}" for v in noop_cpu.values())
            + "; deliver "
            + ", ".join(f"{v:.2f}" for v in send_cpu.values())
            + f"; capacity ratio from CPU, receiver excluded {sum(noop_cpu.values()) / ours:.2f}"
        )
        out.setdefault("noop", 0.0)
        out.setdefault("deliver", 0.0)
        out["noop"] += noop_rate / args.rounds
        out["deliver"] += send_rate / args.rounds
    redis.close()
    return out


# -- start latency -------------------------------------------------------------------------------


def start_latency(stack: Stack, numbers: Numbers, first: int, count: int) -> list[float]:
    assert stack.app is not None
    base = f"http://127.0.0.1:{stack.app.port}/v2/Services/{stack.tenant.service_sid}/Verifications"
    out: list[float] = []
    errors: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(first, first + count))

    def client() -> None:
        with httpx.Client(headers=stack.tenant.headers, timeout=30) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                # Spread over area codes and client addresses, so that the abuse controls' default
                # limits (per prefix, per IP) never refuse a start of the benchmark.
                d, k = divmod(i, len(numbers.npas))
                to = numbers.number(k * 10_000 + (d % 10) * 1_000 + d // 10)
                ip = f"198.18.{i // 256 % 256}.{i % 256}"
                t0 = time.perf_counter()
                r = http.post(base, data={"To": to, "Channel": "sms", "DeviceIp": ip})
                elapsed = time.perf_counter() - t0
                with lock:
                    if r.status_code == 201:
                        out.append(elapsed)
                    else:
                        errors[r.status_code] = errors.get(r.status_code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(f"    refused starts by status: {errors}")
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def workers_running(stack: Stack, count: int) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}
    env.update(stack.settings.as_environ())
    return [
        subprocess.Popen(
            [sys.executable, "-m", "workers.worker"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


AREAS = (
    "/sqlalchemy/",
    "/psycopg/",
    "/httpx/",
    "/httpcore/",
    "/h11/",
    "/redis/",
    "/verify/abuse/",
    "/verify/delivery/",
    "/verify/",
    "/logging/",
    "/json/",
    "/cryptography/",
)


def profile(stack: Stack, args: argparse.Namespace, numbers: Numbers) -> None:
    """Deliver jobs in this process, one after another, under cProfile with a CPU clock
    (time.thread_time: waiting on PostgreSQL, Redis or the receiver is not counted), or with the
    wall clock (``--wall``: where the waiting is)."""
    import cProfile
    import pstats

    from sqlalchemy import event

    from verify import jobs
    from verify.runtime import build_runtime

    rt = build_runtime(stack.settings)
    jobs.bind(rt)
    warm = make_attempts(stack, numbers, 0, 20)
    for sid in warm:
        jobs.deliver(sid)

    # Unprofiled first: time, SQL statements, connection checkouts and Redis commands per job.
    counts = {"sql": 0, "checkouts": 0, "redis": 0}
    event.listen(
        rt.engine, "before_cursor_execute", lambda *a: counts.__setitem__("sql", counts["sql"] + 1)
    )
    event.listen(
        rt.engine.pool,
        "checkout",
        lambda *a: counts.__setitem__("checkouts", counts["checkouts"] + 1),
    )
    execute = rt.redis.execute_command

    def counted(*a: Any, **k: Any) -> Any:
        counts["redis"] += 1
        return execute(*a, **k)

    rt.redis.execute_command = counted  # type: ignore[method-assign]
    sids = make_attempts(stack, numbers, 20, args.jobs)
    t0, c0 = time.perf_counter(), time.process_time()
    for sid in sids:
        jobs.deliver(sid)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = len(sids)
    print(
        f"in-process, unprofiled: {wall / n * 1000:.2f} ms wall, {cpu / n * 1000:.2f} ms CPU, "
        f"{counts['sql'] / n:.1f} SQL statements, {counts['checkouts'] / n:.1f} checkouts "
        f"(each with a pre-ping), {counts['redis'] / n:.1f} Redis commands per job"
    )
    rt.redis.execute_command = execute  # type: ignore[method-assign]

    sids = make_attempts(stack, numbers, 20 + n, args.jobs)
    profiler = cProfile.Profile(time.perf_counter if args.wall else time.thread_time)
    t0, c0 = time.perf_counter(), time.process_time()
    profiler.enable()
    outcomes = [jobs.deliver(sid) for sid in sids]
    profiler.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"in-process: {len(sids)} deliver calls, {wall / len(sids) * 1000:.2f} ms wall and "
        f"{cpu / len(sids) * 1000:.2f} ms CPU each (profiled), "
        f"outcomes {dict(Counter(outcomes))}"
    )
    stats = pstats.Stats(profiler)
    areas: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        area = next((a for a in AREAS if a in filename), "other")
        areas[area] = areas.get(area, 0.0) + tottime
    total = sum(areas.values())
    print(
        "  CPU by area (self time): "
        + ", ".join(
            f"{a.strip('/')} {t / total:.0%}" for a, t in sorted(areas.items(), key=lambda x: -x[1])
        )
    )
    stats.sort_stats("cumulative").print_stats(args.top)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
    rt.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per throughput run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers-rq", type=int, default=2, help="RQ worker processes")
    parser.add_argument("--requests", type=int, default=200, help="starts per latency run")
    parser.add_argument("--slow-ms", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads")
    parser.add_argument(
        "--profile", action="store_true", help="only profile deliver jobs in this process"
    )
    parser.add_argument(
        "--receipts", action="store_true", help="sends ask for delivery receipts (a public URL)"
    )
    parser.add_argument("--top", type=int, default=30, help="rows of the profile")
    parser.add_argument("--wall", action="store_true", help="profile with the wall clock")
    args = parser.parse_args()

    numbers = Numbers()
    with (
        Stack(args, ceiling=False, lift_abuse_limits=True) as stack,
        receiving() as receiver,
    ):
        assert stack.engine is not None
        # The receiver is on loopback: the operator allowlist lets the SSRF guard reach it.
        stack.settings = replace(stack.settings, webhook_allow_networks=("127.0.0.0/8",))
        if args.receipts:
            # Sends then carry a status callback, as in a deployment with VERIFY_PUBLIC_URL (the
            # receiver posts no receipts: the URL is never called).
            stack.settings = replace(stack.settings, public_url="http://127.0.0.1:9")
        with make_session_factory(stack.engine)() as session:
            ProviderRegistry(
                session, SystemClock(), stack.sealer, allow=parse_networks(["127.0.0.0/8"])
            ).create(
                stack.tenant.account_sid,
                ProviderFields(
                    type="http",
                    friendly_name="bench receiver",
                    config={"url": receiver.url},
                    credentials={"secret": SECRET},
                ),
            )
        if args.profile:
            profile(stack, args, numbers)
            return
        print(
            f"dispatch throughput: {args.jobs} jobs x {args.rounds} rounds, "
            f"{args.workers_rq} worker processes (SimpleWorker, burst)"
        )
        rates = throughput(stack, args, numbers, receiver)
        ratio = rates["deliver"] / rates["noop"]
        verdict = "PASS" if ratio >= THROUGHPUT_TARGET else "FAIL"
        print(
            f"  mean: no-op {rates['noop']:.1f} jobs/s, deliver {rates['deliver']:.1f} jobs/s, "
            f"ratio {ratio:.2f} (target >= {THROUGHPUT_TARGET}) {verdict}"
        )

        print(
            f"start latency: {args.requests} starts per run, 4 client threads, "
            f"gunicorn {args.workers}x{args.threads}, {args.workers_rq} workers delivering"
        )

        # /readyz answers 200 only once a worker has been seen: start them first.
        workers = workers_running(stack, args.workers_rq)
        try:
            stack.start_app(Argon2Params.default())
            first = 0
            latencies: dict[int, list[float]] = {}
            for delay in (0, args.slow_ms, 0, args.slow_ms):
                receiver.delay = delay / 1000
                got = start_latency(stack, numbers, first, args.requests)
                first += args.requests
                latencies.setdefault(delay, []).extend(got)
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(30)
        fast, slow = latencies[0], latencies[args.slow_ms]
        for name, values in (("0 ms", fast), (f"{args.slow_ms} ms", slow)):
            print(
                f"  provider {name:>6}: {len(values)} ok, p50 {statistics.median(values) * 1000:.1f} ms, "
                f"p99 {percentile(values, 0.99) * 1000:.1f} ms"
            )
        p50 = statistics.median(slow) / statistics.median(fast)
        p99 = percentile(slow, 0.99) / percentile(fast, 0.99)
        verdict = "PASS" if max(p50, p99) <= LATENCY_TARGET else "FAIL"
        print(
            f"  ratio {args.slow_ms} ms / 0 ms: p50 {p50:.2f}, p99 {p99:.2f} "
            f"(target <= {LATENCY_TARGET}) {verdict}"
        )


if __name__ == "__main__":
    main()
