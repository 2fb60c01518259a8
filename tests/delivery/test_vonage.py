"""The vonage adapter against a local peer speaking the SMS API, the Voice API and signed callbacks."""

import time

import jwt
import pytest

from tests.delivery.conftest import TO, message, receipt_request
from tests.peers._server import accept, fail, timeout
from tests.servers import free_port
from verify.delivery.providers import build_provider
from verify.delivery.providers.base import InvalidSignature, Outcome, ReceiptRequest

FROM = "VerifyCo"
VOICE_FROM = "+12015550123"


def provider(peer, **config):
    creds = {
        "api_secret": config.pop("api_secret", peer.api_secret),
        "private_key": config.pop("private_key", peer.private_key),
        "signature_secret": config.pop("signature_secret", peer.signature_secret),
    }
    settings = {
        "api_key": peer.api_key,
        "from": FROM,
        "voice_from": VOICE_FROM,
        "application_id": peer.application_id,
        "sms_url": peer.url,
        "api_url": peer.url,
        **config,
    }
    return build_provider("vonage", settings, creds, timeout=1.0)


def test_sms_is_accepted_with_the_fields_vonage_expects(vonage_peer):
    """POST /sms/json with key, secret, from, to without +, text, receipts requested, client-ref."""
    m = message(status_callback="https://verify.example/cb/vonage")
    result = provider(vonage_peer).send(m)
    assert result.outcome is Outcome.ACCEPTED
    assert result.provider_message_id
    [sent] = vonage_peer.sends("/sms/json")
    assert sent.form == {
        "api_key": vonage_peer.api_key,
        "api_secret": vonage_peer.api_secret,
        "from": FROM,
        "to": TO.lstrip("+"),
        "text": m.text,
        "type": "text",
        "client-ref": m.attempt_sid,
        "status-report-req": "1",
        "callback": "https://verify.example/cb/vonage",
    }


def test_non_gsm_text_is_sent_as_unicode(vonage_peer):
    """Arabic (or any text outside GSM-7) is type=unicode, or the handset gets question marks."""
    provider(vonage_peer).send(message("sms", "ar"))
    assert vonage_peer.sends()[0].form["type"] == "unicode"


@pytest.mark.parametrize(
    ("behaviour", "outcome", "reason", "raw"),
    [
        (fail(200, "1"), Outcome.RETRY, "provider_rate_limited", "1"),
        (fail(200, "6"), Outcome.PERMANENT, "unreachable_destination", "6"),
        (fail(200, "7"), Outcome.PERMANENT, "blocked_by_provider", "7"),
        (fail(200, "9"), Outcome.FAILOVER, "provider_misconfigured", "9"),
        (fail(200, "15"), Outcome.FAILOVER, "provider_misconfigured", "15"),
        (fail(200, "99"), Outcome.FAILOVER, "unknown", "99"),
        (fail(429), Outcome.RETRY, "provider_rate_limited", "429"),
        (fail(500), Outcome.FAILOVER, "provider_unavailable", "500"),
    ],
)
def test_sms_statuses_are_classified(vonage_peer, behaviour, outcome, reason, raw):
    """Vonage's per-message status codes (inside a 200) and HTTP errors map to outcomes."""
    vonage_peer.behave(behaviour, to=TO)
    result = provider(vonage_peer).send(message())
    assert (result.outcome, result.reason, result.raw_code) == (outcome, reason, raw)


def test_wrong_secret_is_an_auth_failure(vonage_peer):
    """Status 4 (bad credentials) fails over with provider_auth_failed."""
    result = provider(vonage_peer, api_secret="wrong").send(message())
    assert (result.outcome, result.reason, result.raw_code) == (
        Outcome.FAILOVER,
        "provider_auth_failed",
        "4",
    )


def test_sms_timeout_is_retried(vonage_peer):
    """No answer within the timeout: retry, reason timeout."""
    vonage_peer.behave(timeout(3.0))
    result = provider(vonage_peer, timeout=0.3).send(message())
    assert (result.outcome, result.reason) == (Outcome.RETRY, "timeout")


def test_vonage_down_fails_over(vonage_peer):
    """Connection refused: fail over."""
    result = provider(vonage_peer, sms_url=f"http://127.0.0.1:{free_port()}").send(message())
    assert (result.outcome, result.reason) == (Outcome.FAILOVER, "provider_unavailable")


def test_whatsapp_is_not_a_vonage_channel(vonage_peer):
    """This adapter carries SMS and voice only."""
    result = provider(vonage_peer).send(message("whatsapp"))
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, "unsupported_channel")


def test_call_uses_an_rs256_jwt_and_an_ncco_that_reads_digits(vonage_peer):
    """POST /v1/calls: the peer verifies the JWT with the application's public key; the NCCO talks."""
    m = message("call", "fr", status_callback="https://verify.example/cb/vonage-voice")
    result = provider(vonage_peer).send(m)
    assert result.outcome is Outcome.ACCEPTED
    [sent] = vonage_peer.sends("/v1/calls")
    token = sent.headers["authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, vonage_peer.public_key, algorithms=["RS256"])
    assert claims["application_id"] == vonage_peer.application_id
    body = sent.json
    assert body["to"] == [{"type": "phone", "number": TO.lstrip("+")}]
    assert body["from"] == {"type": "phone", "number": VOICE_FROM.lstrip("+")}
    assert body["event_url"] == ["https://verify.example/cb/vonage-voice"]
    [talk] = body["ncco"]
    assert talk["action"] == "talk"
    assert talk["language"] == "fr-FR"
    assert talk["text"].count('<break time="1s"/>') == len(m.speech)
    assert '1<break time="1s"/>2<break time="1s"/>3' in talk["text"]


def test_dtmf_call_waits_for_a_key_before_the_code(vonage_peer):
    """DTMF-first: the prompt, then a one-key input posting to the continue URL; no code in the NCCO."""
    p = provider(vonage_peer)
    m = message("call", dtmf_required=True, voice_continue_url="https://verify.example/voice/VL1")
    assert p.send(m).outcome is Outcome.ACCEPTED
    talk, wait = vonage_peer.sends("/v1/calls")[0].json["ncco"]
    assert "Press any key" in talk["text"]
    assert wait == {
        "action": "input",
        "type": ["dtmf"],
        "dtmf": {"maxDigits": 1, "timeOut": 10},
        "eventUrl": ["https://verify.example/voice/VL1"],
        "eventMethod": "POST",
    }
    assert "6<break" in p.continue_ncco(m)[0]["text"]


def test_call_with_a_foreign_key_is_refused(vonage_peer):
    """A JWT signed by another key is 401 at the peer: auth failure, fail over."""
    from tests.peers import vonage as peer_module

    other = peer_module.keypair.__wrapped__()[0]
    result = provider(vonage_peer, private_key=other).send(message("call"))
    assert (result.outcome, result.reason) == (Outcome.FAILOVER, "provider_auth_failed")


def test_call_without_voice_settings_is_not_attempted(vonage_peer):
    """No application id: the call cannot be made here, fail over without a request."""
    result = provider(vonage_peer, application_id=None).send(message("call"))
    assert (result.outcome, result.reason) == (Outcome.FAILOVER, "provider_misconfigured")
    assert vonage_peer.requests == []


# -- receipts ---------------------------------------------------------------------------------------


def test_signed_dlrs_verify_and_map(vonage_peer, receipt_sink):
    """The peer's DLRs (sig, HMAC-SHA256) verify and map: accepted->sent, delivered."""
    p = provider(vonage_peer)
    vonage_peer.behave(accept("accepted", "delivered"))
    sent = p.send(message(status_callback=receipt_sink.callback("/cb/vonage")))
    vonage_peer.settle()
    parsed = [p.parse_receipt(receipt_request(receipt_sink.url, r)) for r in receipt_sink.requests]
    assert [[(r.provider_message_id, r.status) for r in rs] for rs in parsed] == [
        [(sent.provider_message_id, "sent")],
        [(sent.provider_message_id, "delivered")],
    ]
    assert parsed[1][0].at is not None


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        ("expired", "0", ("undelivered", "unreachable_destination")),
        ("failed", "9", ("failed", "invalid_destination")),
        ("rejected", "6", ("failed", "blocked_by_provider")),
    ],
)
def test_failed_dlrs_carry_a_reason(vonage_peer, receipt_sink, status, error, expected):
    """expired / failed / rejected with err-code map to a normalized reason."""
    vonage_peer.post_dlr(receipt_sink.callback("/cb"), "ABC", status, error_code=error)
    [receipt] = provider(vonage_peer).parse_receipt(
        receipt_request(receipt_sink.url, receipt_sink.requests[0])
    )
    assert (receipt.status, receipt.reason) == expected


@pytest.mark.parametrize(
    "kwargs",
    [{"tamper": True}, {"secret": "another-secret"}, {"timestamp": int(time.time()) - 3600}],
    ids=["tampered", "wrong-secret", "stale"],
)
def test_bad_dlrs_are_refused(vonage_peer, receipt_sink, kwargs):
    """A changed parameter, another secret or an old timestamp fails the check."""
    vonage_peer.post_dlr(receipt_sink.callback("/cb"), "ABC", "failed", **kwargs)
    with pytest.raises(InvalidSignature):
        provider(vonage_peer).parse_receipt(
            receipt_request(receipt_sink.url, receipt_sink.requests[0])
        )


def test_unknown_dlr_status_is_ignored(vonage_peer, receipt_sink):
    """A status outside Vonage's documented set yields nothing."""
    vonage_peer.post_dlr(receipt_sink.callback("/cb"), "ABC", "unknown")
    assert (
        provider(vonage_peer).parse_receipt(
            receipt_request(receipt_sink.url, receipt_sink.requests[0])
        )
        == []
    )


def test_receipts_need_a_signature_secret(vonage_peer, receipt_sink):
    """Without a signature secret nothing can be trusted: every receipt is refused."""
    vonage_peer.post_dlr(receipt_sink.callback("/cb"), "ABC", "delivered")
    with pytest.raises(InvalidSignature):
        provider(vonage_peer, signature_secret=None).parse_receipt(
            receipt_request(receipt_sink.url, receipt_sink.requests[0])
        )


def test_voice_events_verify_and_map(vonage_peer, receipt_sink):
    """Voice events carry a HS256 JWT with the body hash; answered->sent, completed->delivered."""
    p = provider(vonage_peer)
    vonage_peer.behave(accept("ringing", "answered", "completed"))
    sent = p.send(message("call", status_callback=receipt_sink.callback("/cb/voice")))
    vonage_peer.settle()
    parsed = [p.parse_receipt(receipt_request(receipt_sink.url, r)) for r in receipt_sink.requests]
    assert [rs[0].status for rs in parsed] == ["sending", "sent", "delivered"]
    assert {rs[0].provider_message_id for rs in parsed} == {sent.provider_message_id}


def test_unanswered_call_is_undelivered(vonage_peer, receipt_sink):
    """unanswered is undelivered, unreachable_destination."""
    vonage_peer.post_call_event(receipt_sink.callback("/cb"), "call-1", "unanswered")
    [receipt] = provider(vonage_peer).parse_receipt(
        receipt_request(receipt_sink.url, receipt_sink.requests[0])
    )
    assert (receipt.status, receipt.reason) == ("undelivered", "unreachable_destination")


@pytest.mark.parametrize(
    "kwargs", [{"tamper": True}, {"secret": "x" * 32}], ids=["tampered", "wrong-secret"]
)
def test_bad_voice_events_are_refused(vonage_peer, receipt_sink, kwargs):
    """A body that does not match the JWT's hash, or a JWT from another secret, is refused."""
    vonage_peer.post_call_event(receipt_sink.callback("/cb"), "call-1", "failed", **kwargs)
    with pytest.raises(InvalidSignature):
        provider(vonage_peer).parse_receipt(
            receipt_request(receipt_sink.url, receipt_sink.requests[0])
        )


def test_garbage_bearer_token_is_refused(vonage_peer):
    """An Authorization header that is not a JWT is an invalid signature, not a crash."""
    request = ReceiptRequest(
        url="https://a.example/cb",
        method="POST",
        headers={"Authorization": "Bearer nope"},
        body=b"{}",
    )
    with pytest.raises(InvalidSignature):
        provider(vonage_peer).parse_receipt(request)


@pytest.mark.parametrize(
    "body",
    [b"[" * 3000 + b"]" * 3000, b'{"sig": ' + b"9" * 5000 + b"}", b"\xff"],
    ids=["deep", "huge-number", "not-utf8"],
)
def test_unreadable_dlr_bodies_are_refused(vonage_peer, body):
    """Anyone can post to the callback URL: a body that cannot be read whole is a DLR without a
    signature, not a crash."""
    request = ReceiptRequest(url="https://a.example/cb", method="POST", headers={}, body=body)
    with pytest.raises(InvalidSignature):
        provider(vonage_peer).parse_receipt(request)
