"""Our signer against the reference Standard Webhooks library and the client's verifier."""

from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from verify.client import verify_webhook
from verify.events import signing

BODY = b'{"type":"verification.approved","data":{}}'


def test_one_secret_verifies_with_the_reference_library() -> None:
    secret = signing.new_secret()
    headers = signing.standard_headers([secret], "WD1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers)["type"] == "verification.approved"
    assert verify_webhook(secret, headers, BODY)["type"] == "verification.approved"


def test_every_active_secret_signs() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    headers = signing.standard_headers([new, old], "WD1", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        Webhook(secret).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, headers)


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        signing.standard_headers([], "WD1", 0, BODY)


def test_body_hash_replaces_a_given_one() -> None:
    url = signing.with_body_hash("https://h.example/x?a=1&bodySHA256=zz", BODY)
    assert url.startswith("https://h.example/x?a=1&bodySHA256=")
    assert url.count("bodySHA256") == 1
    assert "zz" not in url
