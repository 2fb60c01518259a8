"""verify_webhook against the reference Standard Webhooks signer (the standardwebhooks package)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from verify.client import WebhookVerificationError, sign_webhook, verify_webhook

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
BODY = json.dumps({"type": "verification.approved", "data": {"sid": "VE1"}}).encode()


def signed(
    body: bytes = BODY, *, at: float | None = None, secret: str = SECRET, msg_id: str = "msg_1"
) -> dict[str, str]:
    """Headers as a Standard Webhooks sender makes them, signed by the reference library."""
    when = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    signature = Webhook(secret).sign(msg_id, when, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }


def test_a_reference_signature_verifies() -> None:
    assert verify_webhook(SECRET, signed(), BODY) == json.loads(BODY)


def test_header_names_are_case_insensitive() -> None:
    headers = {k.title(): v for k, v in signed().items()}
    assert verify_webhook(SECRET, headers, BODY)["type"] == "verification.approved"


def test_a_secret_without_prefix_or_padding_works() -> None:
    bare = SECRET.removeprefix("whsec_").rstrip("=")
    assert verify_webhook(bare, signed(), BODY)


def test_one_of_several_signatures_is_enough() -> None:
    """During a secret rotation the sender signs with both secrets."""
    headers = signed()
    old = signed(secret="whsec_" + base64.b64encode(b"old-secret-bytes").decode())
    headers["webhook-signature"] = (
        f"v1a,ignored {old['webhook-signature']} {headers['webhook-signature']}"
    )
    assert verify_webhook(SECRET, headers, BODY)


def test_our_signer_agrees_with_the_reference() -> None:
    headers = signed()
    mine = sign_webhook(SECRET, "msg_1", int(headers["webhook-timestamp"]), BODY)
    assert mine == headers["webhook-signature"]
    Webhook(SECRET).verify(BODY, {**headers, "webhook-signature": mine})


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),  # body changed
        lambda h, b: ({**h, "webhook-id": "msg_2"}, b),  # id changed
        lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}, b),
        lambda h, b: ({**h, "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}, b),
        lambda h, b: ({**h, "webhook-signature": "v1,not base64!"}, b),
        lambda h, b: ({**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b),
        lambda h, b: ({**h, "webhook-timestamp": "soon"}, b),
    ],
    ids=["body", "id", "timestamp", "signature", "garbage", "version", "no-id", "no-sig", "nan"],
)
def test_anything_tampered_with_is_refused(tamper: object) -> None:
    headers, body = tamper(signed(), BODY)  # type: ignore[operator]
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, headers, body)


def test_the_wrong_secret_is_refused() -> None:
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify_webhook(other, signed(), BODY)


@pytest.mark.parametrize("offset", [-301, 301])
def test_timestamps_outside_the_tolerance_are_refused(offset: int) -> None:
    headers = signed(at=time.time() + offset)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(SECRET, headers, BODY)
    assert verify_webhook(SECRET, headers, BODY, tolerance=3600)


def test_a_body_that_is_not_a_json_object_is_refused() -> None:
    for body in (b"[1, 2]", b"nope"):
        with pytest.raises(WebhookVerificationError):
            verify_webhook(SECRET, signed(body), body)


def test_a_malformed_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="base64"):
        verify_webhook("whsec_***", signed(), BODY)
