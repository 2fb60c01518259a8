"""The transactional outbox: an event row written in the same transaction as the change it records."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from verify.domain import sids
from verify.domain.destinations import mask
from verify.models import Event, SendAttempt, Verification

EVENTS = cast(Table, Event.__table__)
INSERT_EVENT = insert(EVENTS)


def row(
    type_: str,
    *,
    account_sid: str,
    service_sid: str | None,
    subject_sid: str,
    payload: dict[str, Any],
    at: datetime,
) -> dict[str, Any]:
    """An event row, to ``write`` (possibly with others: one statement for all of them)."""
    return {
        "sid": sids.new_sid(sids.EVENT),
        "account_sid": account_sid,
        "service_sid": service_sid,
        "type": type_,
        "subject_sid": subject_sid,
        "payload": payload,
        "date_created": at,
        "published_at": None,
    }


def write(session: Session, *rows: dict[str, Any]) -> None:
    # A Core insert on the session's connection: same transaction, no unit of work to flush.
    session.connection().execute(INSERT_EVENT, list(rows))


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
    values = row(
        type_,
        account_sid=account_sid,
        service_sid=service_sid,
        subject_sid=subject_sid,
        payload=payload,
        at=at,
    )
    write(session, values)
    return Event(**values)


def verification_row(type_: str, v: Verification, at: datetime, **extra: Any) -> dict[str, Any]:
    """``verification.<status>``: ids, status, channel and the masked destination — never a code."""
    payload = {
        "verification_sid": v.sid,
        "service_sid": v.service_sid,
        "status": v.status,
        "channel": v.channel,
        "to": mask(v.destination),
        "country": v.country,
        "date": at.isoformat(),
        **extra,
    }
    return row(
        type_,
        account_sid=v.account_sid,
        service_sid=v.service_sid,
        subject_sid=v.sid,
        payload=payload,
        at=at,
    )


def message_row(type_: str, attempt: SendAttempt, destination: str, at: datetime) -> dict[str, Any]:
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
    return row(
        type_,
        account_sid=attempt.account_sid,
        service_sid=attempt.service_sid,
        subject_sid=attempt.sid,
        payload=payload,
        at=at,
    )


def verification_event(
    session: Session, type_: str, v: Verification, at: datetime, **extra: Any
) -> Event:
    values = verification_row(type_, v, at, **extra)
    write(session, values)
    return Event(**values)


def message_event(
    session: Session, type_: str, attempt: SendAttempt, destination: str, at: datetime
) -> Event:
    values = message_row(type_, attempt, destination, at)
    write(session, values)
    return Event(**values)
