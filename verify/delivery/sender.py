"""Send one attempt: re-read state, claim the attempt, open the code, hand it to the provider.

A job may run late, twice, or after the verification ended (a requeue from the dashboard): every run
re-checks that the verification is pending and unexpired and claims the attempt with a conditional
update, so a message is sent at most once per attempt and never for a finished verification.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from verify.delivery.messages import Message, render_body
from verify.domain.clock import Clock
from verify.domain.codes import CodeSealer
from verify.events import outbox
from verify.models import SendAttempt, Service, Verification


class Provider(Protocol):
    name: str

    def send(self, message: Message, at: datetime) -> None: ...


class SendService:
    def __init__(
        self, session: Session, *, clock: Clock, sealer: CodeSealer, provider: Provider
    ) -> None:
        self._session = session
        self._clock = clock
        self._sealer = sealer
        self._provider = provider

    def deliver(self, attempt_sid: str) -> str:
        """Returns what happened: sent, or why nothing was sent."""
        with self._session.begin():
            attempt = self._session.get(SendAttempt, attempt_sid)
            if attempt is None:
                return "unknown_attempt"
            if attempt.status != "queued":
                return f"already_{attempt.status}"
            v = self._session.get(Verification, attempt.verification_sid)
            assert v is not None  # FK
            now = self._clock.now()
            reason = None
            if v.status != "pending":
                reason = f"verification_{v.status}"
            elif v.expires_at <= now:
                reason = "code_expired"
            if not self._claim(attempt, "canceled" if reason else "sending", reason, now):
                return "claimed_elsewhere"
            if reason:
                return reason
            service = self._session.get(Service, v.service_sid)
            assert service is not None
            message = Message(
                to=v.destination,
                channel=attempt.channel,
                body=render_body(
                    v.custom_friendly_name or service.friendly_name,
                    self._sealer.open(v.sid, v.sealed_code),
                    do_not_share_warning=service.do_not_share_warning_enabled,
                ),
                verification_sid=v.sid,
                attempt_sid=attempt.sid,
            )
            destination = v.destination

        try:
            self._provider.send(message, now)
        except Exception:
            self._finish(attempt, "failed", "provider_error", destination)
            raise
        self._finish(attempt, "sent", None, destination)
        return "sent"

    def _finish(self, attempt: SendAttempt, status: str, reason: str | None, to: str) -> None:
        with self._session.begin():
            now = self._clock.now()
            self._claim(attempt, status, reason, now, expected="sending")
            attempt.provider = self._provider.name
            outbox.message_event(self._session, f"message.{status}", attempt, to, now)
            if status == "failed":
                self._fail_if_exhausted(attempt, now)

    def _fail_if_exhausted(self, attempt: SendAttempt, now: datetime) -> None:
        """pending -> failed once no attempt of the verification can still deliver."""
        in_flight = (
            select(SendAttempt.sid)
            .where(
                SendAttempt.verification_sid == attempt.verification_sid,
                SendAttempt.status.in_(("queued", "sending", "sent", "test")),
            )
            .exists()
        )
        result = self._session.execute(
            update(Verification)
            .where(
                Verification.sid == attempt.verification_sid,
                Verification.status == "pending",
                ~in_flight,
            )
            .values(status="failed", date_updated=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            v = self._session.get(Verification, attempt.verification_sid, populate_existing=True)
            assert v is not None
            outbox.verification_event(
                self._session, "verification.failed", v, now, reason_code=attempt.reason_code
            )

    def _claim(
        self,
        attempt: SendAttempt,
        status: str,
        reason: str | None,
        now: datetime,
        *,
        expected: str = "queued",
    ) -> bool:
        result = self._session.execute(
            update(SendAttempt)
            .where(SendAttempt.sid == attempt.sid, SendAttempt.status == expected)
            .values(status=status, reason_code=reason, date_updated=now)
            .execution_options(synchronize_session=False)
        )
        self._session.refresh(attempt)
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def stuck_attempts(session: Session, now: datetime, older_than: int, limit: int = 500) -> list[str]:
    """Attempts still queued after ``older_than`` seconds for a pending verification."""
    with session.begin():
        query = (
            select(SendAttempt.sid)
            .join(Verification, Verification.sid == SendAttempt.verification_sid)
            .where(
                SendAttempt.status == "queued",
                SendAttempt.date_created <= now - timedelta(seconds=older_than),
                Verification.status == "pending",
                Verification.expires_at > now,
            )
            .limit(limit)
        )
        return list(session.scalars(query))
