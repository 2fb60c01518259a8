"""A verification whose every delivery failed ends `failed`, with the last attempt's reason."""

from datetime import datetime

import pytest
from sqlalchemy import select

from verify.delivery.messages import Message
from verify.delivery.sender import SendService
from verify.models import Event


class BrokenProvider:
    """A provider whose every send fails, as a provider outage would."""

    name = "broken"

    def send(self, message: Message, at: datetime) -> None:
        raise ConnectionError("provider unreachable")


def deliver_with(runtime, attempt_sid: str, provider) -> None:
    with runtime.sessions() as session:
        SendService(session, clock=runtime.clock, sealer=runtime.sealer, provider=provider).deliver(
            attempt_sid
        )


def test_the_only_attempt_failing_fails_the_verification(api, runtime):
    """One attempt, failed at the provider: the verification is failed and says why."""
    started = api.start().json
    with pytest.raises(ConnectionError):
        deliver_with(runtime, started["send_code_attempts"][0]["attempt_sid"], BrokenProvider())
    fetched = api.get(f"{api.base}/Verifications/{started['sid']}").json
    assert fetched["status"] == "failed"
    assert fetched["send_code_attempts"][0]["status"] == "failed"
    assert fetched["send_code_attempts"][0]["reason_code"] == "provider_error"
    with runtime.sessions() as session:
        types = list(session.scalars(select(Event.type).where(Event.subject_sid == started["sid"])))
    assert "verification.failed" in types


def test_a_failure_while_another_attempt_delivered_keeps_it_pending(api, runtime, work):
    """A resend that fails does not fail a verification whose first message went out."""
    first = api.start().json
    work()  # the first attempt is sent
    second = api.start(channel="call").json
    with pytest.raises(ConnectionError):
        deliver_with(runtime, second["send_code_attempts"][1]["attempt_sid"], BrokenProvider())
    fetched = api.get(f"{api.base}/Verifications/{first['sid']}").json
    assert fetched["status"] == "pending"
    assert [a["status"] for a in fetched["send_code_attempts"]] == ["sent", "failed"]


def test_a_failed_verification_answers_checks_with_its_state(api, runtime):
    """Checking a failed verification is a 404 naming `failed`."""
    started = api.start().json
    with pytest.raises(ConnectionError):
        deliver_with(runtime, started["send_code_attempts"][0]["attempt_sid"], BrokenProvider())
    r = api.check("123456")
    assert r.status_code == 404
    assert r.json["verification_status"] == "failed"
