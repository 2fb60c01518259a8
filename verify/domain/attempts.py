"""The attempt log of an account: every send attempt with its verification, filtered and summarized
(Twilio's Attempts and Attempts/Summary)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from verify.domain.destinations import CHANNELS
from verify.errors import InvalidParameter, NotFound
from verify.models import SendAttempt, Service, Verification
from verify.models.delivery import DeliveryReceipt


@dataclass(frozen=True)
class AttemptFilter:
    date_created_after: datetime | None = None
    date_created_before: datetime | None = None
    to: str | None = None
    destination_prefix: str | None = None
    country: str | None = None
    channel: str | None = None
    service_sid: str | None = None
    verification_sid: str | None = None
    conversion_status: str | None = None  # converted | unconverted


@dataclass(frozen=True)
class AttemptView:
    """One attempt with what the API shows of its verification."""

    attempt: SendAttempt
    verification: Verification
    code_length: int
    receipts: list[DeliveryReceipt] | None = None

    @property
    def converted(self) -> bool:
        return self.verification.status == "approved"


@dataclass(frozen=True)
class Summary:
    total_attempts: int
    total_converted: int

    @property
    def total_unconverted(self) -> int:
        return self.total_attempts - self.total_converted

    @property
    def conversion_rate_percentage(self) -> str:
        if not self.total_attempts:
            return "0"
        return f"{self.total_converted * 100 / self.total_attempts:.9f}".rstrip("0").rstrip(".")


def validate(f: AttemptFilter) -> None:
    if f.channel is not None and f.channel not in CHANNELS:
        raise InvalidParameter("Channel", f"must be one of {', '.join(CHANNELS)}")
    if f.conversion_status is not None and f.conversion_status not in ("converted", "unconverted"):
        raise InvalidParameter("Status", "must be converted or unconverted")
    if f.country is not None and not (len(f.country) == 2 and f.country.isalpha()):
        raise InvalidParameter("Country", "an ISO 3166 alpha-2 code such as US")


class AttemptLog:
    def __init__(self, session: Session) -> None:
        self._session = session

    def page(
        self, account_sid: str, f: AttemptFilter, offset: int, limit: int
    ) -> list[AttemptView]:
        validate(f)
        with self._session.begin():
            query = (
                self._filtered(
                    select(SendAttempt, Verification, Service.code_length), account_sid, f
                )
                .order_by(
                    SendAttempt.date_created.desc(), SendAttempt.number.desc(), SendAttempt.sid
                )
                .offset(offset)
                .limit(limit)
            )
            return [AttemptView(a, v, n) for a, v, n in self._session.execute(query).all()]

    def get(self, account_sid: str, sid: str) -> AttemptView:
        with self._session.begin():
            row = self._session.execute(
                select(SendAttempt, Verification, Service.code_length)
                .join(Verification, Verification.sid == SendAttempt.verification_sid)
                .join(Service, Service.sid == SendAttempt.service_sid)
                .where(SendAttempt.sid == sid, SendAttempt.account_sid == account_sid)
            ).first()
            if row is None:
                raise NotFound(f"The requested resource /Attempts/{sid} was not found")
            receipts = list(
                self._session.scalars(
                    select(DeliveryReceipt)
                    .where(DeliveryReceipt.attempt_sid == sid)
                    .order_by(DeliveryReceipt.id)
                )
            )
            return AttemptView(row[0], row[1], row[2], receipts)

    def summary(self, account_sid: str, f: AttemptFilter) -> Summary:
        validate(f)
        converted = func.sum(case((Verification.status == "approved", 1), else_=0))
        with self._session.begin():
            row = self._session.execute(
                self._filtered(select(func.count(), converted), account_sid, f)
            ).one()
            total, done = row[0], row[1]
        return Summary(int(total or 0), int(done or 0))

    def _filtered(self, query: Any, account_sid: str, f: AttemptFilter) -> Any:
        query = (
            query.select_from(SendAttempt)
            .join(Verification, Verification.sid == SendAttempt.verification_sid)
            .join(Service, Service.sid == SendAttempt.service_sid)
            .where(SendAttempt.account_sid == account_sid)
        )
        if f.date_created_after is not None:
            query = query.where(SendAttempt.date_created >= f.date_created_after)
        if f.date_created_before is not None:
            query = query.where(SendAttempt.date_created <= f.date_created_before)
        if f.to is not None:
            query = query.where(Verification.destination == f.to)
        if f.destination_prefix is not None:
            query = query.where(Verification.destination.startswith(f.destination_prefix))
        if f.country is not None:
            query = query.where(Verification.country == f.country.upper())
        if f.channel is not None:
            query = query.where(SendAttempt.channel == f.channel)
        if f.service_sid is not None:
            query = query.where(SendAttempt.service_sid == f.service_sid)
        if f.verification_sid is not None:
            query = query.where(SendAttempt.verification_sid == f.verification_sid)
        if f.conversion_status == "converted":
            query = query.where(Verification.status == "approved")
        elif f.conversion_status == "unconverted":
            query = query.where(Verification.status != "approved")
        return query
