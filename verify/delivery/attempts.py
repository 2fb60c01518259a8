"""What happens to a verification when one of its send attempts ends: attempts the system adds on
its own (failover to the next provider, fallback to the next channel), and ``failed`` once nothing
can deliver any more. Shared by the worker (verify/delivery/sender.py), delivery receipts
(verify/delivery/receipts.py) and the channel-timeout job.

System attempts carry the ``number`` of the send they continue (they are not new sends of the
tenant's, so they never count against ``MaxSendAttempts``) and the sid of the attempt they replace
(unique: an attempt is replaced at most once, however many workers race).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast as typed

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from verify.domain import sids
from verify.domain.destinations import PHONE_CHANNELS
from verify.domain.lifecycle_store import ATTEMPTS, EVENTS, VERIFICATIONS, binds, status_is
from verify.events import outbox
from verify.models import SendAttempt, Service, UTCDateTime, Verification

# An attempt in one of these states may still reach the person.
IN_FLIGHT = ("queued", "sending", "sent", "delivered", "test")
FINAL = ("delivered", "undelivered", "failed", "canceled", "blocked", "test")


def fallback_channels(service: Service) -> list[str]:
    return [c for c in service.fallback_channels.split(",") if c]


def next_channel(session: Session, v: Verification, service: Service, current: str) -> str | None:
    """The channel to fall back to after ``current``: the next one in the service's list that suits
    the destination, is enabled, and has not been tried on this verification."""
    order = fallback_channels(service)
    if not order:
        return None
    if current in order:
        order = order[order.index(current) + 1 :]
    tried = set(
        session.scalars(select(SendAttempt.channel).where(SendAttempt.verification_sid == v.sid))
    )
    enabled = set(service.channels.split(","))
    email = "@" in v.destination
    for channel in order:
        fits = channel == "email" if email else channel in PHONE_CHANNELS
        if fits and channel in enabled and channel not in tried:
            return channel
    return None


def add_system_attempt(
    session: Session, replaced: SendAttempt, channel: str, destination: str, now: datetime
) -> SendAttempt:
    """A queued attempt continuing ``replaced`` (flushed: the unique index decides races)."""
    attempt = SendAttempt(
        sid=sids.new_sid(sids.ATTEMPT),
        verification_sid=replaced.verification_sid,
        account_sid=replaced.account_sid,
        service_sid=replaced.service_sid,
        number=replaced.number,
        channel=channel,
        status="queued",
        provider=None,
        reason_code=None,
        tries=0,
        replaces_sid=replaced.sid,
        date_created=now,
        date_updated=now,
    )
    session.add(attempt)
    session.flush()
    outbox.message_event(session, "message.queued", attempt, destination, now)
    return attempt


def after_failure(session: Session, attempt: SendAttempt, now: datetime) -> SendAttempt | None:
    """``attempt`` failed for good: fall back to the next channel if the service has one (the new
    attempt is returned, to dispatch after commit), else fail the verification if nothing else of it
    can still deliver."""
    v = session.get(Verification, attempt.verification_sid)
    assert v is not None  # FK
    if v.status == "pending" and v.expires_at > now:
        service = session.get(Service, v.service_sid)
        assert service is not None
        already = session.scalar(
            select(SendAttempt.sid).where(SendAttempt.replaces_sid == attempt.sid)
        )
        channel = None if already else next_channel(session, v, service, attempt.channel)
        if channel is not None:
            return add_system_attempt(session, attempt, channel, v.destination, now)
    fail_if_exhausted(session, attempt, now)
    return None


def fail_if_exhausted(session: Session, attempt: SendAttempt, now: datetime) -> None:
    """pending -> failed once no attempt of the verification can still deliver."""
    in_flight = (
        select(SendAttempt.sid)
        .where(
            SendAttempt.verification_sid == attempt.verification_sid,
            SendAttempt.status.in_(IN_FLIGHT),
        )
        .exists()
    )
    result = session.execute(
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
        v = session.get(Verification, attempt.verification_sid, populate_existing=True)
        assert v is not None
        outbox.verification_event(
            session, "verification.failed", v, now, reason_code=attempt.reason_code
        )


def transition(
    session: Session,
    attempt: SendAttempt,
    expected: tuple[str, ...],
    now: datetime,
    **values: object,
) -> bool:
    """A conditional update of ``attempt`` from one of ``expected``; False if another writer won."""
    # Run on the session's connection (Core): the hot path of every send, no ORM update machinery.
    result = session.connection().execute(
        update(SendAttempt)
        .where(SendAttempt.sid == attempt.sid, SendAttempt.status.in_(expected))
        .values(date_updated=now, **values)
    )
    if result.rowcount != 1:
        session.refresh(attempt)  # see what the other writer did
        return False
    # Record what the UPDATE wrote without reading the row back.
    for name, value in {"date_updated": now, **values}.items():
        set_committed_value(attempt, name, value)
    return True


def stuck_attempts(session: Session, now: datetime, older_than: int, limit: int = 500) -> list[str]:
    """Attempts still queued after ``older_than`` seconds for a pending verification, and due (an
    attempt waiting for a retry is not redriven before its time)."""
    with session.begin():
        query = (
            select(SendAttempt.sid)
            .join(Verification, Verification.sid == SendAttempt.verification_sid)
            .where(
                SendAttempt.status == "queued",
                SendAttempt.date_updated <= now - timedelta(seconds=older_than),
                (SendAttempt.retry_at.is_(None)) | (SendAttempt.retry_at <= now),
                Verification.status == "pending",
                Verification.expires_at > now,
            )
            .limit(limit)
        )
        return list(session.scalars(query))


# -- the common send on PostgreSQL -----------------------------------------------------------------
# Statements built once with bound parameters, each run as its own transaction (autocommit) by
# LaneSender (verify/delivery/lane.py): read what the send needs, claim the attempt for the chosen
# provider, and record the provider's acceptance together with its ``message.sent`` event.
# Anything uncommon takes the general path (the functions above, in a transaction).

SERVICES = typed(Table, Service.__table__)
_A, _V, _S = ATTEMPTS.c, VERIFICATIONS.c, SERVICES.c

_NOW = bindparam("p_now", type_=UTCDateTime())

# The attempt, its verification and the parts of its service a message needs: one row.
SELECT_SEND = (
    select(
        _A.status,
        _A.retry_at,
        _A.replaces_sid,
        _A.channel,
        _A.account_sid,
        _A.service_sid,
        _A.verification_sid,
        _V.status.label("v_status"),
        _V.expires_at,
        _V.destination,
        _V.country,
        _V.locale,
        _V.custom_friendly_name,
        _V.sealed_code,
        _S.friendly_name,
        _S.default_locale,
        _S.do_not_share_warning_enabled,
        _S.dtmf_input_required,
        _S.fallback_channels,
        _S.channels,
        _S.channel_timeout,
    )
    .join_from(ATTEMPTS, VERIFICATIONS, _V.sid == _A.verification_sid)
    .join(SERVICES, _S.sid == _V.service_sid)
    .where(_A.sid == bindparam("p_sid"))
)

# queued -> sending for the chosen provider, only while the attempt is due and its verification
# pending and unexpired (re-checked here: it may have ended since it was read).
CLAIM_SEND = (
    update(ATTEMPTS)
    .where(
        _A.sid == bindparam("p_sid"),
        status_is(_A.status, "queued"),
        _A.retry_at.is_(None) | (_A.retry_at <= _NOW),
        _V.sid == _A.verification_sid,
        status_is(_V.status, "pending"),
        _V.expires_at > _NOW,
    )
    .values(
        status="sending",
        provider=bindparam("p_provider"),
        provider_sid=bindparam("p_provider_sid"),
        retry_at=None,
        date_updated=_NOW,
    )
)

_SENT = (
    update(ATTEMPTS)
    .where(_A.sid == bindparam("p_sid"), status_is(_A.status, "sending"))
    .values(
        status="sent",
        reason_code=None,
        raw_code=bindparam("p_raw_code"),
        provider_message_id=bindparam("p_message_id"),
        date_updated=_NOW,
    )
    .returning(_A.sid)
    .cte("sent")
)
EVENT_COLUMNS = (
    "sid",
    "account_sid",
    "service_sid",
    "type",
    "subject_sid",
    "payload",
    "date_created",
)
# sending -> sent and its event in one statement: the event is written only if the update was.
RECORD_SENT = (
    insert(EVENTS)
    .from_select(
        EVENT_COLUMNS,
        select(*binds(EVENTS, "e_", EVENT_COLUMNS)).select_from(_SENT),
    )
    .add_cte(_SENT)
    # An INSERT's rowcount is otherwise gone once its cursor is closed.
    .execution_options(preserve_rowcount=True)
)
