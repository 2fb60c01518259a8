"""The one interface every provider adapter implements, and the values that cross it.

An adapter turns an ``OutboundMessage`` into one call to its provider and classifies what came back.
It never raises for anything the provider or the network did: every outcome is a ``SendResult``.
Adapters know nothing of the database, the queue or the verification's state; the delivery pipeline
(verify/delivery/sender.py) decides what an outcome means for the attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Protocol


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # the provider took the message; receipts may follow
    RETRY = "retry"  # a transient failure: the same provider again, after a backoff
    FAILOVER = "failover"  # this provider cannot deliver now: try the next one on the route
    PERMANENT = "permanent"  # no provider can deliver this message (bad number, blocked, ...)


@dataclass(frozen=True)
class OutboundMessage:
    """What to send. ``text`` is the SMS/WhatsApp body, the email's text part, or the words a call
    speaks; ``speech`` is the provider-neutral voice script (SSML-free segments and pauses)."""

    to: str
    channel: str  # sms | call | email | whatsapp
    locale: str
    text: str
    verification_sid: str
    attempt_sid: str
    subject: str | None = None  # email
    html: str | None = None  # email
    speech: tuple[str, ...] = ()  # call: the sentences to say, in order
    dtmf_required: bool = False  # call: wait for a key press before speaking
    status_callback: str | None = None  # where the provider should post delivery receipts


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str | None = None
    # Normalized, documented reason (see docs/delivery.md), e.g. "invalid_destination", "timeout".
    reason: str | None = None
    raw_code: str | None = None  # the provider's own code or status, kept internally only
    retry_after: float | None = None  # seconds, when the provider said how long to wait


@dataclass(frozen=True)
class ReceiptRequest:
    """A delivery-receipt callback as it arrived, independent of the web framework."""

    url: str  # the full URL the provider called (signatures cover it)
    method: str
    headers: Mapping[str, str]
    body: bytes
    form: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    provider_message_id: str
    status: str  # sent | delivered | undelivered | failed
    reason: str | None = None
    raw_code: str | None = None
    at: datetime | None = None  # when the provider says it happened, if it says


class InvalidSignature(Exception):
    """A receipt whose signature does not verify with the provider's credentials."""


class Provider(Protocol):
    type: ClassVar[str]  # console | smtp | twilio | vonage | http

    def send(self, message: OutboundMessage) -> SendResult: ...

    def parse_receipt(self, request: ReceiptRequest) -> list[Receipt]:
        """Verify the request's signature (raise InvalidSignature) and return its receipts."""
        ...
