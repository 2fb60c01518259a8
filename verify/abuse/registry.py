"""The abuse configuration as tenants and operators change it: the base every part shares (each
change tells every process, ``ConfigCache``) and the audited fraud rules. The safe list and Twilio's
RateLimits are in safe_list.py and rate_limits.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from verify.abuse.cache import ConfigCache
from verify.domain import fraud, sids
from verify.domain.clock import Clock
from verify.errors import (
    InvalidParameter,
    NotFound,
)
from verify.models import Service
from verify.models.abuse import (
    FraudDecision,
    FraudRule,
    FraudRuleChange,
)

RULE = "FR"
MAX_RULES = 200
MAX_DESCRIPTION = 255  # the column's length
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

    def __post_init__(self) -> None:
        # Checked here, where every way in (API, console, rules file) passes.
        text = self.description
        if text is not None and (not isinstance(text, str) or len(text) > MAX_DESCRIPTION):
            raise InvalidParameter(
                "Description", f"must be text of at most {MAX_DESCRIPTION} characters"
            )


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


class Registry:
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


class FraudRules(Registry):
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
