"""The smtp adapter against a local aiosmtpd server: plain, STARTTLS and implicit TLS, AUTH, refusals."""

import httpx
import pytest

from tests.delivery.conftest import message
from tests.peers.smtp import PASSWORD, USERNAME, SmtpPeer
from tests.servers import free_port
from verify.delivery.providers import build_provider
from verify.delivery.providers.base import InvalidSignature, Outcome, ReceiptRequest
from verify.delivery.providers.guard import GuardedTransport
from verify.delivery.providers.smtp import SmtpProvider
from verify.events.ssrf import parse_networks

TO = "someone@example.com"


def provider(peer, **config):
    settings = {
        "host": peer.host,
        "port": peer.port,
        "security": "none",
        "from_address": "codes@acme.example",
        "from_name": "Acme Login",
        **config,
    }
    creds = {k: settings.pop(k) for k in ("username", "password") if k in settings}
    return build_provider("smtp", settings, creds, timeout=2.0)


def _lines(text):
    return text.replace("\r\n", "\n").rstrip("\n")


@pytest.fixture
def tls_peer(request):
    peer = SmtpPeer(request.param, auth=True)
    peer.start()
    yield peer
    peer.stop()


def test_email_is_multipart_text_and_html(smtp_peer):
    """One message with From name, To, Subject, a text part and an HTML part; Message-ID returned."""
    m = message("email", "de", do_not_share_warning=True)
    result = provider(smtp_peer).send(m)
    assert result.outcome is Outcome.ACCEPTED
    [received] = smtp_peer.messages
    assert received.recipients == [TO]
    email = received.message
    assert email["From"] == "Acme Login <codes@acme.example>"
    assert email["To"] == TO
    assert email["Subject"] == m.subject
    assert email["Content-Language"] == "de"
    assert email.get_content_type() == "multipart/alternative"
    assert _lines(email.get_body(("plain",)).get_content()) == _lines(m.text)
    assert _lines(email.get_body(("html",)).get_content()) == _lines(m.html)
    assert email["Message-ID"].strip("<>") == result.provider_message_id
    assert m.attempt_sid in result.provider_message_id


@pytest.mark.parametrize("tls_peer", ["starttls", "tls"], indirect=True)
def test_tls_and_auth(tls_peer):
    """STARTTLS and implicit TLS with a certificate the client trusts, then AUTH."""
    p = SmtpProvider(
        host="localhost",
        port=tls_peer.port,
        from_address="codes@acme.example",
        security=tls_peer.security,
        username=USERNAME,
        password=PASSWORD,
        ssl_context=tls_peer.client_context(),
    )
    assert p.send(message("email")).outcome is Outcome.ACCEPTED
    assert len(tls_peer.messages) == 1


@pytest.mark.parametrize("tls_peer", ["starttls"], indirect=True)
def test_wrong_password_is_an_auth_failure(tls_peer):
    """535 on AUTH: fail over with provider_auth_failed."""
    p = SmtpProvider(
        host="localhost",
        port=tls_peer.port,
        from_address="codes@acme.example",
        username=USERNAME,
        password="wrong",
        ssl_context=tls_peer.client_context(),
    )
    result = p.send(message("email"))
    assert (result.outcome, result.reason, result.raw_code) == (
        Outcome.FAILOVER,
        "provider_auth_failed",
        "535",
    )
    assert tls_peer.messages == []


@pytest.mark.parametrize("tls_peer", ["starttls"], indirect=True)
def test_untrusted_certificate_is_a_configuration_problem(tls_peer):
    """A certificate the client does not trust is never ignored: fail over, misconfigured."""
    result = provider(tls_peer, host="localhost", security="starttls").send(message("email"))
    assert (result.outcome, result.reason) == (Outcome.FAILOVER, "provider_misconfigured")


@pytest.mark.parametrize(
    ("reply", "outcome", "reason"),
    [
        ("550 5.1.1 No such user", Outcome.PERMANENT, "invalid_destination"),
        ("450 4.2.1 Mailbox busy", Outcome.RETRY, "unreachable_destination"),
    ],
)
def test_refused_recipient_is_classified(smtp_peer, reply, outcome, reason):
    """5xx on RCPT is permanent for the address; 4xx is worth another try."""
    smtp_peer.refuse[TO] = reply
    result = provider(smtp_peer).send(message("email"))
    assert (result.outcome, result.reason, result.raw_code) == (outcome, reason, reply[:3])


def test_slow_server_times_out(smtp_peer):
    """A server that does not answer within the timeout: retry, reason timeout."""
    smtp_peer.delay = 1.5
    result = provider(smtp_peer, timeout=0.5).send(message("email"))
    assert (result.outcome, result.reason) == (Outcome.RETRY, "timeout")


def test_server_down_fails_over():
    """Connection refused: fail over, provider_unavailable."""
    p = build_provider(
        "smtp",
        {
            "host": "127.0.0.1",
            "port": free_port(),
            "security": "none",
            "from_address": "a@b.example",
        },
        {},
        timeout=1.0,
    )
    result = p.send(message("email"))
    assert (result.outcome, result.reason) == (Outcome.FAILOVER, "provider_unavailable")


def test_only_email(smtp_peer):
    """SMS through SMTP is refused without a connection."""
    result = provider(smtp_peer).send(message("sms"))
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, "unsupported_channel")
    assert smtp_peer.messages == []


def test_invalid_address_is_permanent(smtp_peer):
    """An address the email package cannot write is invalid_destination."""
    result = provider(smtp_peer).send(message("email", to="not an address@@"))
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, "invalid_destination")


def test_smtp_posts_no_receipts(smtp_peer):
    """Anything claiming to be an SMTP receipt is refused."""
    with pytest.raises(InvalidSignature):
        provider(smtp_peer).parse_receipt(
            ReceiptRequest(url="https://a/cb", method="POST", headers={}, body=b"")
        )


def guarded(address: str, allow: tuple[str, ...] = ()) -> GuardedTransport:
    """The process's guard, with a resolver that answers ``address`` for every name."""
    return GuardedTransport(
        httpx.HTTPTransport(), parse_networks(allow), lambda host, port: [address]
    )


def test_the_server_name_is_resolved_judged_and_pinned(smtp_peer):
    """The name is resolved by the guard and the connection made to the address it judged (here a
    name no DNS knows, answered with the peer's address, which the operator allows)."""
    config = {"host": "mail.acme.example", "port": smtp_peer.port, "security": "none"}
    settings = {"from_address": "codes@acme.example", **config}
    transport = guarded(smtp_peer.host, allow=("127.0.0.0/8",))
    p = build_provider("smtp", settings, {}, timeout=2.0, transport=transport)
    assert p.send(message("email")).outcome is Outcome.ACCEPTED
    assert len(smtp_peer.messages) == 1


def test_a_server_name_leading_inside_is_refused(smtp_peer):
    """Without the operator's allowlist the same name, leading to a loopback address, is never
    connected to: fail over, misconfigured."""
    config = {"host": "mail.acme.example", "port": smtp_peer.port, "security": "none"}
    settings = {"from_address": "codes@acme.example", **config}
    p = build_provider("smtp", settings, {}, timeout=2.0, transport=guarded(smtp_peer.host))
    result = p.send(message("email"))
    assert (result.outcome, result.reason, result.raw_code) == (
        Outcome.FAILOVER,
        "provider_misconfigured",
        "blocked_address",
    )
    assert smtp_peer.messages == []
