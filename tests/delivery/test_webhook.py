"""The http adapter against a tenant gateway that verifies Standard Webhooks signatures."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.delivery.conftest import TO, message, receipt_request
from tests.peers._server import Reply, accept, fail, timeout
from tests.peers.gateway import new_secret
from tests.servers import free_port
from verify.delivery.providers import build_provider
from verify.delivery.providers.base import InvalidSignature, Outcome, ReceiptRequest


def provider(peer, secret=None, **config):
    settings = {"url": f"{peer.url}/send", **config}
    return build_provider("http", settings, {"secret": secret or peer.secret}, timeout=1.0)


def test_payload_is_signed_and_carries_the_rendered_message(gateway_peer):
    """The gateway's standardwebhooks check passes and the JSON has the documented fields."""
    m = message("sms", "pt", status_callback="https://verify.example/cb/http")
    result = provider(gateway_peer).send(m)
    assert result.outcome is Outcome.ACCEPTED
    assert result.provider_message_id.startswith("gw-")
    [payload] = gateway_peer.messages
    assert payload == {
        "type": "message.send",
        "to": TO,
        "channel": "sms",
        "locale": "pt",
        "body": m.text,
        "code": "123456",
        "verification_sid": m.verification_sid,
        "attempt_sid": m.attempt_sid,
        "status_callback": "https://verify.example/cb/http",
    }
    [request] = gateway_peer.requests
    assert request.headers["webhook-id"] == m.attempt_sid
    assert request.headers["webhook-signature"].startswith("v1,")


def test_email_and_call_payloads_carry_their_extra_parts(gateway_peer):
    """Email adds subject and html; a call adds the speech segments and the DTMF flag."""
    p = provider(gateway_peer)
    p.send(message("email"))
    p.send(message("call", dtmf_required=True, voice_continue_url="https://v.example/c"))
    email, call = gateway_peer.messages
    assert email["subject"] == "Your Acme Login verification code"
    assert "<html" in email["html"]
    assert call["speech"][0].startswith("Press any key")
    assert call["dtmf_required"] is True


def test_gateway_without_a_message_id_is_keyed_by_the_attempt(gateway_peer):
    """A 2xx without message_id is still accepted; receipts then name the attempt sid."""
    gateway_peer.handle = lambda request: Reply(202, {})
    m = message()
    result = provider(gateway_peer).send(m)
    assert (result.outcome, result.provider_message_id) == (Outcome.ACCEPTED, m.attempt_sid)


def test_wrong_secret_is_refused_by_the_gateway(gateway_peer):
    """Signed with another secret: the gateway answers 401, we fail over (auth)."""
    result = provider(gateway_peer, secret=new_secret()).send(message())
    assert (result.outcome, result.reason) == (Outcome.FAILOVER, "provider_auth_failed")
    assert gateway_peer.rejected == 1


@pytest.mark.parametrize(
    ("behaviour", "outcome", "reason"),
    [
        (fail(400), Outcome.PERMANENT, "rejected"),
        (fail(422, "invalid_destination"), Outcome.PERMANENT, "invalid_destination"),
        (fail(404, "made_up_reason"), Outcome.PERMANENT, "rejected"),
        (fail(408), Outcome.RETRY, "timeout"),
        (fail(429, retry_after="3"), Outcome.RETRY, "provider_rate_limited"),
        (fail(500), Outcome.FAILOVER, "provider_unavailable"),
        (fail(503), Outcome.FAILOVER, "provider_unavailable"),
    ],
)
def test_gateway_answers_are_classified(gateway_peer, behaviour, outcome, reason):
    """4xx is permanent (with the gateway's reason if it is one of ours); 408/429 retry; 5xx fail over."""
    gateway_peer.behave(behaviour, to=TO)
    result = provider(gateway_peer).send(message())
    assert (result.outcome, result.reason) == (outcome, reason)


def test_gateway_timeout_is_retried(gateway_peer):
    """No answer in time: retry, reason timeout."""
    gateway_peer.behave(timeout(3.0))
    result = provider(gateway_peer, timeout=0.3).send(message())
    assert (result.outcome, result.reason) == (Outcome.RETRY, "timeout")


def test_gateway_down_fails_over(gateway_peer):
    """Connection refused: fail over."""
    result = provider(gateway_peer, url=f"http://127.0.0.1:{free_port()}/send").send(message())
    assert (result.outcome, result.reason) == (Outcome.FAILOVER, "provider_unavailable")


# -- receipts ---------------------------------------------------------------------------------------


def test_gateway_receipts_verify_and_map(gateway_peer, receipt_sink):
    """Receipts the gateway posts with the same secret verify; failed carries its reason."""
    p = provider(gateway_peer)
    gateway_peer.behave(accept("sent", "failed", error_code="blocked_by_provider"))
    sent = p.send(message(status_callback=receipt_sink.callback("/cb/http")))
    gateway_peer.settle()
    parsed = [p.parse_receipt(receipt_request(receipt_sink.url, r)) for r in receipt_sink.requests]
    assert [[(r.provider_message_id, r.status, r.reason) for r in rs] for rs in parsed] == [
        [(sent.provider_message_id, "sent", None)],
        [(sent.provider_message_id, "failed", "blocked_by_provider")],
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tamper": True},
        {"secret": new_secret()},
        {"timestamp": datetime.now(UTC) - timedelta(hours=1)},
    ],
    ids=["tampered", "wrong-secret", "stale"],
)
def test_bad_receipts_are_refused(gateway_peer, receipt_sink, kwargs):
    """A changed body, another secret or an old timestamp fails the check."""
    gateway_peer.post_receipt(receipt_sink.callback("/cb"), "gw-1", "undelivered", **kwargs)
    with pytest.raises(InvalidSignature):
        provider(gateway_peer).parse_receipt(
            receipt_request(receipt_sink.url, receipt_sink.requests[0])
        )


def test_unsigned_receipt_is_refused(gateway_peer):
    """No Standard Webhooks headers: refused."""
    body = json.dumps({"message_id": "gw-1", "status": "delivered"}).encode()
    with pytest.raises(InvalidSignature):
        provider(gateway_peer).parse_receipt(
            ReceiptRequest(url="https://a/cb", method="POST", headers={}, body=body)
        )


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("delivered", None, [("delivered", None)]),
        ("undelivered", "not-ours", [("undelivered", "unknown")]),
        ("exploded", None, []),
    ],
)
def test_receipt_statuses_and_reasons_are_normalized(
    gateway_peer, receipt_sink, status, reason, expected
):
    """Known statuses pass; an unknown reason is `unknown`; an unknown status is ignored."""
    gateway_peer.post_receipt(receipt_sink.callback("/cb"), "gw-1", status, reason=reason)
    parsed = provider(gateway_peer).parse_receipt(
        receipt_request(receipt_sink.url, receipt_sink.requests[0])
    )
    assert [(r.status, r.reason) for r in parsed] == expected
