"""The twilio adapter against a local peer speaking Twilio's Messages and Calls APIs."""

from xml.etree import ElementTree

import pytest

from tests.delivery.conftest import TO, message, receipt_request
from tests.peers._server import accept, fail, timeout
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.servers import free_port
from verify.delivery.providers import build_provider
from verify.delivery.providers.base import InvalidSignature, Outcome, ReceiptRequest
from verify.delivery.providers.twilio import TwilioProvider, twilio_signature

FROM = "+15005550006"


def twiml(document: str) -> ElementTree.Element:
    return ElementTree.fromstring(document)  # noqa: S314 - our own TwiML, in a test


def provider(peer, **config):
    settings = {"account_sid": ACCOUNT_SID, "from": FROM, "base_url": peer.url, **config}
    token = settings.pop("auth_token", AUTH_TOKEN)
    return build_provider("twilio", settings, {"auth_token": token}, timeout=1.0)


def test_sms_is_accepted_with_the_fields_twilio_expects(twilio_peer):
    """POST Messages.json with To, From, Body, StatusCallback under Basic auth; the sid comes back."""
    result = provider(twilio_peer).send(message(status_callback="https://verify.example/cb/twilio"))
    assert result.outcome is Outcome.ACCEPTED
    assert result.provider_message_id.startswith("SM")
    [sent] = twilio_peer.sends("Messages")
    assert sent.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.form == {
        "To": TO,
        "From": FROM,
        "Body": "Your Acme Login verification code is: 123456",
        "StatusCallback": "https://verify.example/cb/twilio",
    }


def test_messaging_service_replaces_from(twilio_peer):
    """With a MessagingServiceSid the sender pool is named instead of a From number."""
    service = "MG" + "a" * 32
    provider(twilio_peer, messaging_service_sid=service).send(message())
    [sent] = twilio_peer.sends()
    assert sent.form["MessagingServiceSid"] == service
    assert "From" not in sent.form


def test_whatsapp_goes_through_messages_with_prefixed_addresses(twilio_peer):
    """WhatsApp is the Messages API with whatsapp: on both addresses."""
    result = provider(twilio_peer, whatsapp_from="+14155238886").send(message("whatsapp"))
    assert result.outcome is Outcome.ACCEPTED
    [sent] = twilio_peer.sends("Messages")
    assert sent.form["To"] == f"whatsapp:{TO}"
    assert sent.form["From"] == "whatsapp:+14155238886"
    assert "*123456*" in sent.form["Body"]


TEMPLATE = "HX" + "a" * 32
TEMPLATE_ES = "HX" + "e" * 32


def test_whatsapp_with_an_authentication_template_sends_the_code_as_its_variable(twilio_peer):
    """With a Content API template the words are WhatsApp's: ContentSid and the code as {{1}}, no
    Body (a free-form Body outside the 24-hour window is refused with 63016)."""
    adapter = provider(twilio_peer, whatsapp_from="+14155238886", whatsapp_content_sid=TEMPLATE)
    result = adapter.send(message("whatsapp", status_callback="https://verify.example/cb"))
    assert result.outcome is Outcome.ACCEPTED
    [sent] = twilio_peer.sends("Messages")
    assert sent.form == {
        "To": f"whatsapp:{TO}",
        "From": "whatsapp:+14155238886",
        "ContentSid": TEMPLATE,
        "ContentVariables": '{"1": "123456"}',
        "StatusCallback": "https://verify.example/cb",
    }


@pytest.mark.parametrize(
    ("templates", "locale", "expected"),
    [
        (
            {"whatsapp_content_sid": TEMPLATE, "whatsapp_content_sids": {"es": TEMPLATE_ES}},
            "es",
            TEMPLATE_ES,
        ),
        (
            {"whatsapp_content_sid": TEMPLATE, "whatsapp_content_sids": {"es": TEMPLATE_ES}},
            "es-MX",
            TEMPLATE_ES,
        ),
        (
            {"whatsapp_content_sid": TEMPLATE, "whatsapp_content_sids": {"es": TEMPLATE_ES}},
            "fr",
            TEMPLATE,
        ),
        ({"whatsapp_content_sids": {"es": TEMPLATE_ES}}, "fr", None),
    ],
)
def test_whatsapp_template_follows_the_message_language(twilio_peer, templates, locale, expected):
    """The template approved in the message's language, else the default one, else a plain Body."""
    provider(twilio_peer, whatsapp_from="+14155238886", **templates).send(
        message("whatsapp", locale=locale)
    )
    [sent] = twilio_peer.sends("Messages")
    assert sent.form.get("ContentSid") == expected
    assert ("Body" in sent.form) is (expected is None)


def test_call_sends_inline_twiml_reading_each_digit_with_pauses(twilio_peer):
    """Calls.json with Twiml: one <Say> per segment in the locale's language, a <Pause> after each."""
    result = provider(twilio_peer, voice="Polly.Lucia").send(message("call", "es"))
    assert result.outcome is Outcome.ACCEPTED
    assert result.provider_message_id.startswith("CA")
    [sent] = twilio_peer.sends("Calls")
    assert sent.form["From"] == FROM
    root = twiml(sent.form["Twiml"])
    says = root.findall("Say")
    assert [s.text for s in says][1:7] == list("123456")
    assert [s.text for s in says][8:14] == list("123456")
    assert {s.get("language") for s in says} == {"es-ES"}
    assert {s.get("voice") for s in says} == {"Polly.Lucia"}
    assert len(root.findall("Pause")) == len(says)


def test_dtmf_call_gathers_a_key_before_the_code(twilio_peer):
    """DTMF-first: the prompt inside a one-digit <Gather> posting to the continue URL; silence hangs up."""
    p = provider(twilio_peer)
    m = message("call", dtmf_required=True, voice_continue_url="https://verify.example/voice/VL1")
    assert p.send(m).outcome is Outcome.ACCEPTED
    root = twiml(twilio_peer.sends("Calls")[0].form["Twiml"])
    gather = root.find("Gather")
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == "https://verify.example/voice/VL1"
    assert "Press any key" in gather.find("Say").text
    assert [child.tag for child in root] == ["Gather", "Hangup"]
    assert "123456" not in "".join(root.itertext()).replace(" ", "")
    follow_up = twiml(p.continue_twiml(m))
    assert [s.text for s in follow_up.findall("Say")][1:7] == list("123456")


def test_dtmf_call_without_a_continue_url_is_not_sent(twilio_peer):
    """Without somewhere to fetch the rest, a DTMF-first call cannot be made: fail over, send nothing."""
    result = provider(twilio_peer).send(message("call", dtmf_required=True))
    assert (result.outcome, result.reason) == (Outcome.FAILOVER, "provider_misconfigured")
    assert twilio_peer.sends() == []


def test_twiml_escapes_the_friendly_name(twilio_peer):
    """A name with markup stays text inside <Say>."""
    provider(twilio_peer).send(message("call", friendly_name="</Say><Play>http://x</Play>"))
    root = twiml(twilio_peer.sends()[0].form["Twiml"])
    assert root.find("Play") is None


def test_email_is_not_a_twilio_channel(twilio_peer):
    """Email through twilio is refused without a request."""
    result = provider(twilio_peer).send(message("email"))
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, "unsupported_channel")
    assert twilio_peer.requests == []


@pytest.mark.parametrize(
    ("status", "code", "outcome", "reason"),
    [
        (400, 21211, Outcome.PERMANENT, "invalid_destination"),
        (400, 21614, Outcome.PERMANENT, "unreachable_destination"),
        (400, 21610, Outcome.PERMANENT, "recipient_opted_out"),
        (400, 21408, Outcome.FAILOVER, "blocked_by_provider"),
        (400, 21606, Outcome.FAILOVER, "provider_misconfigured"),
        (401, 20003, Outcome.FAILOVER, "provider_auth_failed"),
        (429, 20429, Outcome.RETRY, "provider_rate_limited"),
        (500, None, Outcome.FAILOVER, "provider_unavailable"),
        (503, None, Outcome.FAILOVER, "provider_unavailable"),
        (400, 12345, Outcome.FAILOVER, "rejected"),
    ],
)
def test_twilio_errors_are_classified(twilio_peer, status, code, outcome, reason):
    """Twilio's HTTP status and error code map to an outcome and a normalized reason."""
    twilio_peer.behave(fail(status, code), to=TO)
    result = provider(twilio_peer).send(message())
    assert (result.outcome, result.reason) == (outcome, reason)
    assert result.raw_code == str(code or status)


def test_rate_limit_passes_retry_after_on(twilio_peer):
    """A 429 with Retry-After tells the pipeline how long to wait."""
    twilio_peer.behave(fail(429, 20429, retry_after="7"))
    result = provider(twilio_peer).send(message())
    assert result.retry_after == 7.0


def test_wrong_auth_token_is_an_auth_failure(twilio_peer):
    """The peer checks Basic auth: a wrong token is 20003 and fails over."""
    result = provider(twilio_peer, auth_token="wrong").send(message())
    assert (result.outcome, result.reason, result.raw_code) == (
        Outcome.FAILOVER,
        "provider_auth_failed",
        "20003",
    )


def test_a_slow_provider_times_out_and_is_retried(twilio_peer):
    """No answer within the adapter's timeout: retry later, with reason timeout."""
    twilio_peer.behave(timeout(3.0))
    result = provider(twilio_peer, timeout=0.3).send(message())
    assert (result.outcome, result.reason) == (Outcome.RETRY, "timeout")


def test_a_provider_that_is_down_fails_over():
    """Connection refused: nothing was sent, the next provider can take it now."""
    p = build_provider(
        "twilio",
        {"account_sid": ACCOUNT_SID, "from": FROM, "base_url": f"http://127.0.0.1:{free_port()}"},
        {"auth_token": AUTH_TOKEN},
        timeout=1.0,
    )
    result = p.send(message())
    assert (result.outcome, result.reason) == (Outcome.FAILOVER, "provider_unavailable")


# -- receipts ---------------------------------------------------------------------------------------


def _receipts(twilio_peer, receipt_sink, behaviour, channel="sms"):
    """Send through the peer, let it post its callbacks to the sink, parse what arrived."""
    p = provider(twilio_peer)
    twilio_peer.behave(behaviour)
    sent = p.send(message(channel, status_callback=receipt_sink.callback("/v2/cb/twilio?p=1")))
    twilio_peer.settle()
    parsed = [p.parse_receipt(receipt_request(receipt_sink.url, r)) for r in receipt_sink.requests]
    return sent, parsed


def test_delivery_receipts_verify_and_map(twilio_peer, receipt_sink):
    """The peer's signed callbacks verify (URL with query) and map to our statuses."""
    sent, parsed = _receipts(twilio_peer, receipt_sink, accept("queued", "sent", "delivered"))
    assert [[(r.provider_message_id, r.status) for r in rs] for rs in parsed] == [
        [(sent.provider_message_id, "queued")],
        [(sent.provider_message_id, "sent")],
        [(sent.provider_message_id, "delivered")],
    ]


def test_undelivered_receipt_carries_a_normalized_reason(twilio_peer, receipt_sink):
    """ErrorCode 30003 on undelivered is unreachable_destination, raw code kept."""
    _, parsed = _receipts(twilio_peer, receipt_sink, accept("undelivered", error_code="30003"))
    [[receipt]] = parsed
    assert (receipt.status, receipt.reason, receipt.raw_code) == (
        "undelivered",
        "unreachable_destination",
        "30003",
    )


def test_call_receipts_map_call_statuses(twilio_peer, receipt_sink):
    """completed is delivered; busy is undelivered and unreachable."""
    _, parsed = _receipts(twilio_peer, receipt_sink, accept("ringing", "completed"), "call")
    assert [rs[0].status for rs in parsed] == ["sending", "delivered"]
    receipt_sink.requests.clear()
    _, parsed = _receipts(twilio_peer, receipt_sink, accept("busy"), "call")
    assert [(rs[0].status, rs[0].reason) for rs in parsed] == [
        ("undelivered", "unreachable_destination")
    ]


def test_tampered_receipt_is_refused(twilio_peer, receipt_sink):
    """A parameter changed after signing fails the check."""
    url = receipt_sink.callback("/cb")
    twilio_peer.post_receipt(url, "SM" + "1" * 32, "failed", tamper=True)
    with pytest.raises(InvalidSignature):
        provider(twilio_peer).parse_receipt(
            receipt_request(receipt_sink.url, receipt_sink.requests[0])
        )


def test_receipt_signed_with_another_token_is_refused(twilio_peer, receipt_sink):
    """Only our auth token's signature is accepted."""
    twilio_peer.post_receipt(
        receipt_sink.callback("/cb"), "SM" + "1" * 32, "delivered", token="other"
    )
    with pytest.raises(InvalidSignature):
        provider(twilio_peer).parse_receipt(
            receipt_request(receipt_sink.url, receipt_sink.requests[0])
        )


def test_receipt_for_another_url_or_without_signature_is_refused(twilio_peer):
    """The signature covers the URL; a missing header is refused outright."""
    form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    p = provider(twilio_peer)
    signed = twilio_signature(AUTH_TOKEN, "https://a.example/cb", form)
    for url, headers in [
        ("https://b.example/cb", {"X-Twilio-Signature": signed}),
        ("https://a.example/cb", {}),
        ("http://[x/cb", {"X-Twilio-Signature": signed}),  # a Host header no URL can hold
    ]:
        with pytest.raises(InvalidSignature):
            p.parse_receipt(
                ReceiptRequest(url=url, method="POST", headers=headers, body=b"", form=form)
            )


def test_receipt_signature_survives_an_explicit_default_port(twilio_peer):
    """Twilio signs https://host/path; a proxy may hand us https://host:443/path."""
    form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    signed = twilio_signature(AUTH_TOKEN, "https://a.example/cb", form)
    request = ReceiptRequest(
        url="https://a.example:443/cb",
        method="POST",
        headers={"x-twilio-signature": signed},
        body=b"",
        form=form,
    )
    assert [r.status for r in provider(twilio_peer).parse_receipt(request)] == ["delivered"]


def test_unknown_status_is_ignored(twilio_peer):
    """A status we do not track yields no receipt (and no error)."""
    form = {"MessageSid": "SM1", "MessageStatus": "receiving"}
    signed = twilio_signature(AUTH_TOKEN, "https://a.example/cb", form)
    request = ReceiptRequest(
        url="https://a.example/cb",
        method="POST",
        headers={"X-Twilio-Signature": signed},
        body=b"",
        form=form,
    )
    assert provider(twilio_peer).parse_receipt(request) == []


def test_direct_construction_matches_the_registry(twilio_peer):
    """build_provider hands the config through to the adapter class."""
    assert isinstance(provider(twilio_peer), TwilioProvider)


def test_a_message_is_looked_up_as_its_receipt_would_say(twilio_peer):
    """GET Messages/{sid}.json or Calls/{sid}.json: the status mapped as a callback's would be."""
    adapter = provider(twilio_peer)
    twilio_peer.behave(accept("sent", "undelivered", error_code="30005", lost=True))
    sent = adapter.send(message())
    receipt = adapter.fetch_receipt(sent.provider_message_id, "sms")
    assert (receipt.provider_message_id, receipt.status, receipt.reason, receipt.raw_code) == (
        sent.provider_message_id,
        "undelivered",
        "invalid_destination",
        "30005",
    )
    twilio_peer.behave(accept("busy", lost=True))
    call = adapter.send(message("call"))
    receipt = adapter.fetch_receipt(call.provider_message_id, "call")
    assert (receipt.status, receipt.reason) == ("undelivered", "unreachable_destination")
    [fetched, _] = [r for r in twilio_peer.requests if r.method == "GET"]
    assert fetched.path.endswith(f"/Messages/{sent.provider_message_id}.json")


def test_a_lookup_that_cannot_say_is_none(twilio_peer):
    """An unknown sid (404), a status we do not track, or no answer at all: nothing is learnt."""
    adapter = provider(twilio_peer)
    assert adapter.fetch_receipt("SM" + "0" * 32, "sms") is None
    twilio_peer.behave(accept("receiving", lost=True))
    sent = adapter.send(message())
    assert adapter.fetch_receipt(sent.provider_message_id, "sms") is None
    unreachable = provider(twilio_peer, base_url=f"http://127.0.0.1:{free_port()}")
    assert unreachable.fetch_receipt(sent.provider_message_id, "sms") is None
