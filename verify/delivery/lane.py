"""The common send on PostgreSQL, as three statements each committed on its own (no BEGIN or COMMIT
round trip): read the attempt with what its message needs, claim it for the chosen provider while
its verification is pending and unexpired, and record the provider's acceptance with its
``message.sent`` event (verify/delivery/attempts.py has the statements).

A send that asked for delivery receipts takes one more statement: whether a receipt for the
message id the provider answered came before the acceptance was recorded (a provider may post one
that fast); such a receipt, a rare case, is applied in a transaction of its own.

Anything uncommon (not queued or not due, a failover or fallback attempt, a blocked send, no route
or every breaker open, a lost claim, a result other than accepted) leaves this path before it
changes anything, or after the call, and SendService's general path, one transaction at a time,
takes over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.orm import Session

from verify.delivery import attempts as lifecycle
from verify.delivery.providers.base import OutboundMessage, Outcome, SendResult
from verify.delivery.receipts import EARLY_RECEIPT, apply_early_receipts
from verify.delivery.routing import Route
from verify.delivery.sender import Claimed, SendService
from verify.events import outbox
from verify.models import SendAttempt, Service, Verification


@dataclass
class _Read:
    """A send claimed on the lane: the row SELECT_SEND read, and what was chosen."""

    sid: str
    row: Row[*tuple[Any, ...]]
    route: Route
    message: OutboundMessage


class LaneSender(SendService):
    """SendService whose common send runs on ``lane``: the session's own connection, with no
    transaction begun."""

    def __init__(self, session: Session, lane: Connection, **kwargs: Any) -> None:
        super().__init__(session, **kwargs)
        self._lane = lane

    def deliver(self, attempt_sid: str) -> str:
        try:
            outcome = self._deliver_on_lane(attempt_sid)
        finally:
            self._after_commit.clear()
        return outcome if outcome is not None else super().deliver(attempt_sid)

    def _deliver_on_lane(self, attempt_sid: str) -> str | None:
        """Read, claim, call, record. None when the send is not the common case (and nothing was
        changed)."""
        lane = self._lane
        isolation = lane.default_isolation_level
        lane.execution_options(isolation_level="AUTOCOMMIT")
        early = False
        try:
            claimed = self._claim_on_lane(attempt_sid)
            if claimed is None:
                return None
            result = self._call(claimed.route, claimed.message)
            if result.outcome is Outcome.ACCEPTED:
                outcome = self._record_sent(claimed, result)
                early = outcome == "sent" and self._receipts_waiting(claimed, result)
        finally:
            self._end_reads()
            if lane.in_transaction():
                lane.rollback()  # a statement failed before its commit
            lane.execution_options(isolation_level=isolation)
        accepted = result.outcome is Outcome.ACCEPTED
        if accepted and not early:
            self._run_after_commit()
            return outcome
        with self._session.begin():
            attempt = self._session.get(SendAttempt, attempt_sid)
            assert attempt is not None
            if accepted:  # receipts that came before the acceptance was recorded
                now = self._clock.now()
                apply_early_receipts(self._session, attempt, now, self._after_commit_dispatch)
            else:  # conclude as the general path does
                v = self._verification(attempt)
                service = self._session.get(Service, v.service_sid)
                assert service is not None
                general = Claimed(attempt, claimed.route, claimed.message, v.expires_at, v, service)
                outcome = self._conclude(general, result)
        self._run_after_commit()
        return outcome

    def _claim_on_lane(self, attempt_sid: str) -> _Read | None:
        lane = self._lane
        row = lane.execute(lifecycle.SELECT_SEND, {"p_sid": attempt_sid}).first()
        lane.commit()
        now = self._clock.now()
        if (
            row is None
            or row.status != "queued"
            or row.replaces_sid is not None  # failover and fallback attempts: tried providers
            or (row.retry_at is not None and row.retry_at > now)
            or row.v_status != "pending"
            or row.expires_at <= now
        ):
            return None
        screening = self._screen(row.verification_sid, row.channel, row)
        if screening.block is not None:
            return None  # the general path screens again, and records the block
        routes = self._router.route(row.account_sid, row.channel, row.country)
        self._end_reads()
        ts = now.timestamp()
        chosen = next((r for r in routes if self._breakers.admit(r.circuit, ts).allowed), None)
        if chosen is None:
            return None  # no route, or every provider resting
        claim = lane.execute(
            lifecycle.CLAIM_SEND,
            {
                "p_sid": attempt_sid,
                "p_now": now,
                "p_provider": chosen.type,
                "p_provider_sid": chosen.sid,
            },
        )
        lane.commit()
        if claim.rowcount != 1:
            return None  # claimed elsewhere, or the verification ended: the general path tells
        message = self._message(chosen, row.channel, attempt_sid, row.verification_sid, row, row)
        return _Read(attempt_sid, row, chosen, message)

    def _record_sent(self, claimed: _Read, result: SendResult) -> str:
        row, route = claimed.row, claimed.route
        now = self._clock.now()
        # The attempt as it now is (transient): the subject of its message.sent event.
        attempt = SendAttempt(
            sid=claimed.sid,
            verification_sid=row.verification_sid,
            account_sid=row.account_sid,
            service_sid=row.service_sid,
            channel=row.channel,
            status="sent",
            provider=route.type,
            provider_sid=route.sid,
            reason_code=None,
        )
        event = outbox.message_row("message.sent", attempt, row.destination, now)
        params = {f"e_{name}": event[name] for name in lifecycle.EVENT_COLUMNS}
        recorded = self._lane.execute(
            lifecycle.RECORD_SENT,
            {
                "p_sid": claimed.sid,
                "p_now": now,
                "p_raw_code": result.raw_code,
                "p_message_id": result.provider_message_id,
                **params,
            },
        )
        self._lane.commit()
        if recorded.rowcount != 1:
            return "claimed_elsewhere"
        if row.fallback_channels:
            # Transient too: the columns the channel timeout reads.
            v = Verification(
                sid=row.verification_sid, destination=row.destination, expires_at=row.expires_at
            )
            service = Service(
                fallback_channels=row.fallback_channels,
                channels=row.channels,
                channel_timeout=row.channel_timeout,
            )
            self._schedule_channel_timeout(attempt, v, service, now)
        return "sent"

    def _receipts_waiting(self, claimed: _Read, result: SendResult) -> bool:
        if not (
            result.provider_message_id and claimed.route.sid and claimed.message.status_callback
        ):
            return False  # receipts can only have come if the send asked for them
        params = {"p_provider_sid": claimed.route.sid, "p_message_id": result.provider_message_id}
        waiting = self._lane.execute(EARLY_RECEIPT, params).first() is not None
        self._lane.commit()
        return waiting

    def _end_reads(self) -> None:
        # The router and the screening may read through the session: end that (autocommit) read.
        if self._session.in_transaction():
            self._session.commit()
