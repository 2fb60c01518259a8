"""The core tables: accounts, credentials, services, verifications, attempts, checks, the outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BIGINT_ID = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), bytes: LargeBinary()}


class Account(Base):
    __tablename__ = "accounts"

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    friendly_name: Mapped[str] = mapped_column(String(64))
    auth_token_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    date_created: Mapped[datetime]
    date_updated: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    account_sid: Mapped[str] = mapped_column(
        ForeignKey("accounts.sid", ondelete="CASCADE"), index=True
    )
    friendly_name: Mapped[str] = mapped_column(String(64))
    secret_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    date_created: Mapped[datetime]
    date_updated: Mapped[datetime]


class Service(Base):
    __tablename__ = "services"

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    account_sid: Mapped[str] = mapped_column(
        ForeignKey("accounts.sid", ondelete="CASCADE"), index=True
    )
    friendly_name: Mapped[str] = mapped_column(String(64))
    code_length: Mapped[int] = mapped_column(Integer, default=6)
    lookup_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    skip_sms_to_landlines: Mapped[bool] = mapped_column(Boolean, default=False)
    dtmf_input_required: Mapped[bool] = mapped_column(Boolean, default=True)
    tts_name: Mapped[str | None] = mapped_column(String(64))
    psd2_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    do_not_share_warning_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    custom_code_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    manual_approval_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    code_ttl: Mapped[int] = mapped_column(Integer, default=600)
    max_check_attempts: Mapped[int] = mapped_column(Integer, default=5)
    max_send_attempts: Mapped[int] = mapped_column(Integer, default=5)
    channels: Mapped[str] = mapped_column(String(64), default="sms,call,email,whatsapp")
    default_locale: Mapped[str | None] = mapped_column(String(16))
    # Channel fallback (delivery): the channels to try next, in order, and how long to wait for a
    # delivery receipt or a check before trying the next one.
    fallback_channels: Mapped[str] = mapped_column(String(64), default="", server_default="")
    channel_timeout: Mapped[int] = mapped_column(Integer, default=60, server_default=text("60"))
    date_created: Mapped[datetime]
    date_updated: Mapped[datetime]

    test_numbers: Mapped[list[TestNumber]] = relationship(
        # Loaded explicitly where needed (selectinload), never behind a view's back.
        cascade="all, delete-orphan",
        lazy="raise_on_sql",
        order_by="TestNumber.destination",
    )


class TestNumber(Base):
    """A destination that never receives anything and always takes a fixed code (sealed at rest)."""

    __tablename__ = "test_numbers"
    __table_args__ = (UniqueConstraint("service_sid", "destination"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_sid: Mapped[str] = mapped_column(ForeignKey("services.sid", ondelete="CASCADE"))
    destination: Mapped[str] = mapped_column(String(320))
    sealed_code: Mapped[bytes] = mapped_column(LargeBinary)


class Verification(Base):
    __tablename__ = "verifications"
    __table_args__ = (
        # At most one pending verification per destination and service: a second "create" is a resend.
        Index(
            "uq_verifications_one_pending",
            "service_sid",
            "destination",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_verifications_pending_expiry", "status", "expires_at"),
        Index("ix_verifications_account_destination", "account_sid", "destination"),
    )

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    account_sid: Mapped[str] = mapped_column(ForeignKey("accounts.sid", ondelete="CASCADE"))
    service_sid: Mapped[str] = mapped_column(ForeignKey("services.sid", ondelete="CASCADE"))
    destination: Mapped[str] = mapped_column(String(320))
    country: Mapped[str | None] = mapped_column(String(2))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    code_hash: Mapped[str] = mapped_column(String(128))
    sealed_code: Mapped[bytes] = mapped_column(LargeBinary)
    check_attempts: Mapped[int] = mapped_column(Integer, default=0)
    send_attempts: Mapped[int] = mapped_column(Integer, default=0)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    locale: Mapped[str | None] = mapped_column(String(16))
    custom_friendly_name: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[str | None] = mapped_column(String(64))
    payee: Mapped[str | None] = mapped_column(String(64))
    # A URL that gets this verification's events (webhooks, issue 5); checked by the SSRF guard.
    status_callback: Mapped[str | None] = mapped_column(String(2048))
    expires_at: Mapped[datetime]
    date_created: Mapped[datetime]
    date_updated: Mapped[datetime]


class SendAttempt(Base):
    __tablename__ = "send_attempts"

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    verification_sid: Mapped[str] = mapped_column(
        ForeignKey("verifications.sid", ondelete="CASCADE"), index=True
    )
    account_sid: Mapped[str] = mapped_column(String(34), index=True)
    service_sid: Mapped[str] = mapped_column(String(34))
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within its verification
    channel: Mapped[str] = mapped_column(String(16))
    # queued -> sending -> sent -> delivered | undelivered | failed; "test" for test numbers (never
    # sent); "canceled" if the verification ended before the worker reached it; "blocked" by the
    # abuse controls. See docs/delivery.md.
    status: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str | None] = mapped_column(String(32))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    date_created: Mapped[datetime]
    date_updated: Mapped[datetime]
    # Delivery pipeline (verify/delivery): which provider took it and under what id, the provider's
    # own code (internal only), retries of the same provider, and the attempt this one replaces
    # (failover to the next provider, or fallback to the next channel).
    provider_sid: Mapped[str | None] = mapped_column(String(34))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    raw_code: Mapped[str | None] = mapped_column(String(64))
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    retry_at: Mapped[datetime | None]
    replaces_sid: Mapped[str | None] = mapped_column(String(34))
    delivered_at: Mapped[datetime | None]
    # When the sweep last asked the provider where a message with no final receipt stands.
    reconciled_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_send_attempts_status_created", "status", "date_created"),
        Index("ix_send_attempts_provider_message", "provider_sid", "provider_message_id"),
        Index("uq_send_attempts_replaces_sid", "replaces_sid", unique=True),
    )


class CheckAttempt(Base):
    __tablename__ = "check_attempts"

    id: Mapped[int] = mapped_column(BIGINT_ID, primary_key=True, autoincrement=True)
    verification_sid: Mapped[str] = mapped_column(
        ForeignKey("verifications.sid", ondelete="CASCADE"), index=True
    )
    account_sid: Mapped[str] = mapped_column(String(34))
    # approved | wrong_code | max_attempts | expired | budget_exhausted
    outcome: Mapped[str] = mapped_column(String(24))
    date_created: Mapped[datetime]


class DestinationFailures(Base):
    """Consecutive failed checks per destination across verifications (NIST 800-63B's lockout)."""

    __tablename__ = "destination_failures"

    account_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    destination: Mapped[str] = mapped_column(String(320), primary_key=True)
    consecutive: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime]


class Event(Base):
    """The outbox: one row per state change, written in the same transaction as the change."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_unpublished", "published_at", "id"),)

    id: Mapped[int] = mapped_column(BIGINT_ID, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34), index=True)
    service_sid: Mapped[str | None] = mapped_column(String(34))
    type: Mapped[str] = mapped_column(String(48))
    subject_sid: Mapped[str] = mapped_column(String(34), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    date_created: Mapped[datetime]
    published_at: Mapped[datetime | None]
