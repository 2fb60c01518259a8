"""The RQ side of dispatch: one job per send attempt, its id derived from the attempt (idempotent)."""

from __future__ import annotations

import logging

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

log = logging.getLogger(__name__)

DELIVER = "verify.jobs.deliver"
# States in which a job will still run (or is running): enqueuing again would duplicate it.
_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def job_id(attempt_sid: str) -> str:
    return f"send-{attempt_sid}"


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

    def _enqueue(self, attempt_sid: str) -> None:
        self._queue.enqueue(
            DELIVER,
            attempt_sid,
            job_id=job_id(attempt_sid),
            description=f"deliver {attempt_sid}",
            job_timeout=60,
            result_ttl=600,
            failure_ttl=86_400,
        )
