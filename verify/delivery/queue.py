"""The RQ side of dispatch: one job per send attempt, its id derived from the attempt (idempotent),
and the delivery timers (retry backoff, channel timeout) that enqueue a job when they fall due.

Fair share: an account's new sends go onto the main queue up to ``fair_share`` in each
``FAIR_SHARE_WINDOW`` seconds, and the rest onto the overflow queue, which workers take from only
when the main queue is empty. One account sending far more than the others then delays its own
messages, not theirs (docs/delivery.md).

Timers are a Redis sorted set of ids scored by due time from the runtime's clock, released by every
worker's ticker once a second (an atomic pop, so one worker enqueues each). Nothing in them but ids.
The database stays the source of truth: an attempt waiting for a retry is ``queued`` with its
``retry_at``, so the sweep redrives it if its timer is ever lost.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from typing import Any

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.utils import now, utcformat

log = logging.getLogger(__name__)

DELIVER = "verify.jobs.deliver"
CHANNEL_TIMEOUT = "verify.jobs.channel_timeout"
RECONCILE = "verify.jobs.reconcile"
TIMERS = "verify:delivery:timers"
FAIR_SHARE_WINDOW = 10  # seconds
JOB_TIMEOUT = 60  # seconds RQ lets a delivery job run before it kills it
RESULT_TTL = 600
FAILURE_TTL = 86_400
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


class _DeliveryJobs:
    """Writes a delivery job into Redis as RQ's ``Queue.enqueue`` does (the job's hash, the queue in
    RQ's set of queues, the job's id pushed onto it) in one Lua call, atomic as RQ's MULTI/EXEC
    pipeline is.

    The fields that are the same for every delivery job come from a job RQ itself builds, once, and
    are written into the script; each call sends only what differs: the time, the description and
    the serialized call. About half the client CPU of ``Queue.enqueue`` (docs/performance.md)."""

    def __init__(self, queue: Queue, overflow: Queue) -> None:
        self._queue = queue
        self._overflow = overflow
        template = queue.create_job(
            DELIVER,
            args=("",),
            job_id="template",
            description="",
            timeout=JOB_TIMEOUT,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
        ).to_dict()
        varying = ("created_at", "enqueued_at", "description", "data", "origin")
        # Each field as redis-py would send it in a command (its Encoder is untyped).
        encode: Callable[[object], bytes] = queue.connection.get_encoder().encode
        fixed = "".join(
            f", {_lua_string(encode(name))}, {_lua_string(encode(value))}"
            for name, value in template.items()
            if name not in varying
        )
        # KEYS: the job, the main queue, RQ's set of queues, the overflow queue, the account's
        # share counter (absent: the main queue). ARGV: time, description, data, job id, the two
        # queues' names, the share and its window.
        self._script = queue.connection.register_script(
            "local lane, origin = KEYS[2], ARGV[5]\n"
            "if KEYS[5] then\n"
            "  local sent = redis.call('INCR', KEYS[5])\n"
            "  if sent == 1 then redis.call('EXPIRE', KEYS[5], ARGV[8]) end\n"
            "  if sent > tonumber(ARGV[7]) then lane, origin = KEYS[4], ARGV[6] end\n"
            "end\n"
            "redis.call('HSET', KEYS[1], 'created_at', ARGV[1], 'enqueued_at', ARGV[1],"
            f" 'description', ARGV[2], 'data', ARGV[3], 'origin', origin{fixed})\n"
            "redis.call('SADD', KEYS[3], lane)\n"
            "return redis.call('RPUSH', lane, ARGV[4])"
        )

    def write(self, attempt_sid: str, jid: str, share: tuple[str, int] | None = None) -> None:
        """Write the job onto the main queue, or with ``share`` (the account's counter key and
        its share) onto the overflow queue once the counter is past the share."""
        overflow = self._overflow
        data = zlib.compress(self._queue.serializer.dumps((DELIVER, None, (attempt_sid,), {})))
        keys = [Job.key_for(jid), self._queue.key, Queue.redis_queues_keys, overflow.key]
        if share:
            keys.append(share[0])
        self._script(
            keys=keys,
            args=[
                utcformat(now()), f"deliver {attempt_sid}", data, jid,
                self._queue.name, overflow.name, share[1] if share else 0, FAIR_SHARE_WINDOW,
            ],
        )  # fmt: skip


def _lua_string(raw: bytes) -> str:
    """A Lua literal for ``raw``: every byte outside [A-Za-z0-9] escaped."""
    return (
        '"' + "".join(chr(b) if b < 128 and chr(b).isalnum() else f"\\{b:03d}" for b in raw) + '"'
    )


def share_key(account_sid: str) -> str:
    return f"verify:delivery:share:{account_sid}"


class RQDispatcher:
    """One per process (Runtime.dispatcher). ``fair_share``: an account's new sends per
    ``FAIR_SHARE_WINDOW`` seconds that go onto ``queue``, the rest onto ``overflow``; 0 puts
    every job onto ``queue``."""

    def __init__(self, queue: Queue, overflow: Queue, fair_share: int = 0) -> None:
        self._queue = queue
        self._fair_share = fair_share
        self._jobs = _DeliveryJobs(queue, overflow)  # no I/O: the script loads on its first call

    def dispatch(self, attempt_sid: str, account_sid: str | None = None) -> None:
        """Enqueue a new attempt after commit: a new send of ``account_sid`` within its fair
        share, or without an account (a failover, a fallback, a redrive: sends already under way)
        onto the main queue. A Redis failure is logged, not raised: the sweep redrives it."""
        share = None
        if account_sid is not None and self._fair_share:
            share = (share_key(account_sid), self._fair_share)
        try:
            self._enqueue(attempt_sid, share=share)
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

    def _enqueue(
        self, attempt_sid: str, tries: int = 0, share: tuple[str, int] | None = None
    ) -> None:
        self._jobs.write(attempt_sid, job_id(attempt_sid, tries), share)

    def enqueue_retry(self, attempt_sid: str, tries: int) -> None:
        self._enqueue(attempt_sid, tries)

    def enqueue_timeout(self, attempt_sid: str) -> None:
        self._enqueue_job(
            CHANNEL_TIMEOUT, attempt_sid, timeout_job_id(attempt_sid), "channel timeout"
        )

    def enqueue_lookup(self, attempt_sid: str) -> None:
        """Look the attempt's message up at its provider (a receipt that never came)."""
        self._enqueue_job(RECONCILE, attempt_sid, f"reconcile-{attempt_sid}", "reconcile")

    def _enqueue_job(self, func: str, attempt_sid: str, jid: str, what: str) -> None:
        self._queue.enqueue(
            func,
            attempt_sid,
            job_id=jid,
            description=f"{what} {attempt_sid}",
            job_timeout=JOB_TIMEOUT,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
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
