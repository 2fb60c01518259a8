"""The transactional outbox: an event row written in the same transaction as the change it records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from verify.domain import sids
from verify.domain.destinations import mask
from verify.models import Event, SendAttempt, Verification


def record(
    session: Session,
    type_: str,
    *,
    account_sid: str,
    service_sid: str | None,
    subject_sid: str,
    payload: dict[str, Any],
    at: datetime,
) -> Event:
    event = Event(
        sid=sids.new_sid(sids.EVENT),
        account_sid=account_sid,
        service_sid=service_sid,
        type=type_,
        subject_sid=subject_sid,
        payload=payload,
        date_created=at,
        published_at=None,
    )
    session.add(event)
    return event


def verification_event(
    session: Session, type_: str, v: Verification, at: datetime, **extra: Any
) -> Event:
    """``verification.<status>``: ids, status, channel and the masked destination — never a code."""
    payload = {
        "verification_sid": v.sid,
        "service_sid": v.service_sid,
        "status": v.status,
        "channel": v.channel,
        "to": mask(v.destination),
        "date": at.isoformat(),
        **extra,
    }
    return record(
        session,
        type_,
        account_sid=v.account_sid,
        service_sid=v.service_sid,
        subject_sid=v.sid,
        payload=payload,
        at=at,
    )


def message_event(
    session: Session, type_: str, attempt: SendAttempt, destination: str, at: datetime
) -> Event:
    """``message.<status>`` for one send attempt."""
    payload = {
        "attempt_sid": attempt.sid,
        "verification_sid": attempt.verification_sid,
        "service_sid": attempt.service_sid,
        "status": attempt.status,
        "channel": attempt.channel,
        "provider": attempt.provider,
        "reason_code": attempt.reason_code,
        "to": mask(destination),
        "date": at.isoformat(),
    }
    return record(
        session,
        type_,
        account_sid=attempt.account_sid,
        service_sid=attempt.service_sid,
        subject_sid=attempt.sid,
        payload=payload,
        at=at,
    )
