"""Channel fallback on silence: when a sent attempt's channel timeout falls due with no delivery
receipt and no check of the code since, the next channel of the service's fallback list is tried
(as a new system attempt, dispatched after commit)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from verify.delivery import attempts as lifecycle
from verify.domain.clock import Clock
from verify.domain.sends import Dispatcher
from verify.models import CheckAttempt, SendAttempt, Service, Verification


class ChannelTimeouts:
    def __init__(self, session: Session, *, clock: Clock, dispatcher: Dispatcher) -> None:
        self._session = session
        self._clock = clock
        self._dispatcher = dispatcher

    def run(self, attempt_sid: str) -> str:
        """The channel timeout of a sent attempt fell due: fall back to the next channel unless the
        message was delivered, the code was checked, or the verification moved on."""
        try:
            with self._session.begin():
                outcome, fallback = self._fall_back(attempt_sid)
        except IntegrityError:
            self._session.rollback()
            return "superseded"  # another worker replaced this attempt first
        if fallback is not None:
            self._dispatcher.dispatch(fallback)
        return outcome

    def _fall_back(self, attempt_sid: str) -> tuple[str, str | None]:
        """What happened, and the new attempt to dispatch after commit, if one was made."""
        session = self._session
        attempt = session.get(SendAttempt, attempt_sid)
        if attempt is None:
            return "unknown_attempt", None
        v = session.get(Verification, attempt.verification_sid)
        assert v is not None
        now = self._clock.now()
        if v.status != "pending" or v.expires_at <= now:
            return f"verification_{v.status if v.status != 'pending' else 'expired'}", None
        if attempt.status != "sent":
            # delivered, or failed (its fallback already ran)
            return f"already_{attempt.status}", None
        checked = session.scalar(
            select(CheckAttempt.id)
            .where(
                CheckAttempt.verification_sid == v.sid,
                CheckAttempt.date_created >= attempt.date_updated,
            )
            .limit(1)
        )
        if checked is not None:
            return "checked", None
        newer = session.scalar(
            select(SendAttempt.sid)
            .where(
                SendAttempt.verification_sid == v.sid,
                (SendAttempt.replaces_sid == attempt.sid) | (SendAttempt.number > attempt.number),
            )
            .limit(1)
        )
        if newer is not None:
            return "superseded", None  # a resend, or a fallback already made
        service = session.get(Service, v.service_sid)
        assert service is not None
        channel = lifecycle.next_channel(session, v, service, attempt.channel)
        if channel is None:
            return "no_fallback", None
        nxt = lifecycle.add_system_attempt(session, attempt, channel, v.destination, now)
        return f"fallback_{channel}", nxt.sid
