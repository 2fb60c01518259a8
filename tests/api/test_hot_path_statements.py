"""What a start and a check write, statement by statement: the hot paths' budget, and that the
statements folded together on PostgreSQL write everything they stand for, or nothing."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, func, select

from tests.conftest import ApiClient, make_tenant
from verify.models import CheckAttempt, DestinationFailures, Event, SendAttempt, Verification
from verify.runtime import Runtime

TO = "+14155550123"


class Seen(list[str]):
    """The statements run, and for each whether the driver ran it in autocommit mode (on
    PostgreSQL: with no BEGIN before it and no COMMIT after it)."""

    def __init__(self) -> None:
        super().__init__()
        self.autocommit: list[bool] = []


@contextmanager
def statements(runtime: Runtime) -> Iterator[Seen]:
    seen = Seen()

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if not statement.startswith("BEGIN"):  # SQLite's transactions start with a statement
            seen.append(" ".join(statement.split()))
            seen.autocommit.append(
                getattr(conn.connection.dbapi_connection, "autocommit", None) is True
            )

    event.listen(runtime.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(runtime.engine, "before_cursor_execute", record)


def written(runtime: Runtime, verification_sid: str) -> tuple[int, list[str], list[str]]:
    """Verifications with this sid, its attempts' statuses, and the types of its events."""
    with runtime.sessions() as s:
        count = s.scalar(select(func.count()).where(Verification.sid == verification_sid))
        attempts = s.scalars(
            select(SendAttempt).where(SendAttempt.verification_sid == verification_sid)
        ).all()
        subjects = [verification_sid, *(a.sid for a in attempts)]
        events = s.scalars(
            select(Event.type).where(Event.subject_sid.in_(subjects)).order_by(Event.id)
        ).all()
        return int(count or 0), [a.status for a in attempts], list(events)


def test_a_first_start_writes_in_one_statement_on_postgresql(
    api: ApiClient, runtime: Runtime
) -> None:
    assert api.start("+14155550100").status_code == 201  # credentials and service now cached
    with statements(runtime) as seen:
        r = api.start(TO)
    assert r.status_code == 201, r.json
    if runtime.engine.dialect.name == "postgresql":
        assert len(seen) == 1, seen
        assert seen[0].startswith("WITH new_verification AS (INSERT INTO verifications")
        assert seen.autocommit == [True]  # atomic on its own: no BEGIN/COMMIT round trips
    else:  # the verification, its attempt, its events
        assert [s.split(" (")[0] for s in seen] == [
            "INSERT INTO verifications",
            "INSERT INTO send_attempts",
            "INSERT INTO events",
        ]
    assert written(runtime, r.json["sid"]) == (
        1,
        ["queued"],
        ["verification.pending", "message.queued"],
    )


def test_a_resend_writes_nothing_twice(api: ApiClient, runtime: Runtime) -> None:
    sid = api.start(TO).json["sid"]
    with statements(runtime) as seen:
        r = api.start(TO)
    assert r.status_code == 201
    assert r.json["sid"] == sid
    if runtime.engine.dialect.name == "postgresql":
        # The first start's statement found the pending verification and wrote nothing; the
        # resend that follows is one transaction again.
        assert seen.autocommit[0] is True
        assert len(seen) > 2, seen
        assert not any(seen.autocommit[1:]), seen
    assert len(r.json["send_code_attempts"]) == 2
    count, attempts, events = written(runtime, sid)
    assert count == 1
    assert attempts == ["queued", "queued"]
    assert events == ["verification.pending", "message.queued", "message.queued"]


def test_a_test_number_start_writes_its_one_event(app, runtime: Runtime) -> None:
    """A test number's attempt is never queued: no message event, only the verification's."""
    api = ApiClient(app, make_tenant(runtime, "Sandbox", test_numbers={TO: "123456"}))
    r = api.start(TO)
    assert r.status_code == 201, r.json
    assert written(runtime, r.json["sid"]) == (1, ["test"], ["verification.pending"])


def check_rows(runtime: Runtime, verification_sid: str, destination: str) -> tuple:
    """The check attempts' outcomes, the destination's failure streak, and the events."""
    with runtime.sessions() as s:
        outcomes = s.scalars(
            select(CheckAttempt.outcome)
            .where(CheckAttempt.verification_sid == verification_sid)
            .order_by(CheckAttempt.id)
        ).all()
        streak = s.scalar(
            select(DestinationFailures.consecutive).where(
                DestinationFailures.destination == destination
            )
        )
    return list(outcomes), streak, written(runtime, verification_sid)[2]


def test_checks_write_in_two_statements_on_postgresql(api: ApiClient, runtime: Runtime) -> None:
    sid = api.start(TO).json["sid"]
    with runtime.sessions() as s:
        code = runtime.sealer.open(sid, s.get_one(Verification, sid).sealed_code)
    wrong = f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"
    with statements(runtime) as seen:
        r = api.check(wrong)
    assert r.status_code == 200
    assert r.json["status"] == "pending"
    assert check_rows(runtime, sid, TO)[:2] == (["wrong_code"], 1)
    with statements(runtime) as seen_right:
        r = api.check(code)
    assert r.json["status"] == "approved"
    if runtime.engine.dialect.name == "postgresql":
        # counted; then the outcome with everything it changes
        assert len(seen) == 2, seen
        assert len(seen_right) == 2, seen_right
    outcomes, streak, events = check_rows(runtime, sid, TO)
    assert outcomes == ["wrong_code", "approved"]
    assert streak is None  # the right code ended the destination's failure streak
    assert events[-1] == "verification.approved"
    assert events.count("verification.approved") == 1
