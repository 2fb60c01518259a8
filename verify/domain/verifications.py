"""The verification lifecycle: start (and resend), cancel/approve, fetch, expire; the check is in
checks.py, what both share in lifecycle.py.

pending ──check ok──────────────▶ approved
   │ ──Nth wrong check─────────▶ max_attempts_reached
   │ ──Status=canceled─────────▶ canceled
   │ ──code_ttl passes─────────▶ expired   (at check/fetch time, and by the sweep)
Every transition is a conditional UPDATE ... WHERE status = 'pending', so concurrent requests cannot
both win, and writes its event in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Insert, Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from verify.config import Limits
from verify.domain import sids
from verify.domain.clock import Clock
from verify.domain.codes import CodeHasher, CodeSealer, generate_code, is_valid_code
from verify.domain.destinations import CHANNELS, Destination, parse_destination
from verify.domain.lifecycle import Lifecycle, Outcome, verification_from
from verify.domain.lifecycle_store import (
    APPROVED,
    ATTEMPTS,
    CANCELED,
    CLAIM_SEND,
    EXPIRED,
    FAILED,
    INSERT_ATTEMPT,
    INSERT_UNLESS_PENDING,
    INSERT_VERIFICATION,
    PENDING,
    SELECT_DUE,
    SELECT_PENDING,
    VERIFICATIONS,
    create_statement,
)
from verify.domain.sends import (
    Dispatcher,
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
    MaxSendAttempts,
    VerificationNotPending,
)
from verify.events import outbox
from verify.models import (
    SendAttempt,
    Verification,
)


class VerificationService(Lifecycle):
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
        super().__init__(
            session, clock=clock, hasher=hasher, limits=limits, gate=gate, services=services
        )
        self._sealer = sealer
        self._dispatcher = dispatcher

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
            self._dispatcher.dispatch(attempt.sid, account_sid)
        if outcome.block is not None:
            raise outcome.block
        return outcome

    def _start(
        self, account_sid: str, service_sid: str, destination: Destination, req: StartRequest
    ) -> tuple[Outcome, SendAttempt]:
        retry_after = None
        with self._session.begin():  # reads only when the service or the rules are not cached
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
        # Most starts are for a destination with nothing pending: the verification, its attempt
        # and their events are written together unless a pending verification exists, and only
        # then the resend path runs. (A blocked send is not pending, so the unique index cannot
        # tell: look first.)
        if screening.block is None:
            attempt = self._attempt(fresh, req.channel, now, screening)
            if self._create_first(fresh, attempt, screening, now):
                return Outcome(fresh, [attempt]), attempt
        with self._session.begin():
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

    def _create_first(
        self, v: Verification, attempt: SendAttempt, screening: Screening, now: datetime
    ) -> bool:
        """Write ``v``, its first ``attempt``, their events and the screening's decisions, unless
        ``v``'s destination has a pending verification on the service (then nothing is written).

        On PostgreSQL the rows are one statement, atomic on its own: when there are no decisions to
        store with them it runs without a transaction around it, sparing a BEGIN and a COMMIT
        round trip. On SQLite the attempt and events follow the verification's INSERT."""
        events = self._events(v, attempt, True, now)
        if not screening.decisions and self._session.get_bind().dialect.name == "postgresql":
            conn = self._session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            created = self._create(conn, v, attempt, events)
            self._session.commit()  # only gives the connection back: there is no transaction
            return created
        with self._session.begin():
            if not self._create(self._conn(), v, attempt, events):
                return False
            self._gate.record(self._session, screening, v, attempt, now)
            return True

    def _create(
        self, conn: Connection, v: Verification, attempt: SendAttempt, events: list[dict[str, Any]]
    ) -> bool:
        """Run ``_create_first``'s writes on ``conn``: False if nothing was written."""
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
            return sum(self._transition(verification_from(row), EXPIRED, now) for row in due.all())

    # -- shared ---------------------------------------------------------------------------------

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

    def _pending_for(
        self, service_sid: str, destination: str, now: datetime
    ) -> Verification | None:
        params = {"service_sid": service_sid, "destination": destination}
        row = self._conn().execute(SELECT_PENDING, params).first()
        if row is None:
            return None
        v = verification_from(row)
        if v.expires_at <= now:
            self._transition(v, EXPIRED, now)
            return None
        return v
