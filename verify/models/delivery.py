"""Delivery tables: the tenant's providers and every delivery receipt they post back (issue 3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from verify.models.core import BIGINT_ID, Base


class Provider(Base):
    """One configured provider of an account: what it is, where it routes, and its sealed secrets."""

    __tablename__ = "providers"
    __table_args__ = (Index("ix_providers_account_priority", "account_sid", "priority"),)

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    account_sid: Mapped[str] = mapped_column(ForeignKey("accounts.sid", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))  # console | smtp | twilio | vonage | http
    friendly_name: Mapped[str] = mapped_column(String(64))
    channels: Mapped[str] = mapped_column(String(64))  # comma-separated
    countries: Mapped[str] = mapped_column(String(1024), default="")  # ISO alpha-2; "" = all
    priority: Mapped[int] = mapped_column(Integer, default=10)  # lower goes first
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # AES-GCM box of the credentials' JSON, bound to the provider sid; the keys that are set, in clear.
    sealed_credentials: Mapped[bytes] = mapped_column(LargeBinary)
    credential_keys: Mapped[str] = mapped_column(String(256), default="")
    date_created: Mapped[datetime]
    date_updated: Mapped[datetime]


class DeliveryReceipt(Base):
    """A delivery receipt as a provider posted it, or as its answer when asked (``source``): each
    step of an attempt, kept for the operator.

    ``applied`` is false for a receipt that arrived after a later state (out of order) or before its
    attempt was known; an exact duplicate is not stored twice (the unique index).
    """

    __tablename__ = "delivery_receipts"
    __table_args__ = (
        Index(
            "uq_delivery_receipts_step",
            "provider_sid",
            "provider_message_id",
            "status",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BIGINT_ID, primary_key=True, autoincrement=True)
    account_sid: Mapped[str] = mapped_column(String(34))
    provider_sid: Mapped[str] = mapped_column(String(34))
    provider_message_id: Mapped[str] = mapped_column(String(128))
    attempt_sid: Mapped[str | None] = mapped_column(
        ForeignKey("send_attempts.sid", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))  # sent | delivered | undelivered | failed
    reason_code: Mapped[str | None] = mapped_column(String(64))
    raw_code: Mapped[str | None] = mapped_column(String(64))
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    # callback: posted by the provider; lookup: its answer when the sweep asked (receipts.reconcile)
    source: Mapped[str] = mapped_column(String(8), default="callback", server_default="callback")
    occurred_at: Mapped[datetime | None]
    date_created: Mapped[datetime]
