"""What the verification lifecycle's services share (verifications.py: start, resend, fetch, cancel,
approve, expire; checks.py: check): the answer they give, the service snapshot, reads of a
verification and its attempts, and the conditional transition every status change goes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.orm import Session

from verify.config import Limits
from verify.domain.clock import Clock
from verify.domain.codes import CodeHasher
from verify.domain.lifecycle_store import (
    EXPIRED,
    PENDING,
    SELECT_ATTEMPTS,
    SELECT_VERIFICATION,
    TRANSITION,
    VERIFICATIONS,
)
from verify.domain.sends import OpenGate, SendGate
from verify.domain.services import ServiceCache, ServiceConfig
from verify.errors import NotFound, VerifyError
from verify.events import outbox
from verify.models import SendAttempt, Verification


@dataclass(frozen=True)
class Outcome:
    """A verification as the API shows it, with the result of a check where there was one."""

    verification: Verification
    attempts: list[SendAttempt]
    valid: bool = False
    block: VerifyError | None = None  # the abuse controls refused this send (raised by ``start``)


def verification_from(row: Row[Any]) -> Verification:
    return Verification(**{c.name: row._mapping[c.name] for c in VERIFICATIONS.c})


class Lifecycle:
    def __init__(
        self,
        session: Session,
        *,
        clock: Clock,
        hasher: CodeHasher,
        limits: Limits,
        gate: SendGate | None = None,
        services: ServiceCache | None = None,
    ) -> None:
        self._session = session
        self._clock = clock
        self._hasher = hasher
        self._limits = limits
        self._gate = gate or OpenGate()
        self._services = services or ServiceCache(ttl=0)

    def _conn(self) -> Connection:
        return self._session.connection()

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

    def _expire_if_due(self, v: Verification, now: datetime) -> None:
        if v.status == PENDING and v.expires_at <= now:
            self._transition(v, EXPIRED, now)

    def _service(self, account_sid: str, service_sid: str) -> ServiceConfig:
        service = self._services.load(self._session, service_sid)
        if service is None or service.account_sid != account_sid:
            raise NotFound(f"The requested resource /Services/{service_sid} was not found")
        return service

    def _verification(self, service_sid: str, sid: str) -> Verification:
        row = self._conn().execute(SELECT_VERIFICATION, {"p_sid": sid}).first()
        if row is None or row.service_sid != service_sid:
            raise NotFound(f"The requested resource {sid} was not found")
        return verification_from(row)

    def _attempts(self, verification_sid: str) -> list[SendAttempt]:
        rows = self._conn().execute(SELECT_ATTEMPTS, {"p_sid": verification_sid})
        return [SendAttempt(**row._mapping) for row in rows]
