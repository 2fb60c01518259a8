"""Abuse-control tables: fraud rules and their audit trail, decisions, prefix blocks, the safe list,
and Twilio's tenant-defined rate limits with their buckets (issue 4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from verify.models.core import BIGINT_ID, Base


class FraudRule(Base):
    """One rule, as data: a type with parameters, a mode, a scope and the channels it watches."""

    __tablename__ = "fraud_rules"
    __table_args__ = (Index("ix_fraud_rules_account_sid", "account_sid", "priority"),)

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    account_sid: Mapped[str] = mapped_column(ForeignKey("accounts.sid", ondelete="CASCADE"))
    # NULL: the rule applies to every service of the account.
    service_sid: Mapped[str | None] = mapped_column(ForeignKey("services.sid", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))  # enforce | monitor
    channels: Mapped[str] = mapped_column(String(64))  # comma-separated; "" = the type's default
    priority: Mapped[int] = mapped_column(Integer)  # evaluation order, lowest first
    enabled: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str | None] = mapped_column(String(255))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    date_created: Mapped[datetime]
    date_updated: Mapped[datetime]


class FraudRuleChange(Base):
    """The audit trail: every create, update and delete of a rule, with who did it."""

    __tablename__ = "fraud_rule_changes"

    id: Mapped[int] = mapped_column(BIGINT_ID, primary_key=True, autoincrement=True)
    account_sid: Mapped[str] = mapped_column(String(34), index=True)
    rule_sid: Mapped[str] = mapped_column(String(34))
    action: Mapped[str] = mapped_column(String(16))  # created | updated | deleted
    actor: Mapped[str] = mapped_column(String(64))  # credential sid, or "cli"
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    date_created: Mapped[datetime]


class FraudDecision(Base):
    """What a rule decided about one send attempt (blocks, flags and bypasses; passes are not kept)."""

    __tablename__ = "fraud_decisions"

    id: Mapped[int] = mapped_column(BIGINT_ID, primary_key=True, autoincrement=True)
    account_sid: Mapped[str] = mapped_column(String(34), index=True)
    service_sid: Mapped[str] = mapped_column(String(34))
    verification_sid: Mapped[str] = mapped_column(
        ForeignKey("verifications.sid", ondelete="CASCADE"), index=True
    )
    attempt_sid: Mapped[str | None] = mapped_column(String(34))
    rule_sid: Mapped[str] = mapped_column(String(48))  # a rule's sid, or "default:<type>"
    rule_type: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))  # block | flag | bypass
    reason_code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    date_created: Mapped[datetime]


class FraudBlock(Base):
    """A prefix or country blocked for a cool-down by the conversion-rate guard (durable copy of
    the Redis key, so a Redis restart does not lift it)."""

    __tablename__ = "fraud_blocks"
    __table_args__ = (
        UniqueConstraint("account_sid", "scope_sid", "rule_sid", "dimension", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_sid: Mapped[str] = mapped_column(ForeignKey("accounts.sid", ondelete="CASCADE"))
    scope_sid: Mapped[str] = mapped_column(String(34))  # the account or service the rule counts in
    rule_sid: Mapped[str] = mapped_column(String(48))
    dimension: Mapped[str] = mapped_column(String(16))  # prefix | country
    value: Mapped[str] = mapped_column(String(32))
    strikes: Mapped[int] = mapped_column(Integer)
    blocked_until: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(500))
    date_created: Mapped[datetime]
    date_updated: Mapped[datetime]


class SafeListEntry(Base):
    """A number (Twilio's /v2/SafeList/Numbers) or a prefix that fraud rules never block."""

    __tablename__ = "safe_list"
    __table_args__ = (UniqueConstraint("account_sid", "value"),)

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    account_sid: Mapped[str] = mapped_column(ForeignKey("accounts.sid", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # number | prefix
    value: Mapped[str] = mapped_column(String(32))
    date_created: Mapped[datetime]


class RateLimit(Base):
    """Twilio's Programmable Rate Limits: a named key the application passes values for."""

    __tablename__ = "rate_limits"
    __table_args__ = (UniqueConstraint("service_sid", "unique_name"),)

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    account_sid: Mapped[str] = mapped_column(String(34), index=True)
    service_sid: Mapped[str] = mapped_column(ForeignKey("services.sid", ondelete="CASCADE"))
    unique_name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(255))
    date_created: Mapped[datetime]
    date_updated: Mapped[datetime]


class RateLimitBucket(Base):
    """At most ``max`` sends per ``interval`` seconds for each value of its rate limit."""

    __tablename__ = "rate_limit_buckets"
    __table_args__ = (UniqueConstraint("rate_limit_sid", "interval"),)

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    rate_limit_sid: Mapped[str] = mapped_column(
        ForeignKey("rate_limits.sid", ondelete="CASCADE"), index=True
    )
    account_sid: Mapped[str] = mapped_column(String(34))
    service_sid: Mapped[str] = mapped_column(String(34))
    max: Mapped[int] = mapped_column(Integer)
    interval: Mapped[int] = mapped_column(Integer)
    date_created: Mapped[datetime]
    date_updated: Mapped[datetime]
