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
from typing import ClassVar, Protocol, runtime_checkable


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # the provider took the message; receipts may follow
    RETRY = "retry"  # a transient failure: the same provider again, after a backoff
    FAILOVER = "failover"  # this provider cannot deliver now: try the next one on the route
    PERMANENT = "permanent"  # no provider can deliver this message (bad number, blocked, ...)


@dataclass(frozen=True)
class OutboundMessage:
    """What to send. ``text`` is the SMS/WhatsApp body, the email's text part, or the words a call
    speaks; ``speech`` is the provider-neutral voice script (SSML-free segments and pauses).

    ``speech`` segments are spoken in order with a short pause after each (the digits are one segment
    each). With ``dtmf_required``, ``speech[0]`` is the prompt played while waiting for a key, and the
    rest is spoken once a key is pressed: the provider fetches it from ``voice_continue_url`` (a
    call's inline script cannot branch on a key press by itself).
    """

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
    voice_continue_url: str | None = None  # call + dtmf_required: serves the script after the key
    # The code alone, for templates registered with a provider that take it as a variable
    # (WhatsApp authentication templates; a gateway filling its own)
    code: str = ""


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
    status: str  # queued | sending | sent | delivered | undelivered | failed
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


@runtime_checkable
class VoiceContinuation(Protocol):
    """A voice adapter whose DTMF-first calls fetch the rest of their script from
    ``OutboundMessage.voice_continue_url`` once a key is pressed."""

    def voice_request(self, request: ReceiptRequest) -> str | None:
        """Verify the request's signature (raise InvalidSignature); the keys pressed, or None."""
        ...

    def voice_answer(self, message: OutboundMessage | None) -> tuple[str, bytes]:
        """(content type, body) that speaks ``message`` after the prompt, or hangs up (None)."""
        ...


@runtime_checkable
class StatusLookup(Protocol):
    """An adapter that can ask its provider where a message it accepted stands: how a receipt lost
    on its way to us is recovered (``ReceiptService.reconcile``)."""

    def fetch_receipt(self, provider_message_id: str, channel: str) -> Receipt | None:
        """The message's status as a receipt, or None if the provider could not say."""
        ...
