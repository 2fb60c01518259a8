"""How the verification lifecycle is stored: the status values, and the statements its hot paths
run, built once with bound parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Table,
    bindparam,
    case,
    delete,
    exists,
    insert,
    literal,
    literal_column,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from verify.models import (
    CheckAttempt,
    DestinationFailures,
    Event,
    SendAttempt,
    UTCDateTime,
    Verification,
)

PENDING = "pending"
APPROVED = "approved"
CANCELED = "canceled"
EXPIRED = "expired"
MAX_ATTEMPTS = "max_attempts_reached"
FAILED = "failed"

# The hot paths speak SQL Core to the tables: rows come back as plain values and are wrapped in
# transient (session-less) model objects for the callers, with no unit of work to flush.
VERIFICATIONS = cast(Table, Verification.__table__)
ATTEMPTS = cast(Table, SendAttempt.__table__)
CHECKS = cast(Table, CheckAttempt.__table__)
EVENTS = cast(Table, Event.__table__)
FAILURES = cast(Table, DestinationFailures.__table__)
V = VERIFICATIONS.c
F = FAILURES.c


def status_is(column: ColumnElement[str], status: str) -> ColumnElement[bool]:
    """``status = '<status>'`` spelt as SQL, not as a bound parameter: PostgreSQL's cached generic
    plans can then use partial indexes on the status."""
    return column == literal_column(f"'{status}'")


IS_PENDING = status_is(V.status, PENDING)


def binds(table: Table, prefix: str, columns: Sequence[str]) -> list[BindParameter[Any]]:
    """Typed parameters ``<prefix><column>`` for a SELECT that feeds an INSERT: the dialect casts
    each one (JSON for an event's payload)."""
    return [bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in columns]


# Statements are built once, with bound parameters, so that a request only binds values to an
# already compiled statement. Parameters are named "p_..." where a column has the same name.
SELECT_VERIFICATION = select(VERIFICATIONS).where(V.sid == bindparam("p_sid"))
SELECT_PENDING = select(VERIFICATIONS).where(
    V.service_sid == bindparam("service_sid"),
    V.destination == bindparam("destination"),
    IS_PENDING,
)
# A check's target, with its destination's failure streak in the same query.
_TARGET = select(VERIFICATIONS, F.consecutive, F.last_failure_at).outerjoin(
    FAILURES, (F.account_sid == V.account_sid) & (F.destination == V.destination)
)
SELECT_TARGET_BY_SID = _TARGET.where(V.sid == bindparam("p_sid"))
# By To: the pending verification if there is one, else the newest (its state is the answer).
SELECT_TARGET_BY_TO = (
    _TARGET.where(
        V.account_sid == bindparam("account_sid"),
        V.service_sid == bindparam("service_sid"),
        V.destination == bindparam("destination"),
    )
    .order_by(IS_PENDING.desc(), V.date_created.desc())
    .limit(1)
)
SELECT_ATTEMPTS = (
    select(ATTEMPTS)
    .where(ATTEMPTS.c.verification_sid == bindparam("p_sid"))
    .order_by(ATTEMPTS.c.number, ATTEMPTS.c.date_created)
)
SELECT_DUE = (
    select(VERIFICATIONS)
    .where(IS_PENDING, V.expires_at <= bindparam("now", type_=UTCDateTime()))
    .order_by(V.expires_at)
    .limit(bindparam("batch"))
)
# Conditional increments: only one of N concurrent requests can pass the cap.
CLAIM_SEND = (
    update(VERIFICATIONS)
    .where(V.sid == bindparam("p_sid"), IS_PENDING, V.send_attempts < bindparam("cap"))
    .values(send_attempts=V.send_attempts + 1)
    .returning(V.send_attempts)
)
# A check can be counted while the verification is pending, unexpired and has guesses left.
_OPEN = (
    IS_PENDING,
    V.check_attempts < bindparam("cap"),
    V.expires_at > bindparam("now", type_=UTCDateTime()),
)
COUNT_CHECK = (
    update(VERIFICATIONS)
    .where(V.sid == bindparam("p_sid"), *_OPEN)
    .values(check_attempts=V.check_attempts + 1)
    .returning(V.check_attempts)
)
# A check counted in one statement when nothing stands in its way (see VerificationService.check):
# open, and on a destination within its failure budget.
_COUNTABLE = (
    *_OPEN,
    ~select(F.consecutive)
    .where(
        F.account_sid == V.account_sid,
        F.destination == V.destination,
        F.consecutive >= bindparam("budget"),
        F.last_failure_at > bindparam("since", type_=UTCDateTime()),
    )
    .exists(),
)
_COUNT = update(VERIFICATIONS).values(check_attempts=V.check_attempts + 1).returning(VERIFICATIONS)
COUNT_FAST_BY_SID = _COUNT.where(
    V.sid == bindparam("p_sid"), V.service_sid == bindparam("p_service_sid"), *_COUNTABLE
)
COUNT_FAST_BY_TO = _COUNT.where(
    V.account_sid == bindparam("p_account_sid"),
    V.service_sid == bindparam("p_service_sid"),
    V.destination == bindparam("p_destination"),
    *_COUNTABLE,
)
INSERT_VERIFICATION = insert(VERIFICATIONS)
INSERT_ATTEMPT = insert(ATTEMPTS)
TRANSITION = update(VERIFICATIONS).where(V.sid == bindparam("p_sid"), IS_PENDING)
INSERT_CHECK = insert(CHECKS)
CLEAR_FAILURES = delete(FAILURES).where(
    F.account_sid == bindparam("account_sid"), F.destination == bindparam("destination")
)


def _upsert_failure(dialect: str) -> Any:
    """One more consecutive failure for a destination; a streak older than ``cutoff`` starts over."""
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert_(FAILURES)
    return stmt.on_conflict_do_update(
        index_elements=[F.account_sid, F.destination],
        set_={
            "consecutive": case(
                (F.last_failure_at <= bindparam("cutoff", type_=UTCDateTime()), 1),
                else_=F.consecutive + 1,
            ),
            "last_failure_at": stmt.excluded.last_failure_at,
        },
    )


UPSERT_FAILURE = {dialect: _upsert_failure(dialect) for dialect in ("postgresql", "sqlite")}
# PostgreSQL: a wrong code's check attempt and its destination's failure in one statement.
RECORD_WRONG_CODE = UPSERT_FAILURE["postgresql"].add_cte(
    insert(CHECKS)
    .values(
        verification_sid=bindparam("p_verification_sid"),
        account_sid=bindparam("p_account_sid"),
        outcome="wrong_code",
        date_created=bindparam("p_date_created", type_=UTCDateTime()),
    )
    .cte("checked")
)


def _insert_unless_pending(dialect: str) -> Any:
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert_(VERIFICATIONS)
        .on_conflict_do_nothing(
            # The partial unique index's predicate, spelt as a literal so PostgreSQL can infer it.
            index_elements=[V.service_sid, V.destination],
            index_where=text(f"status = '{PENDING}'"),
        )
        .returning(V.sid)
    )


INSERT_UNLESS_PENDING = {d: _insert_unless_pending(d) for d in ("postgresql", "sqlite")}


# -- a new verification in one statement (PostgreSQL) ---------------------------------------------


def _create(
    v_columns: Sequence[str], a_columns: Sequence[str], e_columns: Sequence[str], events: int
) -> Select[Any]:
    new = (
        postgresql.insert(VERIFICATIONS)
        .values(dict(zip(v_columns, binds(VERIFICATIONS, "v_", v_columns), strict=True)))
        .on_conflict_do_nothing(
            index_elements=[V.service_sid, V.destination], index_where=text(f"status = '{PENDING}'")
        )
        .returning(V.sid)
        .cte("new_verification")
    )
    # The attempt and the events are written only if the verification was: they select from it.
    attempt = (
        insert(ATTEMPTS)
        .from_select(list(a_columns), select(*binds(ATTEMPTS, "a_", a_columns)).select_from(new))
        .cte("new_attempt")
    )
    rows = [select(*binds(EVENTS, f"e{i}_", e_columns)).select_from(new) for i in range(events)]
    written = insert(EVENTS).from_select(
        list(e_columns), union_all(*rows) if events > 1 else rows[0]
    )
    return select(new.c.sid).add_cte(attempt, written.cte("new_events"))


_Shape = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], int]
_CREATES: dict[_Shape, Select[Any]] = {}


def create_statement(
    v_columns: tuple[str, ...], a_columns: tuple[str, ...], e_columns: tuple[str, ...], events: int
) -> Select[Any]:
    """PostgreSQL: INSERT a verification unless its destination has a pending one, with its first
    send attempt and its ``events`` outbox rows, in one statement (data-modifying CTEs) that
    returns the verification's sid, or no row when it wrote nothing. Parameters are the columns'
    names prefixed ``v_``, ``a_`` and ``e<i>_``. Built once per shape of the rows."""
    shape = (v_columns, a_columns, e_columns, events)
    stmt = _CREATES.get(shape)
    if stmt is None:
        stmt = _CREATES[shape] = _create(*shape)
    return stmt


# -- an approval in one statement (PostgreSQL) ----------------------------------------------------


def _approve(e_columns: Sequence[str]) -> Select[Any]:
    won = (
        update(VERIFICATIONS)
        .where(V.sid == bindparam("p_sid"), IS_PENDING)
        .values(status=APPROVED, date_updated=bindparam("p_date_updated", type_=UTCDateTime()))
        .returning(V.sid)
        .cte("approved")
    )
    # The event, the check attempt and the end of the destination's failure streak are written
    # only if this check won the transition: they select from it.
    event = insert(EVENTS).from_select(
        list(e_columns), select(*binds(EVENTS, "e0_", e_columns)).select_from(won)
    )
    check = insert(CHECKS).from_select(
        ["verification_sid", "account_sid", "outcome", "date_created"],
        select(
            won.c.sid,
            bindparam("p_account_sid", type_=CHECKS.c.account_sid.type),
            literal(APPROVED),
            bindparam("p_date_updated", type_=UTCDateTime()),
        ).select_from(won),
    )
    cleared = delete(FAILURES).where(
        F.account_sid == bindparam("p_account_sid"),
        F.destination == bindparam("p_destination"),
        exists(select(won.c.sid)),
    )
    return select(won.c.sid).add_cte(
        event.cte("approved_event"), check.cte("approved_check"), cleared.cte("cleared")
    )


_APPROVES: dict[tuple[str, ...], Select[Any]] = {}


def approve_statement(e_columns: tuple[str, ...]) -> Select[Any]:
    """PostgreSQL: pending -> approved with its ``verification.approved`` event (parameters
    ``e0_<column>``), the approved check attempt and the end of the destination's failure streak,
    in one statement that returns the sid, or no row if the verification was no longer pending."""
    stmt = _APPROVES.get(e_columns)
    if stmt is None:
        stmt = _APPROVES[e_columns] = _approve(e_columns)
    return stmt
