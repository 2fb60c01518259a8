"""Retention of verifications and outbox events: the sweep deletes ended verifications long past
their expiry with everything that hangs off them, and published events nothing refers to any more;
never a pending verification, an unpublished event, or an event a webhook delivery still needs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from verify import jobs
from verify.domain import sids
from verify.events.relay import DELIVERY_PREFIX
from verify.models import CheckAttempt, DestinationFailures, Event, SendAttempt, Verification
from verify.models.delivery import DeliveryReceipt
from verify.models.webhooks import WebhookDelivery
from verify.retention import purge_events, purge_verifications

DAY = 86_400


def count(runtime, model, *where) -> int:
    with runtime.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def receipt(runtime, attempt_sid: str | None, age_days: float = 0) -> None:
    with runtime.sessions() as s, s.begin():
        s.add(
            DeliveryReceipt(
                account_sid="AC" + "0" * 32,
                provider_sid="PV" + "0" * 32,
                provider_message_id=sids.new_sid("SM"),
                attempt_sid=attempt_sid,
                status="delivered",
                applied=attempt_sid is not None,
                date_created=runtime.clock.now() - timedelta(days=age_days),
            )
        )


def test_the_sweep_purges_ended_verifications_with_their_attempts_checks_and_receipts(api, runtime):
    old = api.start("+14155550101").json
    assert api.check("000000", to="+14155550101").json["status"] == "pending"
    api.post(f"{api.base}/Verifications/{old['sid']}", {"Status": "canceled"})
    receipt(runtime, old["send_code_attempts"][0]["attempt_sid"])
    forgotten = api.start("+14155550102").json  # left pending: the sweep expires it first
    runtime.clock.advance(91 * DAY)
    recent = api.start("+14155550103").json
    api.post(f"{api.base}/Verifications/{recent['sid']}", {"Status": "canceled"})
    pending = api.start("+14155550104").json

    counts = jobs.sweep()

    assert counts["purged_verifications"] == 2
    with runtime.sessions() as s:
        assert set(s.scalars(select(Verification.sid))) == {recent["sid"], pending["sid"]}
    for sid in (old["sid"], forgotten["sid"]):
        assert count(runtime, SendAttempt, SendAttempt.verification_sid == sid) == 0
        assert count(runtime, CheckAttempt, CheckAttempt.verification_sid == sid) == 0
    assert count(runtime, DeliveryReceipt) == 0
    assert count(runtime, SendAttempt) == 2


def test_a_pending_verification_is_never_purged_whatever_its_age(api, runtime):
    """Only the expiry sweep ends a verification; retention never deletes one that is pending."""
    pending = api.start().json
    runtime.clock.advance(400 * DAY)
    with runtime.sessions() as s:
        assert purge_verifications(s, runtime.clock.now(), days=90) == 0
    with runtime.sessions() as s, s.begin():
        s.execute(update(Verification).values(status="expired"))
    with runtime.sessions() as s:
        assert purge_verifications(s, runtime.clock.now(), days=0) == 0
        assert purge_verifications(s, runtime.clock.now(), days=90, batch=1) == 1
    assert count(runtime, Verification, Verification.sid == pending["sid"]) == 0


def test_stray_receipts_go_after_the_retention_period(runtime):
    """A receipt that never matched an attempt is kept as long as a verification would be."""
    receipt(runtime, None, age_days=91)
    receipt(runtime, None, age_days=89)
    assert jobs.sweep()["purged_receipts"] == 1
    assert count(runtime, DeliveryReceipt) == 1


def test_published_events_go_unless_a_delivery_still_refers_to_them(api, runtime):
    api.start("+14155550101")
    api.start("+14155550102")
    jobs.relay()  # publishes the four events (no endpoint subscribes: no deliveries)
    with runtime.sessions() as s:
        kept_sid = s.scalars(select(Event.sid).order_by(Event.id)).first()
        # A delivery still being retried builds its body from its event.
        s.add(
            WebhookDelivery(
                sid=sids.new_sid(DELIVERY_PREFIX),
                account_sid=api.tenant.account_sid,
                url="https://hooks.example/verify",
                event_sid=kept_sid,
                event_type="verification.pending",
                status="retrying",
                attempts=11,
                next_attempt_at=runtime.clock.now(),
                date_created=runtime.clock.now(),
                date_updated=runtime.clock.now(),
            )
        )
        s.commit()
    runtime.clock.advance(91 * DAY)
    api.start("+14155550103")  # two new events, not yet published
    counts = jobs.sweep()
    assert counts["purged_events"] == 3
    with runtime.sessions() as s:
        left = list(s.execute(select(Event.sid, Event.published_at)))
    # Left: the event its delivery needs, and the unpublished ones (the new start's two, and the
    # two verifications the same sweep expired).
    assert [sid for sid, published in left if published is not None] == [kept_sid]
    assert sum(published is None for _, published in left) == 4
    with runtime.sessions() as s:
        assert purge_events(s, runtime.clock.now(), days=0) == 0


def test_failure_streaks_go_once_they_no_longer_count(api, runtime):
    """A streak whose last failure is older than the failure window starts over at the next
    failure anyway: the sweep deletes it (and the destination with it); a recent one stays."""
    api.start("+14155550101")
    assert api.check("000000", to="+14155550101").status_code == 200
    window = runtime.settings.limits.destination_failure_window
    runtime.clock.advance(window - 60)
    api.start("+14155550102")
    assert api.check("000000", to="+14155550102").status_code == 200
    runtime.clock.advance(61)

    assert jobs.sweep()["purged_streaks"] == 1
    with runtime.sessions() as s:
        assert list(s.scalars(select(DestinationFailures.destination))) == ["+14155550102"]
