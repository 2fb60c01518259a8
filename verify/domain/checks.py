"""Checking a code: the attempt is counted atomically before the comparison (a conditional UPDATE
that only one of N concurrent checks can pass at the cap), the comparison is argon2's, and the
result is recorded with everything it changes: the verification's status and event, the check
attempt, and the destination's failure streak.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row

from verify.domain.codes import is_valid_code
from verify.domain.destinations import parse_any
from verify.domain.lifecycle import Lifecycle, Outcome, verification_from
from verify.domain.lifecycle_store import (
    APPROVED,
    CLEAR_FAILURES,
    COUNT_CHECK,
    COUNT_FAST_BY_SID,
    COUNT_FAST_BY_TO,
    INSERT_CHECK,
    MAX_ATTEMPTS,
    PENDING,
    RECORD_WRONG_CODE,
    SELECT_TARGET_BY_SID,
    SELECT_TARGET_BY_TO,
    UPSERT_FAILURE,
    approve_statement,
)
from verify.domain.services import ServiceConfig
from verify.errors import (
    InvalidParameter,
    MaxCheckAttempts,
    NoTarget,
    NotFound,
    VerificationNotPending,
)
from verify.events import outbox
from verify.models import Verification


def _locked(v: Verification, now: datetime) -> MaxCheckAttempts:
    """60202 for a verification out of guesses. Retrying it never helps: start a new one. Retry-After
    is when its code would have expired anyway."""
    return MaxCheckAttempts(
        "Max check attempts reached for this verification; start a new one",
        retry_after=max(1, int((v.expires_at - now).total_seconds())),
        extra={"verification_sid": v.sid, "verification_status": MAX_ATTEMPTS},
    )


class CheckService(Lifecycle):
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
        return verification_from(row), row

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
        return None if row is None else verification_from(row)

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
