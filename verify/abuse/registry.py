"""The abuse configuration as tenants and operators change it: fraud rules (audited), the safe list,
and Twilio's RateLimits with their Buckets. Every change tells every process (``ConfigCache``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from verify.abuse.cache import ConfigCache
from verify.domain import fraud, sids
from verify.domain.clock import Clock
from verify.domain.destinations import parse_phone
from verify.domain.ratelimits import MAX_INTERVAL
from verify.errors import (
    BucketExists,
    InvalidParameter,
    InvalidUniqueName,
    MaxBuckets,
    MaxRateLimits,
    NotFound,
    RateLimitExists,
)
from verify.models import Service
from verify.models.abuse import (
    FraudDecision,
    FraudRule,
    FraudRuleChange,
    RateLimit,
    RateLimitBucket,
    SafeListEntry,
)

RULE = "FR"
RATE_LIMIT = "RK"
BUCKET = "BL"
SAFE = "GN"
MAX_RULES = 200
MAX_RATE_LIMITS = 20
MAX_BUCKETS = 5
UNIQUE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PREFIX = re.compile(r"^\+[1-9][0-9]{1,13}$")
T = TypeVar("T")


@dataclass(frozen=True)
class RuleFields:
    """A rule as given; ``None``: not given (keep the current value, or the default)."""

    type: str | None = None
    params: Mapping[str, Any] | None = None
    mode: str | None = None
    service_sid: str | None = None
    channels: tuple[str, ...] | None = None
    priority: int | None = None
    enabled: bool | None = None
    description: str | None = None


def snapshot(rule: FraudRule) -> dict[str, Any]:
    """A rule as the audit trail and the rules file show it."""
    return {
        "sid": rule.sid,
        "service": rule.service_sid,
        "type": rule.type,
        "mode": rule.mode,
        "channels": [c for c in rule.channels.split(",") if c],
        "priority": rule.priority,
        "enabled": rule.enabled,
        "description": rule.description,
        "params": dict(rule.params),
    }


class _Registry:
    """What each part of the configuration holds: the session (every public method owns its
    transaction), the clock, and the cache every committed change is announced on."""

    def __init__(self, session: Session, clock: Clock, cache: ConfigCache) -> None:
        self._session = session
        self._clock = clock
        self._cache = cache

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """A transaction that, once committed, tells every process the configuration changed."""
        with self._session.begin():
            yield
        self._cache.changed()

    def _page(self, query: Select[T], offset: int, limit: int) -> list[T]:
        return list(self._session.scalars(query.offset(offset).limit(limit)))

    def _service(self, account_sid: str, service_sid: str) -> None:
        service = self._session.get(Service, service_sid)
        if service is None or service.account_sid != account_sid:
            raise NotFound(f"The requested resource /Services/{service_sid} was not found")


class FraudRules(_Registry):
    def __init__(self, session: Session, clock: Clock, cache: ConfigCache, actor: str) -> None:
        super().__init__(session, clock, cache)
        self._actor = actor

    def create(self, account_sid: str, f: RuleFields) -> FraudRule:
        with self._changing():
            rule = self._create(account_sid, f)
        return rule

    def _create(self, account_sid: str, f: RuleFields) -> FraudRule:
        if not f.type:
            raise InvalidParameter("Type", "is required")
        count = self._session.scalar(
            select(func.count()).select_from(FraudRule).where(FraudRule.account_sid == account_sid)
        )
        if (count or 0) >= MAX_RULES:
            raise InvalidParameter("Type", f"an account has at most {MAX_RULES} rules")
        if f.service_sid is not None:
            self._service(account_sid, f.service_sid)
        params, channels = fraud.validate(
            f.type, f.params or {}, f.mode or "enforce", f.channels or (), f.priority or 100
        )
        now = self._clock.now()
        rule = FraudRule(
            sid=sids.new_sid(RULE),
            account_sid=account_sid,
            service_sid=f.service_sid,
            type=f.type,
            mode=f.mode or "enforce",
            channels=",".join(channels),
            priority=100 if f.priority is None else f.priority,
            enabled=True if f.enabled is None else f.enabled,
            description=f.description,
            params=params,
            date_created=now,
            date_updated=now,
        )
        self._session.add(rule)
        self._audit(account_sid, rule.sid, "created", None, snapshot(rule))
        return rule

    def update(self, account_sid: str, sid: str, f: RuleFields) -> FraudRule:
        with self._changing():
            rule = self._get(account_sid, sid)
            before = snapshot(rule)
            if f.type is not None and f.type != rule.type:
                raise InvalidParameter("Type", "cannot change; create a new rule")
            if f.service_sid is not None:
                self._service(account_sid, f.service_sid)
                rule.service_sid = f.service_sid
            params = rule.params if f.params is None else f.params
            channels = tuple(c for c in rule.channels.split(",") if c)
            params, chans = fraud.validate(
                rule.type,
                params,
                f.mode or rule.mode,
                channels if f.channels is None else f.channels,
                rule.priority if f.priority is None else f.priority,
            )
            rule.params, rule.channels = params, ",".join(chans)
            rule.mode = f.mode or rule.mode
            if f.priority is not None:
                rule.priority = f.priority
            if f.enabled is not None:
                rule.enabled = f.enabled
            if f.description is not None:
                rule.description = f.description
            rule.date_updated = self._clock.now()
            self._audit(account_sid, sid, "updated", before, snapshot(rule))
        return rule

    def delete(self, account_sid: str, sid: str) -> None:
        with self._changing():
            rule = self._get(account_sid, sid)
            self._audit(account_sid, sid, "deleted", snapshot(rule), None)
            self._session.delete(rule)

    def get(self, account_sid: str, sid: str) -> FraudRule:
        with self._session.begin():
            return self._get(account_sid, sid)

    def page(
        self, account_sid: str, offset: int, limit: int, service_sid: str | None = None
    ) -> list[FraudRule]:
        with self._session.begin():
            query = select(FraudRule).where(FraudRule.account_sid == account_sid)
            if service_sid is not None:
                query = query.where(FraudRule.service_sid == service_sid)
            return self._page(query.order_by(FraudRule.priority, FraudRule.sid), offset, limit)

    def changes(self, account_sid: str, offset: int, limit: int) -> list[FraudRuleChange]:
        with self._session.begin():
            query = select(FraudRuleChange).where(FraudRuleChange.account_sid == account_sid)
            return self._page(query.order_by(FraudRuleChange.id.desc()), offset, limit)

    def decisions(
        self, account_sid: str, offset: int, limit: int, verification_sid: str | None
    ) -> list[FraudDecision]:
        with self._session.begin():
            query = select(FraudDecision).where(FraudDecision.account_sid == account_sid)
            if verification_sid:
                query = query.where(FraudDecision.verification_sid == verification_sid)
            return self._page(query.order_by(FraudDecision.id.desc()), offset, limit)

    def replace_all(self, account_sid: str, rules: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Make the account's rules exactly ``rules`` (the rules file): same sid → updated, new →
        created, missing → deleted. One transaction: a bad rule changes nothing."""
        counts = {"created": 0, "updated": 0, "deleted": 0, "unchanged": 0}
        with self._changing():
            existing = {
                r.sid: r
                for r in self._session.scalars(
                    select(FraudRule).where(FraudRule.account_sid == account_sid)
                )
            }
            kept: set[str] = set()
            for item in rules:
                f = _fields_of(item)
                sid = item.get("sid")
                rule = existing.get(sid) if isinstance(sid, str) else None
                if rule is None:
                    self._create(account_sid, f)
                    counts["created"] += 1
                    continue
                kept.add(rule.sid)
                before = snapshot(rule)
                params, chans = fraud.validate(
                    rule.type if f.type is None else f.type,
                    f.params or {},
                    f.mode or "enforce",
                    f.channels or (),
                    100 if f.priority is None else f.priority,
                )
                if f.type is not None and f.type != rule.type:
                    raise InvalidParameter("Type", f"{rule.sid}: the type of a rule cannot change")
                if f.service_sid is not None:
                    self._service(account_sid, f.service_sid)
                rule.service_sid = f.service_sid
                rule.params, rule.channels = params, ",".join(chans)
                rule.mode = f.mode or "enforce"
                rule.priority = 100 if f.priority is None else f.priority
                rule.enabled = True if f.enabled is None else f.enabled
                rule.description = f.description
                after = snapshot(rule)
                if after == before:
                    counts["unchanged"] += 1
                    continue
                rule.date_updated = self._clock.now()
                self._audit(account_sid, rule.sid, "updated", before, after)
                counts["updated"] += 1
            for sid, rule in existing.items():
                if sid not in kept:
                    self._audit(account_sid, sid, "deleted", snapshot(rule), None)
                    self._session.delete(rule)
                    counts["deleted"] += 1
        return counts

    def export(self, account_sid: str | None = None) -> dict[str, list[dict[str, Any]]]:
        with self._session.begin():
            query = select(FraudRule).order_by(
                FraudRule.account_sid, FraudRule.priority, FraudRule.sid
            )
            if account_sid is not None:
                query = query.where(FraudRule.account_sid == account_sid)
            out: dict[str, list[dict[str, Any]]] = {}
            for rule in self._session.scalars(query):
                out.setdefault(rule.account_sid, []).append(snapshot(rule))
            return out

    def _get(self, account_sid: str, sid: str) -> FraudRule:
        rule = self._session.get(FraudRule, sid)
        if rule is None or rule.account_sid != account_sid:
            raise NotFound(f"The requested resource /FraudRules/{sid} was not found")
        return rule

    def _audit(
        self,
        account_sid: str,
        sid: str,
        action: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        self._session.add(
            FraudRuleChange(
                account_sid=account_sid,
                rule_sid=sid,
                action=action,
                actor=self._actor,
                before=before,
                after=after,
                date_created=self._clock.now(),
            )
        )


def _fields_of(item: Mapping[str, Any]) -> RuleFields:
    """A rule of the rules file."""
    if not isinstance(item, Mapping):
        raise InvalidParameter("rules", "each rule must be a mapping")
    channels = item.get("channels")
    if channels is not None and not isinstance(channels, list):
        raise InvalidParameter("Channels", "must be a list")
    params = item.get("params") or {}
    if not isinstance(params, Mapping):
        raise InvalidParameter("Params", "must be a mapping")
    priority = item.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise InvalidParameter("Priority", "must be an integer")
    enabled = item.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise InvalidParameter("Enabled", "must be true or false")
    return RuleFields(
        type=item.get("type"),
        params=params,
        mode=item.get("mode"),
        service_sid=item.get("service"),
        channels=tuple(channels) if channels is not None else None,
        priority=priority,
        enabled=enabled,
        description=item.get("description"),
    )


class SafeList(_Registry):
    """Numbers (Twilio's SafeList/Numbers) and prefixes that fraud rules never block."""

    def add(self, account_sid: str, kind: str, raw: str) -> SafeListEntry:
        value = self._normalize(kind, raw)
        with self._session.begin():
            found = self._find(account_sid, value)
            if found is not None:
                return found  # adding twice is harmless, as on Twilio
            entry = SafeListEntry(
                sid=sids.new_sid(SAFE),
                account_sid=account_sid,
                kind=kind,
                value=value,
                date_created=self._clock.now(),
            )
            self._session.add(entry)
        self._cache.changed()
        return entry

    def get(self, account_sid: str, kind: str, raw: str) -> SafeListEntry:
        value = self._normalize(kind, raw)
        with self._session.begin():
            found = self._find(account_sid, value)
            if found is None or found.kind != kind:
                raise NotFound(f"{raw} is not on the safe list")
            return found

    def remove(self, account_sid: str, kind: str, raw: str) -> None:
        value = self._normalize(kind, raw)
        with self._changing():
            found = self._find(account_sid, value)
            if found is None or found.kind != kind:
                raise NotFound(f"{raw} is not on the safe list")
            self._session.delete(found)

    def page(self, account_sid: str, kind: str, offset: int, limit: int) -> list[SafeListEntry]:
        with self._session.begin():
            query = select(SafeListEntry).where(
                SafeListEntry.account_sid == account_sid, SafeListEntry.kind == kind
            )
            return self._page(query.order_by(SafeListEntry.value), offset, limit)

    def _find(self, account_sid: str, value: str) -> SafeListEntry | None:
        return self._session.scalar(
            select(SafeListEntry).where(
                SafeListEntry.account_sid == account_sid, SafeListEntry.value == value
            )
        )

    @staticmethod
    def _normalize(kind: str, raw: str) -> str:
        if kind == "number":
            return parse_phone(raw, "PhoneNumber").value
        text = raw.strip()
        if text[:1] != "+":
            text = "+" + text
        if not PREFIX.match(text):
            raise InvalidParameter("Prefix", "a + and 1 to 14 digits, e.g. +4477009")
        return text


class RateLimits(_Registry):
    """Twilio's Programmable Rate Limits (``/v2/Services/{sid}/RateLimits`` and ``/Buckets``)."""

    def create(
        self, account_sid: str, service_sid: str, unique_name: str, description: str | None
    ) -> RateLimit:
        if not UNIQUE_NAME.match(unique_name):
            raise InvalidUniqueName(
                "UniqueName may only contain letters, digits, '-', '_' and '.' (at most 64)"
            )
        with self._changing():
            self._service(account_sid, service_sid)
            existing = list(
                self._session.scalars(select(RateLimit).where(RateLimit.service_sid == service_sid))
            )
            if any(r.unique_name == unique_name for r in existing):
                raise RateLimitExists(f"A rate limit named {unique_name} already exists")
            if len(existing) >= MAX_RATE_LIMITS:
                raise MaxRateLimits(f"A service has at most {MAX_RATE_LIMITS} rate limits")
            now = self._clock.now()
            limit = RateLimit(
                sid=sids.new_sid(RATE_LIMIT),
                account_sid=account_sid,
                service_sid=service_sid,
                unique_name=unique_name,
                description=description,
                date_created=now,
                date_updated=now,
            )
            self._session.add(limit)
        return limit

    def get(self, account_sid: str, service_sid: str, sid: str) -> RateLimit:
        with self._session.begin():
            return self._get(account_sid, service_sid, sid)

    def update(
        self, account_sid: str, service_sid: str, sid: str, description: str | None
    ) -> RateLimit:
        with self._session.begin():
            limit = self._get(account_sid, service_sid, sid)
            if description is not None:
                limit.description = description
            limit.date_updated = self._clock.now()
        return limit

    def delete(self, account_sid: str, service_sid: str, sid: str) -> None:
        with self._changing():
            self._session.delete(self._get(account_sid, service_sid, sid))

    def page(self, account_sid: str, service_sid: str, offset: int, limit: int) -> list[RateLimit]:
        with self._session.begin():
            self._service(account_sid, service_sid)
            query = select(RateLimit).where(RateLimit.service_sid == service_sid)
            return self._page(query.order_by(RateLimit.date_created, RateLimit.sid), offset, limit)

    # -- buckets ------------------------------------------------------------------------------------

    def create_bucket(
        self, account_sid: str, service_sid: str, rate_limit_sid: str, max_: int, interval: int
    ) -> RateLimitBucket:
        _check_bucket(max_, interval)
        with self._changing():
            limit = self._get(account_sid, service_sid, rate_limit_sid)
            buckets = self._buckets(limit.sid)
            if any(b.interval == interval for b in buckets):
                raise BucketExists(f"This rate limit already has a bucket of {interval}s")
            if len(buckets) >= MAX_BUCKETS:
                raise MaxBuckets(f"A rate limit has at most {MAX_BUCKETS} buckets")
            now = self._clock.now()
            bucket = RateLimitBucket(
                sid=sids.new_sid(BUCKET),
                rate_limit_sid=limit.sid,
                account_sid=account_sid,
                service_sid=service_sid,
                max=max_,
                interval=interval,
                date_created=now,
                date_updated=now,
            )
            self._session.add(bucket)
        return bucket

    def get_bucket(
        self, account_sid: str, service_sid: str, rate_limit_sid: str, sid: str
    ) -> RateLimitBucket:
        with self._session.begin():
            return self._bucket(account_sid, service_sid, rate_limit_sid, sid)

    def update_bucket(
        self,
        account_sid: str,
        service_sid: str,
        rate_limit_sid: str,
        sid: str,
        max_: int | None,
        interval: int | None,
    ) -> RateLimitBucket:
        with self._changing():
            bucket = self._bucket(account_sid, service_sid, rate_limit_sid, sid)
            new_max = bucket.max if max_ is None else max_
            new_interval = bucket.interval if interval is None else interval
            _check_bucket(new_max, new_interval)
            if new_interval != bucket.interval and any(
                b.interval == new_interval for b in self._buckets(rate_limit_sid)
            ):
                raise BucketExists(f"This rate limit already has a bucket of {new_interval}s")
            bucket.max, bucket.interval = new_max, new_interval
            bucket.date_updated = self._clock.now()
        return bucket

    def delete_bucket(
        self, account_sid: str, service_sid: str, rate_limit_sid: str, sid: str
    ) -> None:
        with self._changing():
            self._session.delete(self._bucket(account_sid, service_sid, rate_limit_sid, sid))

    def buckets(
        self, account_sid: str, service_sid: str, rate_limit_sid: str
    ) -> list[RateLimitBucket]:
        with self._session.begin():
            self._get(account_sid, service_sid, rate_limit_sid)
            return self._buckets(rate_limit_sid)

    def _buckets(self, rate_limit_sid: str) -> list[RateLimitBucket]:
        return list(
            self._session.scalars(
                select(RateLimitBucket)
                .where(RateLimitBucket.rate_limit_sid == rate_limit_sid)
                .order_by(RateLimitBucket.interval)
            )
        )

    def _bucket(
        self, account_sid: str, service_sid: str, rate_limit_sid: str, sid: str
    ) -> RateLimitBucket:
        self._get(account_sid, service_sid, rate_limit_sid)
        bucket = self._session.get(RateLimitBucket, sid)
        if bucket is None or bucket.rate_limit_sid != rate_limit_sid:
            raise NotFound(f"The requested resource /Buckets/{sid} was not found")
        return bucket

    def _get(self, account_sid: str, service_sid: str, sid: str) -> RateLimit:
        limit = self._session.get(RateLimit, sid)
        if limit is None or limit.account_sid != account_sid or limit.service_sid != service_sid:
            raise NotFound(f"The requested resource /RateLimits/{sid} was not found")
        return limit


def _check_bucket(max_: int, interval: int) -> None:
    if not 1 <= max_ <= 10_000_000:
        raise InvalidParameter("Max", "must be between 1 and 10000000")
    if not 1 <= interval <= MAX_INTERVAL:
        raise InvalidParameter("Interval", f"must be between 1 and {MAX_INTERVAL} seconds")
