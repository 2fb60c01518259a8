"""The ``http`` provider: a signed JSON webhook to the tenant's own gateway, so any SMS, voice or
messaging service can be plugged in.

Requests and the gateway's receipts are both signed with Standard Webhooks headers (``webhook-id``,
``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>``) and one ``whsec_`` secret.
The request body and the answers the gateway may give are documented in docs/delivery.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from verify.delivery.providers import _common as r
from verify.delivery.providers.base import (
    InvalidSignature,
    OutboundMessage,
    Outcome,
    Receipt,
    ReceiptRequest,
    SendResult,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format marker, not a secret
TOLERANCE = 300  # seconds between webhook-timestamp and now, either way
RECEIPT_STATUSES = ("queued", "sending", "sent", "delivered", "undelivered", "failed")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("must start with whsec_")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ValueError("must be whsec_ followed by base64") from None
    if len(key) < 16:
        raise ValueError("must hold at least 16 random bytes")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(key: bytes, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
    """Raise InvalidSignature unless one of the ``v1`` signatures matches and the timestamp is fresh."""
    msg_id = r.header(headers, "webhook-id")
    stamp = r.header(headers, "webhook-timestamp")
    signatures = r.header(headers, "webhook-signature")
    if not (msg_id and stamp and signatures):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not an integer") from None
    if abs((now if now is not None else time.time()) - timestamp) > TOLERANCE:
        raise InvalidSignature("webhook-timestamp outside the tolerance")
    expected = sign(key, msg_id, timestamp, body)
    if not any(r.same(candidate, expected) for candidate in signatures.split()):
        raise InvalidSignature("no webhook-signature matches")


class WebhookProvider:
    type: ClassVar[str] = "http"

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = httpx.URL(url)  # parsed once, not on every send
        self._key = secret_key(secret)
        # One transport per adapter (or the process's shared one): TLS context and connections
        # are built once.
        self._poster = r.Poster(timeout, transport)

    def send(self, message: OutboundMessage) -> SendResult:
        body = json.dumps(payload(message), ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(time.time())
        msg_id = message.attempt_sid
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._key, msg_id, timestamp, body),
        }
        try:
            response = self._poster.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return r.transport_failure(exc)
        answer = r.json_object(response.content)
        if response.is_success:
            given = answer.get("message_id")
            return SendResult(
                Outcome.ACCEPTED,
                provider_message_id=str(given) if given else message.attempt_sid,
            )
        status = response.status_code
        if status in (408, 429) or status >= 500:
            return r.by_status(response)
        if status in (401, 403):  # the gateway refuses our signature: its secret differs
            return SendResult(Outcome.FAILOVER, reason=r.PROVIDER_AUTH_FAILED, raw_code=str(status))
        reason = answer.get("reason")
        return SendResult(
            Outcome.PERMANENT,
            reason=reason if reason in r.REASONS else r.REJECTED,
            raw_code=str(status),
        )

    def parse_receipt(self, request: ReceiptRequest) -> list[Receipt]:
        verify(self._key, request.headers, request.body)
        data = r.json_object(request.body)
        if not isinstance(data.get("message_id"), str):
            return []
        status = data.get("status")
        if status not in RECEIPT_STATUSES:
            return []
        reason = None
        if status in ("undelivered", "failed"):
            given = data.get("reason")
            reason = given if given in r.REASONS else r.UNKNOWN
        raw = data.get("reason")
        return [
            Receipt(
                data["message_id"],
                str(status),
                reason=reason,
                raw_code=str(raw) if raw is not None else None,
            )
        ]


def payload(message: OutboundMessage) -> dict[str, Any]:
    """The JSON the gateway receives: the rendered message (and its code alone, for a gateway that
    fills a template registered elsewhere), its sids and where to post receipts."""
    body: dict[str, Any] = {
        "type": "message.send",
        "to": message.to,
        "channel": message.channel,
        "locale": message.locale,
        "body": message.text,
        "code": message.code,
        "verification_sid": message.verification_sid,
        "attempt_sid": message.attempt_sid,
        "status_callback": message.status_callback,
    }
    if message.channel == "email":
        body["subject"] = message.subject
        body["html"] = message.html
    if message.channel == "call":
        body["speech"] = list(message.speech)
        body["dtmf_required"] = message.dtmf_required
    return body
