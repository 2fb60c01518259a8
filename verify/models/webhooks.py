"""Webhook tables: subscriptions, their signing secrets, deliveries and every delivery attempt."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from verify.models.core import BIGINT_ID, Base


class WebhookEndpoint(Base):
    """A service's subscription: where its events go (``/v2/Services/{ServiceSid}/Webhooks``)."""

    __tablename__ = "webhook_endpoints"

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    account_sid: Mapped[str] = mapped_column(String(34), index=True)
    service_sid: Mapped[str] = mapped_column(
        ForeignKey("services.sid", ondelete="CASCADE"), index=True
    )
    friendly_name: Mapped[str] = mapped_column(String(64))
    event_types: Mapped[str] = mapped_column(String(1024))  # comma-separated; "*" for every type
    url: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16))  # enabled | disabled
    version: Mapped[str] = mapped_column(String(8))  # v1 | v2 (echoed; one payload format)
    signature_mode: Mapped[str] = mapped_column(String(16))  # standard | twilio
    date_created: Mapped[datetime]
    date_updated: Mapped[datetime]


class WebhookSecret(Base):
    """A signing secret, sealed at rest. Its owner is an endpoint (``YW…``) or, for the
    per-verification StatusCallback URLs, the service (``VA…``). Several are active while one
    rotates: every active secret signs every message."""

    __tablename__ = "webhook_secrets"

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    owner_sid: Mapped[str] = mapped_column(String(34), index=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    date_created: Mapped[datetime]
    expires_at: Mapped[datetime | None]  # None: active until rotated out


class WebhookDelivery(Base):
    """One event for one target (an endpoint, or a verification's StatusCallback URL)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_sid", "endpoint_sid"),
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_status", "endpoint_sid", "status"),
    )

    id: Mapped[int] = mapped_column(BIGINT_ID, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34), index=True)
    service_sid: Mapped[str | None] = mapped_column(String(34))
    # NULL for a StatusCallback delivery, whose URL is ``url``.
    endpoint_sid: Mapped[str | None] = mapped_column(
        ForeignKey("webhook_endpoints.sid", ondelete="CASCADE")
    )
    url: Mapped[str | None] = mapped_column(String(2048))
    event_sid: Mapped[str] = mapped_column(String(34))
    event_type: Mapped[str] = mapped_column(String(48))
    verification_sid: Mapped[str | None] = mapped_column(String(34), index=True)
    # pending -> delivering -> succeeded | retrying (-> delivering ...) | dead; replay -> pending
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # tries since creation or replay
    next_attempt_at: Mapped[datetime]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    date_created: Mapped[datetime]
    date_updated: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One HTTP try of a delivery: when, the answer's status code, how long it took, what failed."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BIGINT_ID, primary_key=True, autoincrement=True)
    delivery_sid: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.sid", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... across replays
    date_created: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
