"""Retention: the sweep deletes webhook deliveries that ended long ago, with their attempt logs, and
never one that may still be sent."""

from datetime import timedelta

from sqlalchemy import func, select

from verify import jobs
from verify.domain import sids
from verify.events.relay import DELIVERY_PREFIX
from verify.models.webhooks import WebhookAttempt, WebhookDelivery
from verify.retention import purge_deliveries

DAY = 86_400


def delivery(runtime, status: str, age_days: float) -> str:
    """A delivery in ``status`` that last changed ``age_days`` ago, with one logged attempt."""
    at = runtime.clock.now() - timedelta(days=age_days)
    sid = sids.new_sid(DELIVERY_PREFIX)
    with runtime.sessions() as s, s.begin():
        s.add(
            WebhookDelivery(
                sid=sid,
                account_sid="AC" + "0" * 32,
                url="https://hooks.example/verify",
                event_sid=sids.new_sid(sids.EVENT),
                event_type="verification.approved",
                status=status,
                attempts=1,
                next_attempt_at=at,
                date_created=at,
                date_updated=at,
            )
        )
        s.flush()
        s.add(WebhookAttempt(delivery_sid=sid, number=1, date_created=at, status_code=200))
    return sid


def kept(runtime) -> set[str]:
    with runtime.sessions() as s:
        return set(s.scalars(select(WebhookDelivery.sid)))


def logged(runtime) -> int:
    with runtime.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(WebhookAttempt)) or 0)


def test_the_sweep_purges_ended_deliveries_past_retention(runtime):
    old_ok = delivery(runtime, "succeeded", 31)
    old_dead = delivery(runtime, "dead", 45)
    old_retrying = delivery(runtime, "retrying", 60)
    old_pending = delivery(runtime, "pending", 60)
    recent_ok = delivery(runtime, "succeeded", 29)
    assert runtime.settings.limits.webhook_retention_days == 30
    assert jobs.sweep()["purged"] == 2
    assert kept(runtime) == {old_retrying, old_pending, recent_ok}
    assert old_ok not in kept(runtime)
    assert old_dead not in kept(runtime)
    assert logged(runtime) == 3  # the purged deliveries' attempt logs went with them


def test_purging_goes_in_batches_and_zero_days_keeps_everything(runtime):
    for _ in range(3):
        delivery(runtime, "succeeded", 400)
    with runtime.sessions() as s:
        assert purge_deliveries(s, runtime.clock.now(), days=0) == 0
        assert purge_deliveries(s, runtime.clock.now(), days=30, batch=2) == 2
        assert purge_deliveries(s, runtime.clock.now(), days=30, batch=2) == 1
        assert purge_deliveries(s, runtime.clock.now(), days=30, batch=2) == 0
    assert kept(runtime) == set()
    assert logged(runtime) == 0
