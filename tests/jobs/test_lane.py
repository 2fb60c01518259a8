"""The common send on PostgreSQL: single statements on the job's own connection (no BEGIN or
COMMIT), with the same outcome, rows and event as the general path; anything else falls back.

Every test here runs on PostgreSQL only (the module overrides the ``backend`` fixture); SQLite
takes the general path, which the rest of tests/jobs covers on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select, update

from tests.conftest import ApiClient, Backend, make_tenant
from verify import jobs
from verify.domain.sends import OpenGate, Screening, SendContext
from verify.models import Event, SendAttempt, Verification


@pytest.fixture(scope="session")
def backend(postgres_url: str, system_redis: str) -> Backend:
    return Backend("postgres", postgres_url, system_redis)


def attempt_sid(runtime, verification_sid: str) -> str:
    with runtime.sessions() as session:
        return session.scalars(
            select(SendAttempt.sid).where(SendAttempt.verification_sid == verification_sid)
        ).one()


def statements_of_delivery(runtime, sid: str) -> list[tuple[str, bool]]:
    """Deliver ``sid`` (it must be sent); each statement's verb, and whether it ran autocommitted."""
    seen: list[tuple[str, bool]] = []

    def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append((statement.split()[0], conn.connection.dbapi_connection.autocommit))

    event.listen(runtime.engine, "before_cursor_execute", listen)
    try:
        assert jobs.deliver(sid) == "sent"
    finally:
        event.remove(runtime.engine, "before_cursor_execute", listen)
    return seen


def test_a_common_send_is_three_autocommitted_statements(api, runtime):
    """Read, claim, record the result with its event: three statements, none in a transaction
    (once the worker's caches of routes and rules are warm)."""
    assert jobs.deliver(attempt_sid(runtime, api.start(to="+14155550100").json["sid"])) == "sent"
    sid = attempt_sid(runtime, api.start().json["sid"])
    seen = statements_of_delivery(runtime, sid)
    assert seen == [("SELECT", True), ("UPDATE", True), ("WITH", True)]


def test_a_send_that_asks_for_receipts_looks_for_early_ones(api, gateways, runtime, public_url):
    """With a status callback, one more autocommitted statement: whether a receipt for the
    message id came before the acceptance was recorded (none did: no transaction follows)."""
    gateways.add(api, "p1", 1)
    assert jobs.deliver(attempt_sid(runtime, api.start(to="+14155550100").json["sid"])) == "sent"
    sid = attempt_sid(runtime, api.start().json["sid"])
    seen = statements_of_delivery(runtime, sid)
    assert seen == [("SELECT", True), ("UPDATE", True), ("WITH", True), ("SELECT", True)]
    assert gateways.calls("p1")[-1]["status_callback"].startswith(public_url)


def test_a_common_send_records_what_the_general_path_does(api, runtime):
    """The attempt is sent through the console provider and one message.sent event is written."""
    verification_sid = api.start().json["sid"]
    sid = attempt_sid(runtime, verification_sid)
    assert jobs.deliver(sid) == "sent"
    with runtime.sessions() as session:
        attempt = session.get(SendAttempt, sid)
        assert attempt is not None
        assert (attempt.status, attempt.provider, attempt.reason_code) == ("sent", "console", None)
        assert attempt.provider_message_id
        assert attempt.date_updated == runtime.clock.now()
        [sent] = session.scalars(
            select(Event).where(Event.subject_sid == sid, Event.type == "message.sent")
        ).all()
    assert sent.account_sid == attempt.account_sid
    assert sent.payload["status"] == "sent"
    assert sent.payload["provider"] == "console"
    assert sent.payload["verification_sid"] == verification_sid
    assert sent.payload["to"] != "+14155550123"  # masked
    assert jobs.deliver(sid) == "already_sent"  # a requeued job sends nothing


class CancelingGate(OpenGate):
    """Cancels the verification while the worker screens it: between its read and its claim."""

    def __init__(self, runtime, verification_sid: str) -> None:
        self._runtime = runtime
        self._sid = verification_sid

    def screen_delivery(self, ctx: SendContext) -> Screening:
        with self._runtime.engine.begin() as conn:
            conn.execute(
                update(Verification).where(Verification.sid == self._sid).values(status="canceled")
            )
        return Screening()


def test_a_verification_that_ends_before_the_claim_is_not_sent(api, runtime):
    """The claim re-checks the verification: no provider call, the attempt canceled."""
    verification_sid = api.start().json["sid"]
    sid = attempt_sid(runtime, verification_sid)
    with runtime.engine.connect() as connection, runtime.sessions(bind=connection) as session:
        gate = CancelingGate(runtime, verification_sid)
        outcome = jobs.delivery().sender(session, gate, lane=connection).deliver(sid)
    assert outcome == "verification_canceled"
    with runtime.sessions() as session:
        attempt = session.get(SendAttempt, sid)
        assert attempt is not None
        assert (attempt.status, attempt.reason_code) == ("canceled", "verification_canceled")


def test_a_common_send_times_the_next_channel(app, runtime):
    """With fallback channels, a sent attempt's channel timeout is set, as on the general path."""
    api = ApiClient(
        app, make_tenant(runtime, "Fb", fallback_channels=("sms", "call"), channel_timeout=30)
    )
    sid = attempt_sid(runtime, api.start().json["sid"])
    assert jobs.deliver(sid) == "sent"
    due = runtime.clock.now().timestamp() + 30
    assert (f"timeout:{sid}", due) in jobs.delivery().timers.pending()
