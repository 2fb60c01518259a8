"""Verifying webhooks signed the Standard Webhooks way (https://www.standardwebhooks.com).

A webhook request carries three headers::

    webhook-id:        msg_2b3...            unique per message (use it to drop duplicates)
    webhook-timestamp: 1718000000            Unix seconds when it was signed
    webhook-signature: v1,K5oZfzN9... v1,... one or more space-separated signatures

Each ``v1`` signature is the base64 HMAC-SHA256, keyed with the secret, of
``f"{webhook_id}.{webhook_timestamp}.{body}"``. The secret is given as ``whsec_<base64 key>``.

In a Flask view::

    from verify.client import WebhookVerificationError, verify_webhook

    @app.post("/hooks/verify")
    def verify_hook():
        try:
            event = verify_webhook(SECRET, request.headers, request.get_data())
        except WebhookVerificationError:
            return "", 400
        ...

Pass the body exactly as received (bytes): re-serialised JSON will not match the signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from verify.client.errors import WebhookVerificationError

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)

__all__ = ["WebhookVerificationError", "sign_webhook", "verify_webhook"]


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the webhook secret is not base64 (whsec_...)") from None
    if not key:
        raise WebhookVerificationError("the webhook secret is empty")
    return key


def _digest(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign_webhook(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<signature>`` value for one message (what a sender puts in ``webhook-signature``)."""
    return (
        "v1," + base64.b64encode(_digest(_key(secret), webhook_id, str(timestamp), body)).decode()
    )


def _signature_bytes(candidate: str) -> bytes | None:
    version, _, encoded = candidate.partition(",")
    if version != "v1":
        return None  # other schemes (v1a: asymmetric) are not ours to check
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def verify_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, *, tolerance: int = 300
) -> dict[str, Any]:
    """Check a webhook's signature and timestamp and return its decoded JSON body.

    ``headers`` is any mapping of the request's headers (names in any case). The timestamp must be
    within ``tolerance`` seconds of now, either way, which defeats replays of old messages. Raises
    ``WebhookVerificationError`` when a header is missing, the timestamp is out of tolerance, no
    signature matches, or the body is not a JSON object.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    webhook_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (webhook_id and timestamp and signatures):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    if abs(time.time() - sent_at) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")

    expected = _digest(_key(secret), webhook_id, timestamp, body)
    # Each comparison takes constant time; every candidate is compared (no early exit).
    matched = False
    for candidate in signatures.split():
        given = _signature_bytes(candidate)
        matched |= given is not None and hmac.compare_digest(given, expected)
    if not matched:
        raise WebhookVerificationError("no matching signature")

    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookVerificationError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return payload
