"""RQ worker entry point: ``python -m workers.worker`` (the same as ``verify worker``)."""

from __future__ import annotations

import argparse
import logging
import threading

from rq import SimpleWorker

from verify import jobs
from verify.config import Settings
from verify.logs import configure_logging
from verify.runtime import Runtime, build_runtime

log = logging.getLogger("verify.worker")
SWEEP = "verify.jobs.sweep"
SWEEP_LOCK = "verify:sweep:lock"
RELAY_LOCK = "verify:relay:lock"
# Heartbeats every worker_ttl - 15 s while idle; /readyz calls a worker recent within 90 s.
WORKER_TTL = 60


def run(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    """Work the queue until stopped (or, with ``burst``, until it is empty)."""
    configure_logging(settings.log_level)
    runtime = build_runtime(settings)
    jobs.bind(runtime)
    stop = threading.Event()
    if not burst:
        threading.Thread(
            target=_tick, args=(runtime, stop), name="sweep-ticker", daemon=True
        ).start()
        threading.Thread(
            target=_relay_loop, args=(runtime, stop), name="webhook-relay", daemon=True
        ).start()
        threading.Thread(
            target=_timer_loop, args=(stop,), name="delivery-timers", daemon=True
        ).start()
    # SimpleWorker runs jobs in this process: the runtime's pools are reused instead of being
    # rebuilt after a fork for every job. A supervisor restarts the process if it dies.
    worker = SimpleWorker(
        runtime.queues, connection=runtime.redis, name=name, worker_ttl=WORKER_TTL
    )
    try:
        return bool(
            worker.work(burst=burst, logging_level=settings.log_level, with_scheduler=False)
        )
    finally:
        stop.set()
        runtime.close()


def _tick(runtime: Runtime, stop: threading.Event) -> None:
    """Enqueue the sweep once per interval across all workers (a Redis lock elects one)."""
    interval = runtime.settings.limits.sweep_interval
    while not stop.wait(interval):
        try:
            if runtime.redis.set(SWEEP_LOCK, "1", nx=True, ex=interval):
                runtime.queue.enqueue(SWEEP, description="sweep", result_ttl=interval * 4)
        except Exception:
            log.exception("could not enqueue the sweep")


def _timer_loop(stop: threading.Event) -> None:
    """Enqueue due delivery retries and channel timeouts, once a second (an atomic pop in Redis
    makes each due timer fire in exactly one worker)."""
    while not stop.wait(1.0):
        try:
            jobs.release_timers()
        except Exception:
            log.exception("could not release delivery timers")


def _relay_loop(runtime: Runtime, stop: threading.Event) -> None:
    """Run the webhook relay every interval, one worker at a time (a Redis lock elects it)."""
    interval = runtime.settings.limits.relay_interval
    while not stop.wait(interval):
        try:
            if runtime.redis.set(RELAY_LOCK, "1", nx=True, px=interval * 1000):
                jobs.relay()
        except Exception:
            log.exception("webhook relay pass failed")


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a Verify delivery worker.")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    args = parser.parse_args()
    run(Settings.from_env(), burst=args.burst)


if __name__ == "__main__":
    main()
