"""Retention of webhook deliveries (cold path, run by the sweep): a delivery that ended (succeeded,
or dead and not replayed) is deleted with its attempt log once it has not changed for
``VERIFY_WEBHOOK_RETENTION_DAYS`` days (0 keeps them all). Deliveries still pending, delivering or
retrying are never touched, whatever their age."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from verify.models.webhooks import WebhookAttempt, WebhookDelivery

ENDED = ("succeeded", "dead")


def purge_deliveries(session: Session, now: datetime, days: int, batch: int = 1000) -> int:
    """Delete up to ``batch`` ended deliveries older than ``days``; returns how many."""
    if days <= 0:
        return 0
    cutoff = now - timedelta(days=days)
    with session.begin():
        sids = list(
            session.scalars(
                select(WebhookDelivery.sid)
                .where(WebhookDelivery.status.in_(ENDED), WebhookDelivery.date_updated < cutoff)
                .order_by(WebhookDelivery.date_updated)
                .limit(batch)
            )
        )
        if sids:
            session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_sid.in_(sids)))
            session.execute(delete(WebhookDelivery).where(WebhookDelivery.sid.in_(sids)))
    return len(sids)
