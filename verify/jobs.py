"""RQ job functions. They take ids only (never a code, a number or message text) and are idempotent.

A worker process binds its Runtime once at start (``bind``); jobs build their services from it.
"""

from __future__ import annotations

import logging

from verify.delivery.console import ConsoleProvider, outbox_for, stdout
from verify.delivery.queue import RQDispatcher
from verify.delivery.sender import SendService, stuck_attempts
from verify.domain.verifications import VerificationService
from verify.runtime import Runtime

log = logging.getLogger(__name__)
_runtime: Runtime | None = None


def bind(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime


def _rt() -> Runtime:
    if _runtime is None:
        raise RuntimeError("no runtime bound: jobs run inside `verify worker`")
    return _runtime


def deliver(attempt_sid: str) -> str:
    rt = _rt()
    # Only `verify dev` prints messages; elsewhere the outbox alone holds them (sealed).
    stream = stdout() if rt.settings.env == "development" else None
    provider = ConsoleProvider(outbox_for(rt), stream)
    with rt.sessions() as session:
        service = SendService(session, clock=rt.clock, sealer=rt.sealer, provider=provider)
        outcome = service.deliver(attempt_sid)
    log.info("delivery", extra={"attempt": attempt_sid, "outcome": outcome})
    return outcome


def sweep() -> dict[str, int]:
    """The periodic cold-path job: expire due verifications, redrive attempts whose enqueue was lost."""
    rt = _rt()
    with rt.sessions() as session:
        verifications = VerificationService(
            session,
            clock=rt.clock,
            hasher=rt.hasher,
            sealer=rt.sealer,
            dispatcher=RQDispatcher(rt.queue),
            limits=rt.settings.limits,
        )
        expired = verifications.expire_due()
        stuck = stuck_attempts(session, rt.clock.now(), rt.settings.limits.redrive_after)
    dispatcher = RQDispatcher(rt.queue)
    redriven = sum(dispatcher.enqueue(sid) for sid in stuck)
    log.info("sweep", extra={"expired": expired, "redriven": redriven})
    return {"expired": expired, "redriven": redriven}
