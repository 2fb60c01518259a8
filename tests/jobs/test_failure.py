"""A verification whose every delivery failed ends `failed`, with the last attempt's reason."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.jobs.conftest import Gateways
from verify.models import Event


@pytest.fixture
def gateway(api, gateways) -> Gateways:
    """One `http` provider that rejects every message as undeliverable."""
    gateways.add(api, "only")
    gateways.mode("only", "invalid")
    return gateways


def test_the_only_attempt_failing_fails_the_verification(api, runtime, gateway, work):
    """One attempt, failed at the provider: the verification is failed and says why."""
    started = api.start().json
    work()
    fetched = api.get(f"{api.base}/Verifications/{started['sid']}").json
    assert fetched["status"] == "failed"
    assert fetched["send_code_attempts"][0]["status"] == "failed"
    assert fetched["send_code_attempts"][0]["reason_code"] == "invalid_destination"
    with runtime.sessions() as session:
        types = list(session.scalars(select(Event.type).where(Event.subject_sid == started["sid"])))
    assert "verification.failed" in types


def test_a_failure_while_another_attempt_delivered_keeps_it_pending(api, gateway, work):
    """A resend that fails does not fail a verification whose first message went out."""
    gateway.mode("only", "accept")
    first = api.start().json
    work()  # the first attempt is sent
    gateway.mode("only", "invalid")
    api.start(channel="call")
    work()
    fetched = api.get(f"{api.base}/Verifications/{first['sid']}").json
    assert fetched["status"] == "pending"
    assert [a["status"] for a in fetched["send_code_attempts"]] == ["sent", "failed"]


def test_a_failed_verification_answers_checks_with_its_state(api, gateway, work):
    """Checking a failed verification is a 404 naming `failed`."""
    api.start()
    work()
    r = api.check("123456")
    assert r.status_code == 404
    assert r.json["verification_status"] == "failed"
