"""The sweep job: expire pending verifications past their TTL, redrive attempts whose enqueue was
lost, and recover attempts a crashed worker left `sending`."""

from rq.job import Job
from sqlalchemy import select

from tests.conftest import ApiClient, delivered_code, make_tenant
from verify import jobs
from verify.delivery.console import outbox_for
from verify.delivery.queue import job_id
from verify.delivery.sender import LOST_AFTER
from verify.models import Event, SendAttempt, Verification


def status_of(runtime, sid: str) -> str:
    with runtime.sessions() as session:
        v = session.get(Verification, sid)
        assert v is not None
        return v.status


def events_of(runtime, sid: str) -> list[str]:
    with runtime.sessions() as session:
        query = select(Event.type).where(Event.subject_sid == sid).order_by(Event.id)
        return list(session.scalars(query))


def attempt_sids(runtime) -> list[str]:
    with runtime.sessions() as session:
        return list(session.scalars(select(SendAttempt.sid)))


def lose_the_enqueue(runtime) -> None:
    """What a Redis outage between commit and enqueue leaves behind: a queued attempt and no job."""
    runtime.queue.empty()
    for sid in attempt_sids(runtime):
        assert Job.exists(job_id(sid), connection=runtime.redis) is False


def test_sweep_expires_pending_verifications_past_their_ttl(api, clock, runtime):
    """A pending verification past its TTL becomes expired."""
    sid = api.start().json["sid"]
    clock.advance(601)
    assert jobs.sweep()["expired"] == 1
    assert status_of(runtime, sid) == "expired"


def test_sweep_writes_a_verification_expired_event(api, clock, runtime):
    """Expiring by the sweep writes one verification.expired event row with the new status."""
    sid = api.start().json["sid"]
    clock.advance(601)
    jobs.sweep()
    assert events_of(runtime, sid) == ["verification.pending", "verification.expired"]
    with runtime.sessions() as session:
        event = session.scalars(select(Event).where(Event.type == "verification.expired")).one()
    assert event.payload["status"] == "expired"
    assert event.payload["verification_sid"] == sid
    assert event.date_created == clock.now()


def test_sweep_leaves_unexpired_verifications_pending(api, clock, runtime):
    """A verification still inside its TTL is not touched."""
    sid = api.start().json["sid"]
    clock.advance(599)
    assert jobs.sweep()["expired"] == 0
    assert status_of(runtime, sid) == "pending"
    assert events_of(runtime, sid) == ["verification.pending"]


def test_sweep_leaves_finished_verifications_alone(api, clock, runtime):
    """A canceled verification past its TTL stays canceled, with no expired event."""
    sid = api.start().json["sid"]
    api.post(f"{api.base}/Verifications/{sid}", {"Status": "canceled"})
    clock.advance(601)
    assert jobs.sweep()["expired"] == 0
    assert status_of(runtime, sid) == "canceled"
    assert "verification.expired" not in events_of(runtime, sid)


def test_sweep_twice_expires_once(api, clock, runtime):
    """A second sweep finds nothing more to do and writes no second event."""
    sid = api.start().json["sid"]
    clock.advance(601)
    jobs.sweep()
    assert jobs.sweep()["expired"] == 0
    assert events_of(runtime, sid).count("verification.expired") == 1


def test_sweep_redrives_an_attempt_whose_enqueue_was_lost(api, clock, runtime, work):
    """A queued attempt without a job is enqueued again after redrive_after, and the worker sends it."""
    sid = api.start().json["sid"]
    lose_the_enqueue(runtime)
    clock.advance(runtime.settings.limits.redrive_after + 1)
    assert jobs.sweep()["redriven"] == 1
    [attempt] = attempt_sids(runtime)
    assert Job.exists(job_id(attempt), connection=runtime.redis)
    work()
    assert (
        api.get(f"{api.base}/Verifications/{sid}").json["send_code_attempts"][0]["status"] == "sent"
    )
    assert api.check(delivered_code(runtime)).json["status"] == "approved"


def test_sweep_waits_redrive_after_before_redriving(api, clock, runtime):
    """An attempt younger than redrive_after is left to its own enqueue."""
    api.start()
    lose_the_enqueue(runtime)
    clock.advance(runtime.settings.limits.redrive_after - 1)
    assert jobs.sweep()["redriven"] == 0
    assert runtime.queue.count == 0


def test_sweep_does_not_duplicate_a_live_job(api, clock, runtime, work):
    """While the attempt's job is still queued, the sweep enqueues nothing and one message is sent."""
    api.start()
    clock.advance(runtime.settings.limits.redrive_after + 1)
    assert jobs.sweep()["redriven"] == 0
    assert runtime.queue.count == 1
    work()
    assert len(outbox_for(runtime).read()) == 1


def test_sweep_does_not_redrive_for_an_expired_verification(api, clock, runtime):
    """A lost attempt of a verification past its TTL is not redriven: its code could not be used."""
    api.start()
    lose_the_enqueue(runtime)
    clock.advance(601)
    assert jobs.sweep() == {
        "expired": 1,
        "redriven": 0,
        "lost": 0,
        "purged": 0,
        "purged_events": 0,
        "purged_verifications": 0,
        "purged_receipts": 0,
        "purged_streaks": 0,
        "receipts_matched": 0,
        "lookups": 0,
    }
    assert runtime.queue.count == 0


def test_sweep_runs_as_a_queued_job(api, clock, runtime, work):
    """The sweep works through the queue as the worker's ticker runs it, redriven sends included."""
    sid = api.start().json["sid"]
    lose_the_enqueue(runtime)
    clock.advance(runtime.settings.limits.redrive_after + 1)
    sweep = runtime.queue.enqueue("verify.jobs.sweep")
    work()  # the burst also runs the job the sweep enqueued
    assert Job.fetch(sweep.id, connection=runtime.redis).return_value() == {
        "purged": 0,
        "purged_events": 0,
        "purged_verifications": 0,
        "purged_receipts": 0,
        "purged_streaks": 0,
        "expired": 0,
        "redriven": 1,
        "lost": 0,
        "receipts_matched": 0,
        "lookups": 0,
    }
    assert (
        api.get(f"{api.base}/Verifications/{sid}").json["send_code_attempts"][0]["status"] == "sent"
    )


# -- attempts a crashed worker left `sending` --------------------------------------------------


def crash_mid_send(runtime, clock) -> str:
    """What a worker that died during the provider call leaves: its attempt claimed, no job."""
    [attempt_sid] = attempt_sids(runtime)
    lose_the_enqueue(runtime)
    with runtime.sessions() as s, s.begin():
        attempt = s.get(SendAttempt, attempt_sid)
        attempt.status, attempt.provider, attempt.date_updated = "sending", "console", clock.now()
    return attempt_sid


def test_sweep_fails_an_attempt_a_crashed_worker_left_sending(api, clock, runtime, work):
    """After LOST_AFTER the attempt is failed with worker_lost, nothing is sent, and with no other
    attempt in flight the verification is failed."""
    sid = api.start().json["sid"]
    crash_mid_send(runtime, clock)
    clock.advance(LOST_AFTER - 1)
    assert jobs.sweep()["lost"] == 0  # it may still be sending
    clock.advance(2)
    assert jobs.sweep()["lost"] == 1
    work()
    [attempt] = api.get(f"{api.base}/Verifications/{sid}").json["send_code_attempts"]
    assert (attempt["status"], attempt["reason_code"]) == ("failed", "worker_lost")
    assert status_of(runtime, sid) == "failed"
    assert outbox_for(runtime).read() == []  # never sent again
    assert jobs.sweep()["lost"] == 0


def test_a_lost_attempt_falls_back_to_the_next_channel(app, clock, runtime, work):
    """With fallback channels, the lost SMS is followed by a call: same verification, same code."""
    api = ApiClient(app, make_tenant(runtime, "Fb", fallback_channels=("sms", "call")))
    sid = api.start().json["sid"]
    crash_mid_send(runtime, clock)
    clock.advance(LOST_AFTER + 1)
    assert jobs.sweep()["lost"] == 1
    work()
    attempts = api.get(f"{api.base}/Verifications/{sid}").json["send_code_attempts"]
    assert [(a["channel"], a["status"]) for a in attempts] == [("sms", "failed"), ("call", "sent")]
    assert status_of(runtime, sid) == "pending"
    assert api.check(delivered_code(runtime)).json["status"] == "approved"
