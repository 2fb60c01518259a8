"""The verification lifecycle: start (and resend), check, cancel/approve, fetch, expire.

pending ──check ok──────────────▶ approved
   │ ──Nth wrong check─────────▶ max_attempts_reached
   │ ──Status=canceled─────────▶ canceled
   │ ──code_ttl passes─────────▶ expired   (at check/fetch time, and by the sweep)
Every transition is a conditional UPDATE ... WHERE status = 'pending', so concurrent requests cannot
both win, and writes its event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import and_, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from verify.config import Limits
from verify.domain import sids
from verify.domain.clock import Clock
from verify.domain.codes import CodeHasher, CodeSealer, generate_code, is_valid_code
from verify.domain.destinations import CHANNELS, Destination, parse_any, parse_destination
from verify.domain.services import test_number_aad
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
    CheckAttempt,
    DestinationFailures,
    SendAttempt,
    Service,
    TestNumber,
    Verification,
)

PENDING = "pending"
APPROVED = "approved"
CANCELED = "canceled"
EXPIRED = "expired"
MAX_ATTEMPTS = "max_attempts_reached"
FAILED = "failed"


class Dispatcher(Protocol):
    """Hands a committed send attempt to the delivery workers."""

    def dispatch(self, attempt_sid: str) -> None: ...


@dataclass(frozen=True)
class StartRequest:
    to: str
    channel: str
    custom_code: str | None = None
    locale: str | None = None
    custom_friendly_name: str | None = None
    amount: str | None = None
    payee: str | None = None
    # What the abuse controls look at: who asked, from where, and the tenant's own limit keys.
    credential_sid: str | None = None
    client_ip: str | None = None
    risk_check: bool = True
    rate_limits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendContext:
    """One send as the abuse controls see it, before anything is written or sent."""

    account_sid: str
    service_sid: str
    destination: Destination
    channel: str
    request: StartRequest
    resend_of: str | None  # the pending verification this send is a resend of


@dataclass(frozen=True)
class Screening:
    """The abuse controls' answer for one send."""

    decisions: tuple[object, ...] = ()  # the gate's own records, handed back to ``record``
    block: VerifyError | None = None  # refused: raised once the blocked attempt is committed
    reason_code: str | None = None  # the blocked attempt's reason code


class SendGate(Protocol):
    """Rate limits and fraud rules, consulted on every send before anything costs money."""

    def screen(self, ctx: SendContext) -> Screening:
        """Decide on one send. May raise (429 over a limit, 503 without Redis): nothing is written."""
        ...

    def screen_delivery(self, ctx: SendContext) -> Screening:
        """Decide again in the worker, just before a provider is called (rules change; fallback
        and failover attempts were never screened by a request). Rules only: no limit is counted."""
        ...

    def record(
        self,
        session: Session,
        screening: Screening,
        verification: Verification,
        attempt: SendAttempt,
        now: datetime,
    ) -> None:
        """Store the decisions, in the transaction that writes the attempt."""
        ...

    def approved(self, verification: Verification) -> None:
        """A verification was approved (after commit): conversion statistics."""
        ...


class OpenGate:
    """No abuse controls: every send passes (tests of the lifecycle alone)."""

    def screen(self, ctx: SendContext) -> Screening:
        return Screening()

    def screen_delivery(self, ctx: SendContext) -> Screening:
        return Screening()

    def record(
        self,
        session: Session,
        screening: Screening,
        verification: Verification,
        attempt: SendAttempt,
        now: datetime,
    ) -> None:
        return None

    def approved(self, verification: Verification) -> None:
        return None


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


def _committed(v: Verification, **values: object) -> None:
    """Record what a conditional UPDATE just wrote, without reading the row back."""
    for name, value in values.items():
        set_committed_value(v, name, value)


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
    ) -> None:
        self._session = session
        self._clock = clock
        self._hasher = hasher
        self._sealer = sealer
        self._dispatcher = dispatcher
        self._limits = limits
        self._gate = gate or OpenGate()

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
            # Another request created the pending verification between our read and our insert:
            # what we are doing is now a resend of it.
            self._session.rollback()
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
            if req.channel not in service.channels.split(","):
                raise ChannelDisabled(f"The {req.channel} channel is not enabled on this service")
            if req.custom_code is not None and not service.custom_code_enabled:
                raise FeatureDisabled("CustomCode is not enabled on this service")
            now = self._clock.now()
            v = self._pending_for(service_sid, destination.value, now)
            created = v is None
            test_code = self._test_code(service.sid, destination.value) if created else None
            is_test = test_code is not None if v is None else v.is_test
            # Test numbers cost nothing and reach nobody: they are never screened.
            screening = (
                Screening()
                if is_test
                else self._gate.screen(
                    SendContext(
                        account_sid,
                        service_sid,
                        destination,
                        req.channel,
                        req,
                        v.sid if v else None,
                    )
                )
            )
            if v is None:
                v = self._create(service, destination, req, now, test_code, screening)
            elif screening.block is not None:
                pass  # a blocked resend is recorded but not counted against the send cap
            elif not self._claim_send(v, service, now):
                retry_after = max(1, int((v.expires_at - now).total_seconds()))
            else:
                v.channel = req.channel
            if retry_after is None:
                attempt = self._add_attempt(v, req.channel, now, screening)
                self._gate.record(self._session, screening, v, attempt, now)
                attempts = [attempt] if created else self._attempts(v.sid)
        if retry_after is not None:
            raise MaxSendAttempts(
                f"Max send attempts reached for this verification; try again in {retry_after}s",
                retry_after=retry_after,
            )
        return Outcome(v, attempts, block=screening.block), attempt

    def _create(
        self,
        service: Service,
        destination: Destination,
        req: StartRequest,
        now: datetime,
        test_code: str | None,
        screening: Screening,
    ) -> Verification:
        sid = sids.new_sid(sids.VERIFICATION)
        blocked = screening.block is not None
        code = test_code or req.custom_code or generate_code(service.code_length)
        v = Verification(
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
            expires_at=now + timedelta(seconds=service.code_ttl),
            date_created=now,
            date_updated=now,
        )
        self._session.add(v)
        self._session.flush()  # the row first: attempts reference it, and no relationship orders them
        outbox.verification_event(self._session, f"verification.{v.status}", v, now)
        return v

    def _claim_send(self, v: Verification, service: Service, now: datetime) -> bool:
        """Count one more send on ``v`` if its cap allows; atomic across concurrent requests."""
        result = self._session.execute(
            update(Verification)
            .where(
                Verification.sid == v.sid,
                Verification.status == PENDING,
                Verification.send_attempts < service.max_send_attempts,
            )
            .values(send_attempts=Verification.send_attempts + 1, date_updated=now)
            .returning(Verification.send_attempts)
            .execution_options(synchronize_session=False)
        )
        sends = result.scalar_one_or_none()
        if sends is None:
            return False
        _committed(v, send_attempts=sends, date_updated=now)
        return True

    def _add_attempt(
        self, v: Verification, channel: str, now: datetime, screening: Screening
    ) -> SendAttempt:
        # Blocked: refused by the abuse controls. Test: never sent and never costs anything.
        status = "blocked" if screening.block is not None else "test" if v.is_test else "queued"
        attempt = SendAttempt(
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
        self._session.add(attempt)
        if status == "queued":
            outbox.message_event(self._session, "message.queued", attempt, v.destination, now)
        return attempt

    def _test_code(self, service_sid: str, destination: str) -> str | None:
        row = self._session.scalar(
            select(TestNumber).where(
                TestNumber.service_sid == service_sid, TestNumber.destination == destination
            )
        )
        if row is None:
            return None
        return self._sealer.open(test_number_aad(service_sid, destination), row.sealed_code)

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
            v = self._target(service_sid, destination, verification_sid, now)
            failure = self._refusal(v, service, now)
            if failure is None:
                valid = self._compare(v, service, code, now)
                if v.status == MAX_ATTEMPTS:
                    failure = _locked(v, now)
                elif not valid and v.status != PENDING:
                    failure = VerificationNotPending(
                        v.sid, v.status
                    )  # lost a race to another check
                else:
                    outcome = Outcome(v, [], valid=valid)  # a check answer lists no attempts
        if failure is not None:
            raise failure
        if outcome.valid:
            self._gate.approved(outcome.verification)
        return outcome

    def _target(
        self, service_sid: str, destination: str | None, sid: str | None, now: datetime
    ) -> Verification:
        if sid:
            v = self._session.get(Verification, sid)
            if v is None or v.service_sid != service_sid:
                raise NotFound(f"The requested resource {sid} was not found")
            return v
        assert destination is not None
        v = self._pending_for(service_sid, destination, now)
        if v is not None:
            return v
        latest = self._session.scalar(
            select(Verification)
            .where(Verification.service_sid == service_sid, Verification.destination == destination)
            .order_by(Verification.date_created.desc())
            .limit(1)
        )
        if latest is None:
            raise NotFound("No pending verification found for this destination")
        return latest

    def _refusal(self, v: Verification, service: Service, now: datetime) -> Exception | None:
        """Why this check cannot be compared at all (recorded state changes still commit)."""
        self._expire_if_due(v, now)
        if v.status == MAX_ATTEMPTS:
            return _locked(v, now)
        if v.status != PENDING:
            return VerificationNotPending(v.sid, v.status)
        if self._budget_exhausted(v, now):
            self._record_check(v, "budget_exhausted", now)
            return MaxCheckAttempts(
                "Too many failed checks for this destination; try again later",
                retry_after=self._limits.destination_failure_window,
                extra={"verification_sid": v.sid},
            )
        return None

    def _compare(self, v: Verification, service: Service, code: str, now: datetime) -> bool:
        # Count the attempt before comparing: a conditional increment that only one of N concurrent
        # checks can perform past the cap.
        counted = self._session.execute(
            update(Verification)
            .where(
                Verification.sid == v.sid,
                Verification.status == PENDING,
                Verification.check_attempts < service.max_check_attempts,
                Verification.expires_at > now,
            )
            .values(check_attempts=Verification.check_attempts + 1, date_updated=now)
            .returning(Verification.check_attempts)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if counted is not None:
            _committed(v, check_attempts=counted, date_updated=now)
        else:
            self._session.refresh(v)
            if v.status == PENDING:
                self._transition(v, MAX_ATTEMPTS, now)
            return False
        if self._hasher.verify(v.sid, code, v.code_hash):
            if self._transition(v, APPROVED, now):
                self._record_check(v, "approved", now)
                self._session.execute(
                    delete(DestinationFailures).where(
                        DestinationFailures.account_sid == v.account_sid,
                        DestinationFailures.destination == v.destination,
                    )
                )
                return True
            return False
        self._record_check(v, "wrong_code", now)
        self._count_destination_failure(v, now)
        if v.check_attempts >= service.max_check_attempts:
            self._transition(v, MAX_ATTEMPTS, now)
        return False

    def _budget_exhausted(self, v: Verification, now: datetime) -> bool:
        row = self._session.get(DestinationFailures, (v.account_sid, v.destination))
        if row is None:
            return False
        window = timedelta(seconds=self._limits.destination_failure_window)
        return (
            row.consecutive >= self._limits.destination_failure_budget
            and row.last_failure_at > now - window
        )

    def _count_destination_failure(self, v: Verification, now: datetime) -> None:
        """One more consecutive failure for the destination; an old streak starts over."""
        cutoff = now - timedelta(seconds=self._limits.destination_failure_window)
        dialect = self._session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = DestinationFailures
        stmt = insert(table).values(
            account_sid=v.account_sid, destination=v.destination, consecutive=1, last_failure_at=now
        )
        self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.account_sid, table.destination],
                set_={
                    "consecutive": case(
                        (table.last_failure_at <= cutoff, 1), else_=table.consecutive + 1
                    ),
                    "last_failure_at": now,
                },
            )
        )

    def _record_check(self, v: Verification, outcome: str, now: datetime) -> None:
        self._session.add(
            CheckAttempt(
                verification_sid=v.sid,
                account_sid=v.account_sid,
                outcome=outcome,
                date_created=now,
            )
        )

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
            due = self._session.scalars(
                select(Verification)
                .where(Verification.status == PENDING, Verification.expires_at <= now)
                .order_by(Verification.expires_at)
                .limit(batch)
            ).all()
            return sum(self._transition(v, EXPIRED, now) for v in due)

    def _expire_if_due(self, v: Verification, now: datetime) -> None:
        if v.status == PENDING and v.expires_at <= now:
            self._transition(v, EXPIRED, now)

    # -- shared ---------------------------------------------------------------------------------

    def _transition(self, v: Verification, status: str, now: datetime) -> bool:
        """pending -> ``status`` if still pending; writes the event. False if someone else won."""
        result = self._session.execute(
            update(Verification)
            .where(Verification.sid == v.sid, Verification.status == PENDING)
            .values(status=status, date_updated=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            self._session.refresh(v)
            return False
        _committed(v, status=status, date_updated=now)
        outbox.verification_event(self._session, f"verification.{status}", v, now)
        return True

    def _service(self, account_sid: str, service_sid: str) -> Service:
        service = self._session.get(Service, service_sid)
        if service is None or service.account_sid != account_sid:
            raise NotFound(f"The requested resource /Services/{service_sid} was not found")
        return service

    def _verification(self, service_sid: str, sid: str) -> Verification:
        v = self._session.get(Verification, sid)
        if v is None or v.service_sid != service_sid:
            raise NotFound(f"The requested resource {sid} was not found")
        return v

    def _pending_for(
        self, service_sid: str, destination: str, now: datetime
    ) -> Verification | None:
        v = self._session.scalar(
            select(Verification).where(
                and_(
                    Verification.service_sid == service_sid,
                    Verification.destination == destination,
                    Verification.status == PENDING,
                )
            )
        )
        if v is not None and v.expires_at <= now:
            self._transition(v, EXPIRED, now)
            return None
        return v

    def _attempts(self, verification_sid: str) -> list[SendAttempt]:
        return list(
            self._session.scalars(
                select(SendAttempt)
                .where(SendAttempt.verification_sid == verification_sid)
                .order_by(SendAttempt.number)
            )
        )
