"""The SSRF guard: nothing reaches an address on the deny list — not by IP, not by a name that
resolves to one, not by a redirect — unless the operator's allowlist says so."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from tests.conftest import ApiClient
from tests.webhooks.conftest import Receiver, start_receiver
from verify import jobs
from verify.events import ssrf
from verify.events.sender import WebhookSender
from verify.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from verify.runtime import Runtime

Pump = Callable[[], None]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address to refuse, not to bind)
        ("::", "unspecified"),
        ("240.0.0.1", "private"),
        ("192.0.2.10", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("64:ff9b::a00:1", "private (inside an IPv6 address)"),
        ("2002:a00:1::", "private (inside an IPv6 address)"),
        ("fec0::1", "site-local"),
    ],
)
def test_denied_addresses(address: str, reason: str) -> None:
    """Private, loopback, link-local, CGNAT, multicast, reserved and metadata addresses, IPv4 and
    IPv6 (IPv4-mapped and NAT64/6to4 forms judged by the IPv4 inside), are refused."""
    assert ssrf.refusal(address) == reason


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert ssrf.refusal(address) is None


def test_the_allowlist_admits_only_its_networks() -> None:
    allow = ssrf.parse_networks(["10.0.0.0/8", "::1/128"])
    assert ssrf.refusal("10.9.9.9", allow) is None
    assert ssrf.refusal("::ffff:10.9.9.9", allow) is None
    assert ssrf.refusal("::1", allow) is None
    assert ssrf.refusal("192.168.0.1", allow) == "private"
    assert ssrf.refusal("127.0.0.1", allow) == "loopback"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "http or https"),
        ("https://user:pw@example.com/", "credentials"),
        ("https:///path", "no host"),
        ("http://[::1]:8080/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://exa mple.com/", "spaces"),
    ],
)
def test_malformed_or_literal_denied_urls(url: str, message: str) -> None:
    with pytest.raises(ssrf.UnsafeURL, match=message):
        ssrf.check_form(url)


def fake_dns(table: dict[str, list[str]]) -> ssrf.Resolver:
    def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return resolve


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    """Judged by where the name leads; one private address among public ones is enough."""
    dns = fake_dns({"hooks.example.test": ["93.184.215.14", "10.0.0.5"]})
    with pytest.raises(ssrf.UnsafeURL, match="resolves to a private address"):
        ssrf.resolve_target("https://hooks.example.test/x", resolver=dns)


def test_the_target_pins_the_checked_address_and_keeps_the_name() -> None:
    dns = fake_dns({"hooks.example.test": ["93.184.215.14"]})
    target = ssrf.resolve_target("https://hooks.example.test:8443/a?b=1", resolver=dns)
    assert target.pinned_url == "https://93.184.215.14:8443/a?b=1"
    assert target.host_header == "hooks.example.test:8443"
    assert target.host == "hooks.example.test"


@pytest.mark.parametrize("host", ["localhost", "2130706433", "0x7f.1", "127.1"])
def test_real_resolution_of_loopback_spellings_is_refused(host: str) -> None:
    """The system resolver's answer is what is judged: odd spellings of 127.0.0.1 do not slip by."""
    with pytest.raises(ssrf.UnsafeURL, match="loopback"):
        ssrf.resolve_target(f"http://{host}:8080/")


@pytest.fixture
def unlisted() -> Iterator[Receiver]:
    """A receiver on 127.0.0.2: loopback, but outside the tests' allowlist (127.0.0.1/32)."""
    state, stop = start_receiver("127.0.0.2")
    yield state
    stop()


def test_nothing_reaches_a_refused_address_at_delivery_time(
    api: ApiClient, receiver: Receiver, unlisted: Receiver, pump: Pump, runtime: Runtime
) -> None:
    """A subscription made while its name was fine, now leading to a refused address: the try is
    logged as refused and the receiver sees nothing."""
    r = api.post(
        f"{api.base}/Webhooks",
        {"FriendlyName": "x", "EventTypes": "*", "WebhookUrl": receiver.url},
    )
    assert r.status_code == 201
    with runtime.sessions() as session, session.begin():
        session.get(WebhookEndpoint, r.get_json()["sid"]).url = unlisted.url  # type: ignore[union-attr]
    api.start("+14155550131")
    pump()
    assert unlisted.requests == []
    with runtime.sessions() as session:
        errors = {a.error for a in session.scalars(select(WebhookAttempt))}
    assert errors == {"refused: leads to a loopback address"}


def test_a_redirect_to_a_refused_address_is_not_followed(
    api: ApiClient, receiver: Receiver, unlisted: Receiver, pump: Pump, runtime: Runtime
) -> None:
    """The allowlisted receiver answers 302 to an address outside the allowlist: not followed, the
    try counts as failed, and the other address gets nothing."""
    receiver.answer = lambda _: 302
    receiver.extra_headers = {"Location": unlisted.url}
    api.post(
        f"{api.base}/Webhooks",
        {"FriendlyName": "x", "EventTypes": "verification.pending", "WebhookUrl": receiver.url},
    )
    api.start("+14155550132")
    pump()
    assert len(receiver.requests) == 1
    assert unlisted.requests == []
    with runtime.sessions() as session:
        (delivery,) = session.scalars(select(WebhookDelivery)).all()
    assert delivery.status == "retrying"
    assert (delivery.last_status_code, delivery.last_error) == (302, "redirect not followed")


def test_a_name_that_resolves_to_a_refused_address_is_refused_at_delivery(
    runtime: Runtime, receiver: Receiver, api: ApiClient
) -> None:
    """The sender resolves the name itself and judges the answer: 127.0.0.2 is outside the
    allowlist, so nothing is sent although a server listens on the port."""
    port = receiver.url.rsplit(":", 1)[1].split("/")[0]
    with runtime.sessions() as session:
        sender = WebhookSender(
            session,
            clock=runtime.clock,
            sealer=runtime.sealer,
            redis_client=runtime.redis,
            limits=runtime.settings.limits,
            allow=ssrf.parse_networks(runtime.settings.webhook_allow_networks),
            resolver=fake_dns({"hooks.internal": ["127.0.0.2"]}),
        )
        answer = sender._post(  # the one HTTP step, on its own
            f"http://hooks.internal:{port}/hooks", ["whsec_" + "A" * 44], "standard", b"{}", "WD1"
        )
    assert answer.error == "refused: host 'hooks.internal' resolves to a loopback address"
    assert receiver.requests == []


def test_a_private_webhook_url_is_refused_at_subscription(api: ApiClient) -> None:
    """Validated when given too: 400 / 60200 naming WebhookUrl."""
    for url in ("http://127.0.0.2:9/x", "http://10.0.0.1/x", "file:///etc/passwd"):
        r = api.post(
            f"{api.base}/Webhooks", {"FriendlyName": "x", "EventTypes": "*", "WebhookUrl": url}
        )
        assert r.status_code == 400
        assert (r.get_json()["code"], r.get_json()["parameter"]) == (60200, "WebhookUrl")


def test_a_private_status_callback_is_refused(api: ApiClient) -> None:
    r = api.start("+14155550133", StatusCallback="http://169.254.169.254/latest")
    assert r.status_code == 400
    assert (r.get_json()["code"], r.get_json()["parameter"]) == (60200, "StatusCallback")


def test_relay_skips_nothing_it_should_not(api: ApiClient, pump: Pump) -> None:
    """Events with no subscriber are still relayed (marked published) and make no deliveries."""
    api.start("+14155550134")
    pump()
    assert jobs.relay() == {"events": 0, "created": 0, "enqueued": 0}
