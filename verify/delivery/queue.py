"""The RQ side of dispatch: one job per send attempt, its id derived from the attempt (idempotent),
and the delivery timers (retry backoff, channel timeout) that enqueue a job when they fall due.

Timers are a Redis sorted set of ids scored by due time from the runtime's clock, released by every
worker's ticker once a second (an atomic pop, so one worker enqueues each). Nothing in them but ids.
The database stays the source of truth: an attempt waiting for a retry is ``queued`` with its
``retry_at``, so the sweep redrives it if its timer is ever lost.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

log = logging.getLogger(__name__)

DELIVER = "verify.jobs.deliver"
CHANNEL_TIMEOUT = "verify.jobs.channel_timeout"
TIMERS = "verify:delivery:timers"
JOB_TIMEOUT = 60  # seconds RQ lets a delivery job run before it kills it
# States in which a job will still run (or is running): enqueuing again would duplicate it.
_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}

_POP_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""


def job_id(attempt_sid: str, tries: int = 0) -> str:
    """The first run of an attempt is ``send-<sid>``; its retry after n provider calls ``send-<sid>-n``."""
    return f"send-{attempt_sid}" if tries == 0 else f"send-{attempt_sid}-{tries}"


def timeout_job_id(attempt_sid: str) -> str:
    return f"fallback-{attempt_sid}"


class RQDispatcher:
    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def dispatch(self, attempt_sid: str) -> None:
        """Enqueue a new attempt after commit. A Redis failure is logged, not raised: the sweep
        redrives it."""
        try:
            self._enqueue(attempt_sid)
        except redis.RedisError:
            log.warning("enqueue failed; the sweep will redrive it", extra={"attempt": attempt_sid})

    def enqueue(self, attempt_sid: str) -> bool:
        """Enqueue unless a live job for this attempt already exists. True if enqueued."""
        jid = job_id(attempt_sid)
        try:
            existing = Job.fetch(jid, connection=self._queue.connection)
        except NoSuchJobError:
            existing = None
        if existing is not None and existing.get_status(refresh=False) in _LIVE:
            return False
        self._enqueue(attempt_sid)
        return True

    def _enqueue(self, attempt_sid: str, tries: int = 0) -> None:
        # One pipeline for everything RQ writes: a single round trip to Redis.
        with self._queue.connection.pipeline() as pipe:
            self._queue.enqueue(
                DELIVER,
                attempt_sid,
                job_id=job_id(attempt_sid, tries),
                description=f"deliver {attempt_sid}",
                job_timeout=JOB_TIMEOUT,
                result_ttl=600,
                failure_ttl=86_400,
                pipeline=pipe,
            )
            pipe.execute()

    def enqueue_retry(self, attempt_sid: str, tries: int) -> None:
        self._enqueue(attempt_sid, tries)

    def enqueue_timeout(self, attempt_sid: str) -> None:
        self._queue.enqueue(
            CHANNEL_TIMEOUT,
            attempt_sid,
            job_id=timeout_job_id(attempt_sid),
            description=f"channel timeout {attempt_sid}",
            job_timeout=JOB_TIMEOUT,
            result_ttl=600,
            failure_ttl=86_400,
        )


class Timers:
    """Delayed work for the delivery pipeline, due at a time of the runtime's clock."""

    def __init__(self, client: redis.Redis, dispatcher: RQDispatcher) -> None:
        self._redis = client
        self._dispatcher = dispatcher
        self._pop = client.register_script(_POP_DUE)

    def retry(self, attempt_sid: str, tries: int, at: float) -> None:
        """Run the attempt's job again (its ``tries``-th retry) at ``at``."""
        self._redis.zadd(TIMERS, {f"retry:{attempt_sid}:{tries}": at})

    def channel_timeout(self, attempt_sid: str, at: float) -> None:
        """Check at ``at`` whether the attempt was delivered or its code checked; else fall back."""
        self._redis.zadd(TIMERS, {f"timeout:{attempt_sid}": at})

    def pending(self) -> list[tuple[str, float]]:
        rows: list[tuple[Any, Any]] = list(self._redis.zrange(TIMERS, 0, -1, withscores=True))  # type: ignore[arg-type]
        return [(m.decode() if isinstance(m, bytes) else str(m), float(s)) for m, s in rows]

    def release(self, now: float, batch: int = 200) -> int:
        """Enqueue every timer due at ``now``; returns how many."""
        due: list[bytes] = self._pop(keys=[TIMERS], args=[repr(now), batch])
        for raw in due:
            member = raw.decode() if isinstance(raw, bytes) else str(raw)
            kind, _, rest = member.partition(":")
            self._fire(kind, rest)
        return len(due)

    def _fire(self, kind: str, rest: str) -> None:
        try:
            if kind == "retry":
                sid, _, tries = rest.partition(":")
                self._dispatcher.enqueue_retry(sid, int(tries))
            elif kind == "timeout":
                self._dispatcher.enqueue_timeout(rest)
            else:
                log.warning("unknown delivery timer", extra={"timer": kind})
        except redis.RedisError:
            # A retry is redriven by the sweep from the database; a lost timeout only means no
            # automatic fallback for that attempt.
            log.warning("could not enqueue a due timer", extra={"timer": kind, "attempt": rest})
