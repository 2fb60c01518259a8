"""Each process's copy of the abuse configuration: rules, safe list, cool-down blocks and tenant
rate-limit buckets, per account, loaded from the database on first use.

A change anywhere bumps a version counter in Redis; every process compares it at most once per
``check_every`` seconds and drops its copies when it moved, so a change made through the API or
the CLI reaches every web and worker process within about a second, without a restart.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from verify.abuse.counters import Counters
from verify.domain.fraud import KnownBlock, Rule, effective
from verify.domain.ratelimits import DEFAULT_LIMITS, Bucket, Limit
from verify.models.abuse import FraudBlock, FraudRule, RateLimit, RateLimitBucket, SafeListEntry


def rule_of(row: FraudRule) -> Rule:
    return Rule(
        sid=row.sid,
        type=row.type,
        params=dict(row.params),
        mode=row.mode,
        channels=tuple(c for c in row.channels.split(",") if c),
        priority=row.priority,
        enabled=row.enabled,
        account_sid=row.account_sid,
        service_sid=row.service_sid,
        description=row.description,
    )


@dataclass
class AccountConfig:
    rules: list[Rule]
    safe_numbers: frozenset[str]
    safe_prefixes: tuple[str, ...]
    blocks: dict[tuple[str, str, str, str], KnownBlock]
    buckets: dict[str, list[Bucket]]  # service sid -> buckets
    limit_names: dict[str, frozenset[str]]  # service sid -> rate limit unique names
    default_limits: tuple[Limit, ...]
    _effective: dict[tuple[str, str], tuple[list[Rule], list[Limit]]] = field(default_factory=dict)

    def for_send(self, service_sid: str, channel: str) -> tuple[list[Rule], list[Limit]]:
        found = self._effective.get((service_sid, channel))
        if found is None:
            found = effective(self.rules, service_sid, channel, self.default_limits)
            self._effective[(service_sid, channel)] = found
        return found

    def is_safe(self, destination: str) -> bool:
        return destination in self.safe_numbers or destination.startswith(self.safe_prefixes)


class ConfigCache:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        counters: Counters,
        default_limits: tuple[Limit, ...] = DEFAULT_LIMITS,
        check_every: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._counters = counters
        self._default_limits = default_limits
        self._check_every = check_every
        self._accounts: dict[str, AccountConfig] = {}
        self._version: str | None = None
        self._checked = -1e9
        self._lock = threading.Lock()

    def get(self, account_sid: str, session: Session | None = None) -> AccountConfig:
        """The account's configuration. A caller inside a transaction passes its session: the
        embedded SQLite allows one writer, and a second connection would wait for this one."""
        self._refresh()
        found = self._accounts.get(account_sid)
        if found is None:
            if session is not None:
                found = self._load(session, account_sid)
            else:
                with self._sessions() as own:
                    found = self._load(own, account_sid)
            self._accounts[account_sid] = found
        return found

    def changed(self) -> None:
        """Tell every process (this one at once) that the configuration changed."""
        self._counters.bump_version()
        with self._lock:
            self._accounts = {}
            self._checked = -1e9

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self._check_every:
            return
        version = self._counters.version()
        with self._lock:
            self._checked = now
            if version != self._version:
                self._version = version
                self._accounts = {}

    def _load(self, session: Session, account_sid: str) -> AccountConfig:
        rules = [
            rule_of(r)
            for r in session.scalars(select(FraudRule).where(FraudRule.account_sid == account_sid))
        ]
        safe = list(
            session.scalars(select(SafeListEntry).where(SafeListEntry.account_sid == account_sid))
        )
        blocks = {
            (b.scope_sid, b.rule_sid, b.dimension, b.value): KnownBlock(b.blocked_until, b.strikes)
            for b in session.scalars(
                select(FraudBlock).where(FraudBlock.account_sid == account_sid)
            )
        }
        buckets: dict[str, list[Bucket]] = defaultdict(list)
        names: dict[str, set[str]] = defaultdict(set)
        query = (
            select(RateLimit, RateLimitBucket)
            .outerjoin(RateLimitBucket, RateLimitBucket.rate_limit_sid == RateLimit.sid)
            .where(RateLimit.account_sid == account_sid)
        )
        for limit, bucket in session.execute(query):
            names[limit.service_sid].add(limit.unique_name)
            if bucket is not None:
                buckets[limit.service_sid].append(
                    Bucket(limit.sid, limit.unique_name, bucket.sid, bucket.max, bucket.interval)
                )
        return AccountConfig(
            rules=rules,
            safe_numbers=frozenset(e.value for e in safe if e.kind == "number"),
            safe_prefixes=tuple(e.value for e in safe if e.kind == "prefix"),
            blocks=blocks,
            buckets=dict(buckets),
            limit_names={k: frozenset(v) for k, v in names.items()},
            default_limits=self._default_limits,
        )
