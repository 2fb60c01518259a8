"""Retention (cold path, run by the sweep): what is deleted once nobody can need it, so that the
database does not grow forever and holds people's numbers and addresses no longer than it must.

- Webhook deliveries that ended (succeeded, or dead and not replayed), with their attempt logs,
  once unchanged for ``VERIFY_WEBHOOK_RETENTION_DAYS``. Deliveries that may still be sent are kept.
- Outbox events published more than ``VERIFY_EVENT_RETENTION_DAYS`` ago that no webhook delivery
  refers to any more (a delivery builds its body from its event, and a dead one can be replayed).
- Verifications that ended and expired more than ``VERIFY_VERIFICATION_RETENTION_DAYS`` ago, with
  everything that hangs off them (send attempts and their delivery receipts, check attempts, fraud
  decisions: the foreign keys cascade), and delivery receipts that never matched an attempt.
- Streaks of failed checks whose last failure is older than ``VERIFY_DESTINATION_FAILURE_WINDOW``:
  such a streak starts over at the next failure anyway, so it counts for nothing. (The table then
  holds only the last window's streaks, small enough to read without an index on the time.)

Each purge deletes at most ``batch`` rows of its kind per pass, so a large backlog is worked off over
several sweeps instead of in one long transaction; 0 days keeps everything of that kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Delete, delete, exists, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from verify.config import Limits
from verify.domain.lifecycle_store import APPROVED, CANCELED, EXPIRED, FAILED, MAX_ATTEMPTS
from verify.models import DestinationFailures, Event, Verification
from verify.models.delivery import DeliveryReceipt
from verify.models.webhooks import WebhookAttempt, WebhookDelivery

ENDED_DELIVERIES = ("succeeded", "dead")
ENDED_VERIFICATIONS = (APPROVED, CANCELED, EXPIRED, MAX_ATTEMPTS, FAILED)
BATCH = 1000


@dataclass(frozen=True)
class Purged:
    deliveries: int
    events: int
    verifications: int
    receipts: int
    streaks: int


def purge(session: Session, now: datetime, limits: Limits, batch: int = BATCH) -> Purged:
    """One pass of every purge, each in its own transaction."""
    return Purged(
        deliveries=purge_deliveries(session, now, limits.webhook_retention_days, batch),
        events=purge_events(session, now, limits.event_retention_days, batch),
        verifications=purge_verifications(session, now, limits.verification_retention_days, batch),
        receipts=purge_stray_receipts(session, now, limits.verification_retention_days, batch),
        streaks=purge_stale_streaks(session, now, limits.destination_failure_window, batch),
    )


def purge_deliveries(session: Session, now: datetime, days: int, batch: int = BATCH) -> int:
    """Delete up to ``batch`` ended deliveries older than ``days``; returns how many."""
    if days <= 0:
        return 0
    return _purge(
        session,
        WebhookDelivery.sid,
        WebhookDelivery.status.in_(ENDED_DELIVERIES),
        WebhookDelivery.date_updated < now - timedelta(days=days),
        batch=batch,
        order_by=WebhookDelivery.date_updated,
        first=lambda sids: delete(WebhookAttempt).where(WebhookAttempt.delivery_sid.in_(sids)),
    )


def purge_events(session: Session, now: datetime, days: int, batch: int = BATCH) -> int:
    """Delete up to ``batch`` events published more than ``days`` ago and no longer referred to by
    a webhook delivery; returns how many. Unpublished events wait for the relay, whatever their age."""
    if days <= 0:
        return 0
    return _purge(
        session,
        Event.id,
        Event.published_at < now - timedelta(days=days),
        ~exists().where(WebhookDelivery.event_sid == Event.sid),
        batch=batch,
        order_by=Event.published_at,
    )


def purge_verifications(session: Session, now: datetime, days: int, batch: int = BATCH) -> int:
    """Delete up to ``batch`` verifications that are no longer pending and expired more than
    ``days`` ago, with their attempts, receipts, checks and fraud decisions; returns how many."""
    if days <= 0:
        return 0
    # (status, expires_at) is indexed for the expiry sweep; this reads the same index.
    return _purge(
        session,
        Verification.sid,
        Verification.status.in_(ENDED_VERIFICATIONS),
        Verification.expires_at < now - timedelta(days=days),
        batch=batch,
    )


def purge_stray_receipts(session: Session, now: datetime, days: int, batch: int = BATCH) -> int:
    """Delete up to ``batch`` delivery receipts older than ``days`` that never matched an attempt
    (receipts of attempts go with their verification); returns how many."""
    if days <= 0:
        return 0
    return _purge(
        session,
        DeliveryReceipt.id,
        DeliveryReceipt.attempt_sid.is_(None),
        DeliveryReceipt.date_created < now - timedelta(days=days),
        batch=batch,
    )


def purge_stale_streaks(session: Session, now: datetime, window: int, batch: int = BATCH) -> int:
    """Delete up to ``batch`` failure streaks whose last failure is more than ``window`` seconds old
    (they no longer count; the destination is personal data); returns how many."""
    stale = DestinationFailures.last_failure_at < now - timedelta(seconds=window)
    columns = (DestinationFailures.account_sid, DestinationFailures.destination)
    key = tuple_(*columns)
    with session.begin():
        keys = [tuple(row) for row in session.execute(select(*columns).where(stale).limit(batch))]
        if keys:
            # Stale still: a check may have just failed again on one of them.
            session.execute(delete(DestinationFailures).where(key.in_(keys), stale))
    return len(keys)


def _purge(
    session: Session,
    key: InstrumentedAttribute[Any],
    *where: ColumnElement[bool],
    batch: int,
    order_by: InstrumentedAttribute[Any] | None = None,
    first: Callable[[list[Any]], Delete] | None = None,
) -> int:
    """In one transaction: up to ``batch`` values of ``key`` (a primary key) whose rows match
    ``where``, oldest first by ``order_by``; then ``first`` for them (rows that refer to them), then
    their rows."""
    due = select(key).where(*where).limit(batch)
    if order_by is not None:
        due = due.order_by(order_by)
    with session.begin():
        keys = list(session.scalars(due))
        if keys:
            if first is not None:
                session.execute(first(keys))
            session.execute(delete(key.class_).where(key.in_(keys)))
    return len(keys)
