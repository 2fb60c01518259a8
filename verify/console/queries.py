"""Read-only queries behind the console's verification search (no domain module offers them).

An operator searches across every tenant by what they have: a sid, a full phone number or email
address (normalized as the API normalizes it), or a number as the console shows it masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.orm import Session

from verify.domain import sids
from verify.domain.destinations import parse_any
from verify.errors import InvalidParameter
from verify.models import Account, SendAttempt, Service, Verification
from verify.models.delivery import Provider
from verify.models.webhooks import WebhookDelivery, WebhookEndpoint

STATUSES = ("pending", "approved", "canceled", "expired", "max_attempts_reached", "failed")
PAGE_SIZE = 25
_MASK_CHARS = re.compile(r"[*•…]+")


@dataclass(frozen=True)
class Criteria:
    text: str = ""
    status: str | None = None
    since: date | None = None
    until: date | None = None

    @property
    def empty(self) -> bool:
        return not (self.text or self.status or self.since or self.until)


@dataclass(frozen=True)
class Match:
    """How the search text was read, for the page to say so."""

    kind: str  # "" | "sid" | "destination" | "masked" | "service" | "account" | "attempt"
    value: str = ""


@dataclass(frozen=True)
class Page:
    rows: list[Verification]
    total: int
    number: int
    size: int
    match: Match

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def page_number(raw: str) -> int:
    """A list page's ``page`` parameter: 1 to 100,000 (further would be an offset no list has)."""
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise InvalidParameter("page", "must be a page number")
    return int(raw)


def parse_criteria(text: str, status: str, since: str, until: str) -> Criteria:
    """The search form's fields; a bad field is InvalidParameter naming it."""
    status = status.strip()
    if status and status not in STATUSES:
        raise InvalidParameter("status", f"must be one of {', '.join(STATUSES)}")
    criteria = Criteria(
        text=text.strip(),
        status=status or None,
        since=_date("from", since),
        until=_date("to", until),
    )
    if criteria.since and criteria.until and criteria.since > criteria.until:
        raise InvalidParameter("from", "must not be after `to`")
    return criteria


def _date(parameter: str, raw: str) -> date | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(parameter, "must be a date, YYYY-MM-DD") from None


def read_text(text: str) -> tuple[Match, ColumnElement[bool] | None]:
    """What the search text means, and the condition it puts on verifications."""
    if not text:
        return Match(""), None
    for prefix, kind, column in (
        (sids.VERIFICATION, "sid", Verification.sid),
        (sids.SERVICE, "service", Verification.service_sid),
        (sids.ACCOUNT, "account", Verification.account_sid),
    ):
        if sids.is_sid(text, prefix):
            return Match(kind, text), column == text
    if sids.is_sid(text, sids.ATTEMPT):
        owner = select(SendAttempt.verification_sid).where(SendAttempt.sid == text)
        return Match("attempt", text), Verification.sid.in_(owner.scalar_subquery())
    if _MASK_CHARS.search(text):
        return Match("masked", text), _masked_condition(text)
    candidate = text
    if "@" not in text and re.fullmatch(r"[\d\s().-]+", text):
        candidate = "+" + text  # typed without the plus sign
    try:
        destination = parse_any(candidate, "q")
    except InvalidParameter:
        raise InvalidParameter(
            "q",
            "enter a verification, attempt, service or account sid, a phone number in E.164 "
            "form, an email address, or a masked number such as +14*****0123",
        ) from None
    return Match("destination", destination.value), Verification.destination == destination.value


def _masked_condition(text: str) -> ColumnElement[bool]:
    """``+14*****0123`` matches numbers starting ``+14`` and ending ``0123`` (what the mask keeps)."""
    parts = [p for p in _MASK_CHARS.split(text.replace(" ", "")) if p]
    if not parts or sum(len(p) for p in parts) < 3:
        raise InvalidParameter("q", "a masked number needs at least 3 visible characters")
    pattern = "%".join(_escape_like(p) for p in parts)
    if _MASK_CHARS.match(text):
        pattern = "%" + pattern
    if _MASK_CHARS.search(text[-1]):
        pattern += "%"
    return Verification.destination.like(pattern, escape="\\")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def search(session: Session, criteria: Criteria, page: int = 1, size: int = PAGE_SIZE) -> Page:
    """Verifications matching ``criteria``, newest first, one page of them."""
    match, condition = read_text(criteria.text)
    conditions: list[ColumnElement[bool]] = [] if condition is None else [condition]
    if criteria.status:
        conditions.append(Verification.status == criteria.status)
    if criteria.since:
        conditions.append(Verification.date_created >= _day_start(criteria.since))
    if criteria.until:
        conditions.append(
            Verification.date_created < _day_start(criteria.until + timedelta(days=1))
        )
    where = and_(True, *conditions)
    page = max(1, page)
    query: Select[Verification] = (
        select(Verification)
        .where(where)
        .order_by(Verification.date_created.desc(), Verification.sid)
        .offset((page - 1) * size)
        .limit(size)
    )
    with session.begin():
        total = session.scalar(select(func.count()).select_from(Verification).where(where)) or 0
        rows = list(session.scalars(query))
    return Page(rows, total, page, size, match)


# -- webhook endpoints (the webhooks area lists deliveries; the console also needs the endpoints) --


@dataclass(frozen=True)
class EndpointSummary:
    endpoint: WebhookEndpoint
    dead: int
    waiting: int  # pending, delivering or retrying


def endpoints_with_trouble(session: Session, limit: int = 50) -> list[EndpointSummary]:
    """Endpoints with dead or waiting deliveries, most dead first."""
    dead = func.sum(case((WebhookDelivery.status == "dead", 1), else_=0))
    waiting = func.sum(
        case((WebhookDelivery.status.in_(("pending", "delivering", "retrying")), 1), else_=0)
    )
    with session.begin():
        rows = session.execute(
            select(WebhookEndpoint, dead, waiting)
            .join(WebhookDelivery, WebhookDelivery.endpoint_sid == WebhookEndpoint.sid)
            .group_by(WebhookEndpoint.sid)
            .having(dead + waiting > 0)
            .order_by(dead.desc(), WebhookEndpoint.sid)
            .limit(limit)
        ).all()
    return [EndpointSummary(e, int(d or 0), int(w or 0)) for e, d, w in rows]


def endpoints_by_sid(session: Session, sids_: set[str]) -> dict[str, WebhookEndpoint]:
    if not sids_:
        return {}
    with session.begin():
        rows = session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.sid.in_(sids_)))
        return {e.sid: e for e in rows}


# -- accounts and services, for the pages that work per account or per service --------------------


def accounts(session: Session, limit: int = 500) -> list[Account]:
    with session.begin():
        return list(
            session.scalars(
                select(Account).order_by(Account.friendly_name, Account.sid).limit(limit)
            )
        )


def services(session: Session, limit: int = 500) -> list[Service]:
    with session.begin():
        return list(
            session.scalars(
                select(Service).order_by(Service.friendly_name, Service.sid).limit(limit)
            )
        )


def account(session: Session, sid: str) -> Account | None:
    with session.begin():
        return session.get(Account, sid)


# -- provider statistics (the delivery area records attempts; nothing summarizes them yet) ---------

_HANDED = ("sent", "delivered", "undelivered", "failed")


@dataclass
class ProviderStats:
    """One provider's attempts over a window: how many it took, accepted and delivered, and how long
    delivery took (first send to the handset's receipt)."""

    handed: int = 0
    accepted: int = 0  # sent or delivered
    delivered: int = 0
    failed: int = 0  # failed or undelivered
    latencies: list[float] = field(default_factory=list)

    @property
    def success_rate(self) -> float | None:
        return self.accepted / self.handed if self.handed else None

    def latency(self, quantile: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def provider_stats(
    session: Session, since: datetime, limit: int = 50_000
) -> dict[str, ProviderStats]:
    """Per provider key (its sid, or ``console`` for the built-in one), attempts since ``since``."""
    query = (
        select(
            SendAttempt.provider_sid,
            SendAttempt.provider,
            SendAttempt.status,
            SendAttempt.date_created,
            SendAttempt.delivered_at,
        )
        .where(SendAttempt.date_created >= since, SendAttempt.status.in_(_HANDED))
        .order_by(SendAttempt.date_created.desc())
        .limit(limit)
    )
    out: dict[str, ProviderStats] = {}
    with session.begin():
        rows = session.execute(query).all()
    for provider_sid, provider, status, created, delivered_at in rows:
        stats = out.setdefault(provider_sid or provider or "unknown", ProviderStats())
        stats.handed += 1
        if status in ("sent", "delivered"):
            stats.accepted += 1
        else:
            stats.failed += 1
        if status == "delivered":
            stats.delivered += 1
            if delivered_at is not None:
                stats.latencies.append((delivered_at - created).total_seconds())
    return out


def providers(session: Session, limit: int = 500) -> list[Provider]:
    with session.begin():
        return list(
            session.scalars(
                select(Provider)
                .order_by(Provider.account_sid, Provider.priority, Provider.sid)
                .limit(limit)
            )
        )
