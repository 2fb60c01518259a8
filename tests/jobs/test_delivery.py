"""The deliver job: one message per send attempt, never for a finished verification, never twice."""

import re

import pytest
from rq.job import Job
from sqlalchemy import select

from tests.conftest import ApiClient, code_in, delivered_code, make_tenant
from verify import jobs
from verify.delivery.console import OUTBOX_KEY, outbox_for
from verify.delivery.queue import RQDispatcher, job_id
from verify.delivery.templates import catalog
from verify.models import Event

TO = "+14155550123"


def attempt_of(api: ApiClient, sid: str) -> dict:
    [attempt] = api.get(f"{api.base}/Verifications/{sid}").json["send_code_attempts"]
    return attempt


def outbox(runtime) -> list[dict]:
    return outbox_for(runtime).read(200)


def test_worker_sends_the_queued_attempt(api, work):
    """After the worker runs, the attempt is sent by the console provider."""
    sid = api.start().json["sid"]
    assert attempt_of(api, sid)["status"] == "queued"
    work()
    attempt = attempt_of(api, sid)
    assert attempt["status"] == "sent"
    assert attempt["provider"] == "console"
    assert attempt["reason_code"] is None


def test_message_names_the_service_and_carries_the_code(api, work, runtime):
    """The outbox holds one message to the destination with the service name and a 6-digit code."""
    sid = api.start().json["sid"]
    work()
    [entry] = outbox(runtime)
    assert entry["to"] == TO
    assert entry["channel"] == "sms"
    assert entry["verification_sid"] == sid
    assert re.fullmatch(r"Your Acme Login verification code is: \d{6}", entry["body"])


def test_delivered_code_approves(api, work, runtime):
    """The code in the message is the verification's code."""
    api.start()
    work()
    r = api.check(delivered_code(runtime))
    assert r.json["status"] == "approved"


def test_do_not_share_warning_is_appended(app, runtime, work):
    """With DoNotShareWarningEnabled the message ends with the warning."""
    api = ApiClient(app, make_tenant(runtime, "Bank", do_not_share_warning_enabled=True))
    api.start()
    work()
    [entry] = outbox(runtime)
    assert re.fullmatch(
        rf"Your Bank Login verification code is: \d{{6}}\. {re.escape(catalog('en').warning)}",
        entry["body"],
    )


def test_custom_friendly_name_replaces_the_service_name(api, work, runtime):
    """CustomFriendlyName on the start is the name the message uses."""
    api.start(CustomFriendlyName="Acme Pay")
    work()
    [entry] = outbox(runtime)
    assert entry["body"].startswith("Your Acme Pay verification code is: ")


def test_code_length_follows_the_service(app, runtime, work):
    """The delivered code has the service's CodeLength."""
    api = ApiClient(app, make_tenant(runtime, "Long", code_length=10))
    api.start()
    work()
    assert re.fullmatch(r"\d{10}", delivered_code(runtime))


def test_sent_message_writes_a_message_sent_event(api, work, runtime):
    """Sending records a message.sent event naming the provider."""
    sid = api.start().json["sid"]
    work()
    attempt_sid = attempt_of(api, sid)["attempt_sid"]
    with runtime.sessions() as session:
        events = session.scalars(select(Event).where(Event.subject_sid == attempt_sid)).all()
    assert [e.type for e in events] == ["message.queued", "message.sent"]
    assert events[1].payload["provider"] == "console"


# -- no message for a verification that ended before the worker ran ---------------------------------


@pytest.fixture
def strict_api(app, runtime) -> ApiClient:
    """A service with a known code (CustomCode), manual approval and two check attempts."""
    tenant = make_tenant(
        runtime,
        "Strict",
        custom_code_enabled=True,
        manual_approval_enabled=True,
        max_check_attempts=2,
    )
    return ApiClient(app, tenant)


def _cancel(api, clock, sid):
    r = api.post(f"{api.base}/Verifications/{sid}", {"Status": "canceled"})
    assert r.json["status"] == "canceled"


def _approve_by_api(api, clock, sid):
    r = api.post(f"{api.base}/Verifications/{sid}", {"Status": "approved"})
    assert r.json["status"] == "approved"


def _approve_by_check(api, clock, sid):
    assert api.check("4821").json["status"] == "approved"


def _exhaust_checks(api, clock, sid):
    api.check("0000")
    assert api.check("0000").json["code"] == 60202


def _let_expire(api, clock, sid):
    clock.advance(601)


def _expire_by_sweep(api, clock, sid):
    clock.advance(601)
    assert jobs.sweep()["expired"] == 1


@pytest.mark.parametrize(
    ("end", "reason"),
    [
        pytest.param(_cancel, "verification_canceled", id="canceled"),
        pytest.param(_approve_by_api, "verification_approved", id="approved-by-api"),
        pytest.param(_approve_by_check, "verification_approved", id="approved-by-check"),
        pytest.param(_exhaust_checks, "verification_max_attempts_reached", id="max-attempts"),
        pytest.param(_let_expire, "code_expired", id="ttl-passed"),
        pytest.param(_expire_by_sweep, "verification_expired", id="swept"),
    ],
)
def test_no_message_for_a_verification_that_ended_first(
    strict_api, clock, work, runtime, end, reason
):
    """If the verification ended before the worker ran, nothing is sent and the attempt is canceled."""
    sid = strict_api.start(CustomCode="4821").json["sid"]
    end(strict_api, clock, sid)
    work()
    attempt = attempt_of(strict_api, sid)
    assert attempt["status"] == "canceled"
    assert attempt["reason_code"] == reason
    assert outbox(runtime) == []
    assert not runtime.redis.exists(OUTBOX_KEY)


# -- at most once per attempt ------------------------------------------------------------------------


@pytest.mark.parametrize("same_job_id", [True, False], ids=["same-job-id", "fresh-job"])
def test_rerunning_the_job_sends_nothing_twice(api, work, runtime, same_job_id):
    """Enqueuing the deliver job again for a sent attempt (a dashboard requeue) sends nothing."""
    sid = api.start().json["sid"]
    work()
    attempt_sid = attempt_of(api, sid)["attempt_sid"]
    extra = {"job_id": job_id(attempt_sid)} if same_job_id else {}
    again = runtime.queue.enqueue("verify.jobs.deliver", attempt_sid, **extra)
    work()
    assert Job.fetch(again.id, connection=runtime.redis).return_value() == "already_sent"
    assert len(outbox(runtime)) == 1
    assert attempt_of(api, sid)["status"] == "sent"


def test_resend_is_a_second_attempt_with_its_own_message(api, work, runtime):
    """A resend is a new attempt: two messages, both with the same code."""
    api.start()
    api.start(channel="call")
    work()
    bodies = [e["body"] for e in outbox(runtime)]
    assert len(bodies) == 2
    # The call reads the digits one by one; both messages carry the same code.
    codes = {code_in(body) for body in bodies}
    assert len(codes) == 1


def test_unknown_attempt_sends_nothing(runtime, work):
    """A job for an attempt that does not exist finishes without sending."""
    job = runtime.queue.enqueue("verify.jobs.deliver", "VL" + "0" * 32)
    work()
    assert Job.fetch(job.id, connection=runtime.redis).return_value() == "unknown_attempt"
    assert outbox(runtime) == []


def test_separate_worker_process_delivers(api, worker_process, runtime):
    """`python -m workers.worker --burst` in its own process picks the jobs up and sends them,
    from the overflow queue too (a second start past a fair share of one)."""
    runtime.dispatcher = RQDispatcher(runtime.queue, runtime.overflow, fair_share=1)
    other = api.start(to="+14155550177").json["sid"]
    sid = api.start().json["sid"]
    assert (runtime.queue.count, runtime.overflow.count) == (1, 1)
    worker_process()
    assert (runtime.queue.count, runtime.overflow.count) == (0, 0)
    assert attempt_of(api, other)["status"] == "sent"
    assert attempt_of(api, sid)["status"] == "sent"
    assert api.check(delivered_code(runtime)).json["status"] == "approved"
