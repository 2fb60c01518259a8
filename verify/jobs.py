"""RQ job functions. They take ids only (never a code, a number or message text) and are idempotent.

A worker process binds its Runtime once at start (``bind``); jobs build their services from it.
"""

from __future__ import annotations

import logging

from verify import abuse, metrics, retention
from verify.delivery.attempts import stuck_attempts
from verify.delivery.pipeline import Delivery
from verify.delivery.providers import STATUS_LOOKUP_TYPES
from verify.delivery.receipts import due_lookups, match_stranded
from verify.domain.verifications import VerificationService
from verify.events.relay import Relay, WebhookQueue
from verify.events.sender import WebhookSender
from verify.events.ssrf import parse_networks
from verify.runtime import Runtime

log = logging.getLogger(__name__)
_runtime: Runtime | None = None
_delivery: Delivery | None = None


def bind(runtime: Runtime) -> None:
    global _runtime, _delivery
    _runtime = runtime
    # Only `verify dev` prints messages; elsewhere the outbox alone holds them (sealed).
    _delivery = Delivery(runtime, echo=runtime.settings.env == "development")


def delivery() -> Delivery:
    if _delivery is None:
        raise RuntimeError("no runtime bound: jobs run inside `verify worker`")
    return _delivery


def _rt() -> Runtime:
    if _runtime is None:
        raise RuntimeError("no runtime bound: jobs run inside `verify worker`")
    return _runtime


def deliver(attempt_sid: str) -> str:
    """Send one attempt (verify/delivery/sender.py)."""
    rt = _rt()
    # One connection for the job's two transactions: one pool checkout (and pre-ping), not two.
    with rt.engine.connect() as connection, rt.sessions(bind=connection) as session:
        # The fraud rules again, just before a provider is called (docs/abuse.md).
        gate = abuse.build_gate(rt, session)
        # On PostgreSQL the common send runs as single statements on this connection.
        lane = connection if connection.dialect.name == "postgresql" else None
        outcome = delivery().sender(session, gate, lane=lane).deliver(attempt_sid)
    log.info("delivery", extra={"attempt": attempt_sid, "outcome": outcome})
    return outcome


def channel_timeout(attempt_sid: str) -> str:
    """A sent attempt's channel timeout fell due: fall back to the next channel if still needed."""
    rt = _rt()
    with rt.sessions() as session:
        outcome = delivery().channel_timeouts(session).run(attempt_sid)
    log.info("channel timeout", extra={"attempt": attempt_sid, "outcome": outcome})
    return outcome


def reconcile(attempt_sid: str) -> str:
    """Look up at its provider a message accepted long ago without a final receipt."""
    rt = _rt()
    with rt.sessions() as session:
        outcome = delivery().receipts(session).reconcile(attempt_sid)
    log.info("reconcile", extra={"attempt": attempt_sid, "outcome": outcome})
    return outcome


def release_timers() -> int:
    """Enqueue the delivery timers that fell due (each worker's ticker calls this every second)."""
    return delivery().timers.release(_rt().clock.now().timestamp())


def sweep() -> dict[str, int]:
    """The periodic cold-path job: expire due verifications, redrive attempts whose enqueue was
    lost, recover attempts a crashed worker left sending, purge what is past retention
    (verify/retention.py), apply delivery receipts stranded by their race with the worker, and
    enqueue a lookup of each message long accepted without a final receipt."""
    rt = _rt()
    with rt.sessions() as session:
        verifications = VerificationService(
            session,
            clock=rt.clock,
            hasher=rt.hasher,
            sealer=rt.sealer,
            dispatcher=rt.dispatcher,
            limits=rt.settings.limits,
        )
        expired = verifications.expire_due()
        stuck = stuck_attempts(session, rt.clock.now(), rt.settings.limits.redrive_after)
        # Attempts a crashed worker left `sending`: failed with worker_lost, never sent twice.
        lost = delivery().sender(session).recover_lost()
        purged = retention.purge(session, rt.clock.now(), rt.settings.limits)
        fallbacks: list[str] = []  # a stranded undelivered receipt may start the next channel
        with session.begin():
            matched = match_stranded(session, rt.clock.now(), fallbacks.append)
        with session.begin():
            lookups = due_lookups(
                session, rt.clock.now(), rt.settings.limits.reconcile_after, STATUS_LOOKUP_TYPES
            )
    dispatcher = rt.dispatcher
    redriven = sum(dispatcher.enqueue(sid) for sid in stuck)
    for sid in fallbacks:
        dispatcher.dispatch(sid)
    for sid in lookups:
        dispatcher.enqueue_lookup(sid)
    counts = {
        "expired": expired,
        "redriven": redriven,
        "lost": lost,
        "purged": purged.deliveries,
        "purged_events": purged.events,
        "purged_verifications": purged.verifications,
        "purged_receipts": purged.receipts,
        "purged_streaks": purged.streaks,
        "receipts_matched": matched,
        "lookups": len(lookups),
    }
    log.info("sweep", extra=counts)
    return counts


def relay() -> dict[str, int]:
    """One relay pass: outbox events -> webhook deliveries, due deliveries -> jobs; counts metrics."""
    rt = _rt()
    with rt.sessions() as session:
        result = Relay(session, clock=rt.clock, dispatcher=WebhookQueue(rt.queue)).run()
        if result.events:
            metrics.count_events(rt.redis, session, result.events)
    if result.events or result.enqueued:
        log.info(
            "relay",
            extra={
                "events": len(result.events),
                "deliveries": result.created,
                "enqueued": result.enqueued,
            },
        )
    return {"events": len(result.events), "created": result.created, "enqueued": result.enqueued}


def deliver_webhook(delivery_sid: str) -> str:
    """Send one webhook delivery (one try); the relay enqueues its retries when they are due."""
    rt = _rt()
    with rt.sessions() as session:
        sender = WebhookSender(
            session,
            clock=rt.clock,
            sealer=rt.sealer,
            redis_client=rt.redis,
            limits=rt.settings.limits,
            allow=parse_networks(rt.settings.webhook_allow_networks),
        )
        outcome, answer = sender.deliver(delivery_sid)
    if answer is not None:
        counters = metrics.Counters(rt.redis)
        counters.inc("webhook_attempts", answer.result)
        if outcome == "dead":
            counters.inc("webhook_dead")
    return outcome
