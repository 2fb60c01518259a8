"""Webhook signatures: Standard Webhooks (``webhook-signature: v1,…``) and, per endpoint, Twilio's
``X-Twilio-Signature``.

Standard Webhooks: each ``v1`` signature is base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), the
key being the bytes behind a ``whsec_<base64>`` secret. One signature per active secret, separated by
spaces, so a receiver holding either the old or the new secret accepts a message during a rotation.
``verify/client/webhooks.py`` is the receiving side of the same scheme.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

PREFIX = "whsec_"
KEY_BYTES = 32


def new_secret() -> str:
    """A fresh secret in its ``whsec_`` form (256 random bits)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def key_of(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX), validate=True)


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key_of(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def standard_headers(
    secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret in ``secrets_``."""
    if not secrets_:
        raise ValueError("at least one secret is needed to sign")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets_),
    }


def with_body_hash(url: str, body: bytes) -> str:
    """``url`` with Twilio's ``bodySHA256`` query parameter, as Twilio sends JSON webhooks."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "bodySHA256"]
    query.append(("bodySHA256", hashlib.sha256(body).hexdigest()))
    return urlunsplit(parts._replace(query=urlencode(query)))


def twilio_signature(secret: str, url: str) -> str:
    """Twilio's ``X-Twilio-Signature`` for a JSON body: base64(HMAC-SHA1(secret, url)), where ``url``
    already carries ``bodySHA256``. The key is the whole ``whsec_…`` string, the way Twilio's
    ``RequestValidator`` uses an auth token."""
    mac = hmac.new(secret.encode(), url.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()
