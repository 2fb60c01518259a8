"""The verification lifecycle: start (and resend), check, cancel/approve, fetch, expire.

pending ──check ok──────────────▶ approved
   │ ──Nth wrong check─────────▶ max_attempts_reached
   │ ──Status=canceled─────────▶ canceled
   │ ──code_ttl passes─────────▶ expired   (at check/fetch time, and by the sweep)
Every transition is a conditional UPDATE ... WHERE status = 'pending', so concurrent requests cannot
both win, and writes its event in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Insert, Row, Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from verify.config import Limits
from verify.domain import sids
from verify.domain.clock import Clock
from verify.domain.codes import CodeHasher, CodeSealer, generate_code, is_valid_code
from verify.domain.destinations import CHANNELS, Destination, parse_any, parse_destination
from verify.domain.lifecycle_store import (
    APPROVED,
    ATTEMPTS,
    CANCELED,
    CLAIM_SEND,
    CLEAR_FAILURES,
    COUNT_CHECK,
    COUNT_FAST_BY_SID,
    COUNT_FAST_BY_TO,
    EXPIRED,
    FAILED,
    INSERT_ATTEMPT,
    INSERT_CHECK,
    INSERT_UNLESS_PENDING,
    INSERT_VERIFICATION,
    MAX_ATTEMPTS,
    PENDING,
    RECORD_WRONG_CODE,
    SELECT_ATTEMPTS,
    SELECT_DUE,
    SELECT_PENDING,
    SELECT_TARGET_BY_SID,
    SELECT_TARGET_BY_TO,
    SELECT_VERIFICATION,
    TRANSITION,
    UPSERT_FAILURE,
    VERIFICATIONS,
    approve_statement,
    create_statement,
)
from verify.domain.sends import (
    Dispatcher,
    OpenGate,
    Screening,
    SendContext,
    SendGate,
    StartRequest,
)
from verify.domain.services import ServiceCache, ServiceConfig, test_number_aad
from verify.errors import (
    ChannelDisabled,
    FeatureDisabled,
    InvalidParameter,
    MaxCheckAttempts,
    MaxSendAttempts,
    NoTarget,
    NotFound,
    VerificationNotPending,
    VerifyError,
)
from verify.events import outbox
from verify.models import (
    SendAttempt,
    Verification,
)


@dataclass(frozen=True)
class Outcome:
    """A verification as the API shows it, with the result of a check where there was one."""

    verification: Verification
    attempts: list[SendAttempt]
    valid: bool = False
    block: VerifyError | None = None  # the abuse controls refused this send (raised by ``start``)


def _locked(v: Verification, now: datetime) -> MaxCheckAttempts:
    """60202 for a verification out of guesses. Retrying it never helps: start a new one. Retry-After
    is when its code would have expired anyway."""
    return MaxCheckAttempts(
        "Max check attempts reached for this verification; start a new one",
        retry_after=max(1, int((v.expires_at - now).total_seconds())),
        extra={"verification_sid": v.sid, "verification_status": MAX_ATTEMPTS},
    )


def _verification(row: Row[Any]) -> Verification:
    return Verification(**{c.name: row._mapping[c.name] for c in VERIFICATIONS.c})


class VerificationService:
    def __init__(
        self,
        session: Session,
        *,
        clock: Clock,
        hasher: CodeHasher,
        sealer: CodeSealer,
        dispatcher: Dispatcher,
        limits: Limits,
        gate: SendGate | None = None,
        services: ServiceCache | None = None,
    ) -> None:
        self._session = session
        self._clock = clock
        self._hasher = hasher
        self._sealer = sealer
        self._dispatcher = dispatcher
        self._limits = limits
        self._gate = gate or OpenGate()
        self._services = services or ServiceCache(ttl=0)

    # -- start / resend -------------------------------------------------------------------------

    def start(self, account_sid: str, service_sid: str, req: StartRequest) -> Outcome:
        if req.channel not in CHANNELS:
            raise InvalidParameter("Channel", f"must be one of {', '.join(CHANNELS)}")
        destination = parse_destination(req.to, req.channel)
        if req.custom_code is not None and not is_valid_code(req.custom_code):
            raise InvalidParameter("CustomCode", "must be 4-10 digits")
        try:
            outcome, attempt = self._start(account_sid, service_sid, destination, req)
        except IntegrityError:
            # Another request created the pending verification between our read and our insert
            # (what we are doing is now a resend of it), or the service was just deleted.
            self._session.rollback()
            self._services.forget(service_sid)
            outcome, attempt = self._start(account_sid, service_sid, destination, req)
        if attempt.status == "queued":
            self._dispatcher.dispatch(attempt.sid)
        if outcome.block is not None:
            raise outcome.block
        return outcome

    def _start(
        self, account_sid: str, service_sid: str, destination: Destination, req: StartRequest
    ) -> tuple[Outcome, SendAttempt]:
        retry_after = None
        with self._session.begin():
            service = self._service(account_sid, service_sid)
            if req.channel not in service.channels:
                raise ChannelDisabled(f"The {req.channel} channel is not enabled on this service")
            if req.custom_code is not None and not service.custom_code_enabled:
                raise FeatureDisabled("CustomCode is not enabled on this service")
            now = self._clock.now()
            test_code = self._test_code(service, destination.value)
            # Test numbers cost nothing and reach nobody: they are never screened.
            screening = (
                Screening()
                if test_code is not None
                else self._gate.screen(
                    SendContext(account_sid, service_sid, destination, req.channel, req, None)
                )
            )
            fresh = self._new(service, destination, req, now, test_code, screening)
            # Most starts are for a destination with nothing pending: the verification, its
            # attempt and their events are written together unless a pending verification
            # exists, and only then the resend path runs. (A blocked send is not pending, so the
            # unique index cannot tell: look first.)
            if screening.block is None:
                attempt = self._attempt(fresh, req.channel, now, screening)
                if self._create(fresh, attempt, self._events(fresh, attempt, True, now)):
                    self._gate.record(self._session, screening, fresh, attempt, now)
                    return Outcome(fresh, [attempt]), attempt
            pending = self._pending_for(service_sid, destination.value, now)
            if pending is None:  # blocked, or the pending one had just expired
                self._insert(INSERT_VERIFICATION, fresh)
            v = pending or fresh
            created = v is fresh
            # A resend counts against the send cap; a blocked one is recorded but not counted.
            if (
                not created
                and screening.block is None
                and not self._claim_send(v, service, req.channel, now)
            ):
                retry_after = max(1, int((v.expires_at - now).total_seconds()))
            if retry_after is None:
                attempt = self._attempt(v, req.channel, now, screening)
                self._insert(INSERT_ATTEMPT, attempt)
                events = self._events(v, attempt, created, now)
                if events:
                    outbox.write(self._session, *events)
                self._gate.record(self._session, screening, v, attempt, now)
                attempts = [attempt] if created else self._attempts(v.sid)
        if retry_after is not None:
            raise MaxSendAttempts(
                f"Max send attempts reached for this verification; try again in {retry_after}s",
                retry_after=retry_after,
            )
        return Outcome(v, attempts, block=screening.block), attempt

    def _new(
        self,
        service: ServiceConfig,
        destination: Destination,
        req: StartRequest,
        now: datetime,
        test_code: str | None,
        screening: Screening,
    ) -> Verification:
        """A new verification, not yet written."""
        sid = sids.new_sid(sids.VERIFICATION)
        blocked = screening.block is not None
        code = test_code or req.custom_code or generate_code(service.code_length)
        return Verification(
            sid=sid,
            account_sid=service.account_sid,
            service_sid=service.sid,
            destination=destination.value,
            country=destination.country,
            channel=req.channel,
            # A blocked first send leaves a failed verification behind, so that the block is
            # visible on it; it never had a code anyone could receive.
            status=FAILED if blocked else PENDING,
            code_hash="" if blocked else self._hasher.hash(sid, code),
            sealed_code=b"" if blocked else self._sealer.seal(sid, code),
            check_attempts=0,
            send_attempts=1,
            is_test=test_code is not None,
            locale=req.locale,
            custom_friendly_name=req.custom_friendly_name,
            amount=req.amount,
            payee=req.payee,
            status_callback=req.status_callback,
            expires_at=now + timedelta(seconds=service.code_ttl),
            date_created=now,
            date_updated=now,
        )

    def _create(self, v: Verification, attempt: SendAttempt, events: list[dict[str, Any]]) -> bool:
        """Write ``v``, its first ``attempt`` and its ``events``, unless ``v``'s destination has a
        pending verification on the service (then nothing is written). One statement on
        PostgreSQL; on SQLite the attempt and events follow the verification's INSERT."""
        conn = self._conn()
        v_row, a_row = self._values(VERIFICATIONS, v), self._values(ATTEMPTS, attempt)
        if conn.dialect.name != "postgresql":
            if conn.execute(INSERT_UNLESS_PENDING[conn.dialect.name], v_row).first() is None:
                return False
            conn.execute(INSERT_ATTEMPT, a_row)
            outbox.write(self._session, *events)
            return True
        stmt = create_statement(tuple(v_row), tuple(a_row), tuple(events[0]), len(events))
        params = {f"v_{k}": x for k, x in v_row.items()}
        params.update({f"a_{k}": x for k, x in a_row.items()})
        for i, event in enumerate(events):
            params.update({f"e{i}_{k}": x for k, x in event.items()})
        return conn.execute(stmt, params).first() is not None

    def _claim_send(
        self, v: Verification, service: ServiceConfig, channel: str, now: datetime
    ) -> bool:
        """Count one more send on ``v`` if its cap allows; atomic across concurrent requests."""
        params = {
            "p_sid": v.sid,
            "cap": service.max_send_attempts,
            "channel": channel,
            "date_updated": now,
        }
        sends = self._conn().execute(CLAIM_SEND, params).scalar_one_or_none()
        if sends is None:
            return False
        v.send_attempts, v.channel, v.date_updated = sends, channel, now
        return True

    @staticmethod
    def _attempt(v: Verification, channel: str, now: datetime, screening: Screening) -> SendAttempt:
        """The next send attempt of ``v``, not yet written."""
        # Blocked: refused by the abuse controls. Test: never sent and never costs anything.
        status = "blocked" if screening.block is not None else "test" if v.is_test else "queued"
        return SendAttempt(
            sid=sids.new_sid(sids.ATTEMPT),
            verification_sid=v.sid,
            account_sid=v.account_sid,
            service_sid=v.service_sid,
            number=v.send_attempts,
            channel=channel,
            status=status,
            provider="test" if status == "test" else None,
            reason_code=screening.reason_code if screening.block is not None else None,
            date_created=now,
            date_updated=now,
        )

    @staticmethod
    def _events(
        v: Verification, attempt: SendAttempt, created: bool, now: datetime
    ) -> list[dict[str, Any]]:
        """The outbox rows of a start: the new verification's status, and a queued message."""
        events = [outbox.verification_row(f"verification.{v.status}", v, now)] if created else []
        if attempt.status == "queued":
            events.append(outbox.message_row("message.queued", attempt, v.destination, now))
        return events

    def _test_code(self, service: ServiceConfig, destination: str) -> str | None:
        sealed = service.test_numbers.get(destination)
        if sealed is None:
            return None
        return self._sealer.open(test_number_aad(service.sid, destination), sealed)

    # -- check ----------------------------------------------------------------------------------

    def check(
        self,
        account_sid: str,
        service_sid: str,
        code: str | None,
        *,
        to: str | None = None,
        verification_sid: str | None = None,
    ) -> Outcome:
        if not to and not verification_sid:
            raise NoTarget("Either To or VerificationSid must be given")
        if not code:
            raise InvalidParameter("Code", "is required")
        if not is_valid_code(code):
            raise InvalidParameter("Code", "must be 4-10 digits")
        destination = parse_any(to).value if to else None

        with self._session.begin():
            service = self._service(account_sid, service_sid)
            now = self._clock.now()
            # The usual case takes one statement: a pending, unexpired verification with guesses
            # left, on a destination within its failure budget. Anything else takes the long way,
            # which finds out why, and still counts the attempt before comparing.
            v = self._count_fast(service, destination, verification_sid, now)
            counted, failure = v is not None, None
            if v is None:
                v, streak = self._target(account_sid, service_sid, destination, verification_sid)
                failure = self._refusal(v, streak, now)
                counted = failure is None and self._count(v, service, now)
            if failure is None:
                valid = counted and self._judge(v, service, code, now)
                if v.status == MAX_ATTEMPTS:
                    failure = _locked(v, now)
                elif not valid and v.status != PENDING:
                    # lost a race to another check
                    failure = VerificationNotPending(v.sid, v.status)
                else:
                    outcome = Outcome(v, [], valid=valid)  # a check answer lists no attempts
        if failure is not None:
            raise failure
        if outcome.valid:
            self._gate.approved(outcome.verification)
        return outcome

    def _target(
        self, account_sid: str, service_sid: str, destination: str | None, sid: str | None
    ) -> tuple[Verification, Row[Any] | None]:
        """The verification a check is for, with its destination's failure streak."""
        if sid:
            row = self._conn().execute(SELECT_TARGET_BY_SID, {"p_sid": sid}).first()
            if row is None or row.service_sid != service_sid:
                raise NotFound(f"The requested resource {sid} was not found")
        else:
            params = {
                "account_sid": account_sid,
                "service_sid": service_sid,
                "destination": destination,
            }
            row = self._conn().execute(SELECT_TARGET_BY_TO, params).first()
            if row is None:
                raise NotFound("No pending verification found for this destination")
        return _verification(row), row

    def _refusal(self, v: Verification, streak: Row[Any] | None, now: datetime) -> Exception | None:
        """Why this check cannot be compared at all (recorded state changes still commit)."""
        self._expire_if_due(v, now)
        if v.status == MAX_ATTEMPTS:
            return _locked(v, now)
        if v.status != PENDING:
            return VerificationNotPending(v.sid, v.status)
        if self._budget_exhausted(streak, now):
            self._record_check(v, "budget_exhausted", now)
            return MaxCheckAttempts(
                "Too many failed checks for this destination; try again later",
                retry_after=self._limits.destination_failure_window,
                extra={"verification_sid": v.sid},
            )
        return None

    def _count_fast(
        self, service: ServiceConfig, destination: str | None, sid: str | None, now: datetime
    ) -> Verification | None:
        """Count a check on the target if nothing stands in its way; the counted row, or None."""
        window = timedelta(seconds=self._limits.destination_failure_window)
        params = {
            "p_service_sid": service.sid,
            "cap": service.max_check_attempts,
            "now": now,
            "budget": self._limits.destination_failure_budget,
            "since": now - window,
            "date_updated": now,
        }
        if sid:
            params["p_sid"] = sid
            stmt = COUNT_FAST_BY_SID
        else:
            params["p_account_sid"] = service.account_sid
            params["p_destination"] = destination
            stmt = COUNT_FAST_BY_TO
        row = self._conn().execute(stmt, params).first()
        return None if row is None else _verification(row)

    def _count(self, v: Verification, service: ServiceConfig, now: datetime) -> bool:
        """Count the attempt before comparing: a conditional increment that only one of N
        concurrent checks can perform past the cap. False (and locked) if none are left."""
        params = {
            "p_sid": v.sid,
            "cap": service.max_check_attempts,
            "now": now,
            "date_updated": now,
        }
        counted = self._conn().execute(COUNT_CHECK, params).scalar_one_or_none()
        if counted is None:
            self._reload(v)
            if v.status == PENDING:
                self._transition(v, MAX_ATTEMPTS, now)
            return False
        v.check_attempts, v.date_updated = counted, now
        return True

    def _judge(self, v: Verification, service: ServiceConfig, code: str, now: datetime) -> bool:
        """Compare a counted check's code and record the result."""
        if self._hasher.verify(v.sid, code, v.code_hash):
            return self._approve(v, now)
        self._record_wrong_code(v, now)
        if v.check_attempts >= service.max_check_attempts:
            self._transition(v, MAX_ATTEMPTS, now)
        return False

    def _budget_exhausted(self, streak: Row[Any] | None, now: datetime) -> bool:
        if streak is None or streak.consecutive is None:
            return False
        window = timedelta(seconds=self._limits.destination_failure_window)
        return bool(
            streak.consecutive >= self._limits.destination_failure_budget
            and streak.last_failure_at > now - window
        )

    def _approve(self, v: Verification, now: datetime) -> bool:
        """A right code: pending -> approved with its event, the check attempt, and the end of the
        destination's failure streak. False if another request changed the status first. One
        statement on PostgreSQL."""
        conn = self._conn()
        if conn.dialect.name != "postgresql":
            if not self._transition(v, APPROVED, now):
                return False
            self._record_check(v, "approved", now)
            conn.execute(
                CLEAR_FAILURES, {"account_sid": v.account_sid, "destination": v.destination}
            )
            return True
        v.status = APPROVED  # as the statement leaves it, for the event
        event = outbox.verification_row(f"verification.{APPROVED}", v, now)
        params = {f"e0_{k}": x for k, x in event.items()}
        params.update(
            p_sid=v.sid,
            p_date_updated=now,
            p_account_sid=v.account_sid,
            p_destination=v.destination,
        )
        if conn.execute(approve_statement(tuple(event)), params).first() is None:
            self._reload(v)
            return False
        v.date_updated = now
        return True

    def _record_wrong_code(self, v: Verification, now: datetime) -> None:
        """The check attempt, and one more consecutive failure for the destination (an old streak
        starts over). One statement on PostgreSQL."""
        conn = self._conn()
        window = timedelta(seconds=self._limits.destination_failure_window)
        failure = {
            "account_sid": v.account_sid,
            "destination": v.destination,
            "consecutive": 1,
            "last_failure_at": now,
            "cutoff": now - window,
        }
        if conn.dialect.name != "postgresql":
            self._record_check(v, "wrong_code", now)
            conn.execute(UPSERT_FAILURE[conn.dialect.name], failure)
            return
        check = {"p_verification_sid": v.sid, "p_account_sid": v.account_sid, "p_date_created": now}
        conn.execute(RECORD_WRONG_CODE, {**failure, **check})

    def _record_check(self, v: Verification, outcome: str, now: datetime) -> None:
        values = {
            "verification_sid": v.sid,
            "account_sid": v.account_sid,
            "outcome": outcome,
            "date_created": now,
        }
        self._conn().execute(INSERT_CHECK, values)

    # -- fetch, cancel, approve -------------------------------------------------------------------

    def fetch(self, account_sid: str, service_sid: str, sid: str) -> Outcome:
        with self._session.begin():
            self._service(account_sid, service_sid)
            v = self._verification(service_sid, sid)
            self._expire_if_due(v, self._clock.now())
            return Outcome(v, self._attempts(v.sid), valid=v.status == APPROVED)

    def set_status(self, account_sid: str, service_sid: str, sid: str, status: str) -> Outcome:
        if status not in (CANCELED, APPROVED):
            raise InvalidParameter("Status", "must be canceled or approved")
        with self._session.begin():
            service = self._service(account_sid, service_sid)
            if status == APPROVED and not service.manual_approval_enabled:
                raise FeatureDisabled(
                    "Approving a verification by API is not enabled on this service"
                )
            v = self._verification(service_sid, sid)
            now = self._clock.now()
            self._expire_if_due(v, now)
            changed = v.status == PENDING and self._transition(v, status, now)
            if changed:
                outcome = Outcome(v, self._attempts(v.sid), valid=status == APPROVED)
        if not changed:
            raise VerificationNotPending(v.sid, v.status)
        if status == APPROVED:
            self._gate.approved(v)
        return outcome

    # -- expiry ---------------------------------------------------------------------------------

    def expire_due(self, batch: int = 500) -> int:
        """Move pending verifications past their TTL to ``expired`` (the periodic sweep)."""
        with self._session.begin():
            now = self._clock.now()
            due = self._conn().execute(SELECT_DUE, {"now": now, "batch": batch})
            return sum(self._transition(_verification(row), EXPIRED, now) for row in due.all())

    def _expire_if_due(self, v: Verification, now: datetime) -> None:
        if v.status == PENDING and v.expires_at <= now:
            self._transition(v, EXPIRED, now)

    # -- shared ---------------------------------------------------------------------------------

    def _conn(self) -> Connection:
        return self._session.connection()

    def _insert(self, stmt: Insert, obj: Verification | SendAttempt) -> None:
        self._conn().execute(stmt, self._values(cast(Table, stmt.table), obj))

    @staticmethod
    def _values(table: Table, obj: Verification | SendAttempt) -> dict[str, Any]:
        """The row ``obj`` describes; columns it leaves unset take their scalar default, which
        ``obj`` then shows too."""
        values = {}
        for column in table.c:
            if column.name in obj.__dict__:
                values[column.name] = obj.__dict__[column.name]
            elif isinstance(column.default, ScalarElementColumnDefault):
                values[column.name] = column.default.arg
                setattr(obj, column.name, column.default.arg)
        return values

    def _reload(self, v: Verification) -> None:
        row = self._conn().execute(SELECT_VERIFICATION, {"p_sid": v.sid}).one()
        for name, value in row._mapping.items():
            setattr(v, name, value)

    def _transition(self, v: Verification, status: str, now: datetime) -> bool:
        """pending -> ``status`` if still pending; writes the event. False if someone else won."""
        params = {"p_sid": v.sid, "status": status, "date_updated": now}
        result = self._conn().execute(TRANSITION, params)
        if result.rowcount != 1:
            self._reload(v)
            return False
        v.status, v.date_updated = status, now
        outbox.verification_event(self._session, f"verification.{status}", v, now)
        return True

    def _service(self, account_sid: str, service_sid: str) -> ServiceConfig:
        service = self._services.load(self._session, service_sid)
        if service is None or service.account_sid != account_sid:
            raise NotFound(f"The requested resource /Services/{service_sid} was not found")
        return service

    def _verification(self, service_sid: str, sid: str) -> Verification:
        row = self._conn().execute(SELECT_VERIFICATION, {"p_sid": sid}).first()
        if row is None or row.service_sid != service_sid:
            raise NotFound(f"The requested resource {sid} was not found")
        return _verification(row)

    def _pending_for(
        self, service_sid: str, destination: str, now: datetime
    ) -> Verification | None:
        params = {"service_sid": service_sid, "destination": destination}
        row = self._conn().execute(SELECT_PENDING, params).first()
        if row is None:
            return None
        v = _verification(row)
        if v.expires_at <= now:
            self._transition(v, EXPIRED, now)
            return None
        return v

    def _attempts(self, verification_sid: str) -> list[SendAttempt]:
        rows = self._conn().execute(SELECT_ATTEMPTS, {"p_sid": verification_sid})
        return [SendAttempt(**row._mapping) for row in rows]
