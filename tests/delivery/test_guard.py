"""The SSRF guard on provider requests: resolved, checked and pinned at send time."""

from __future__ import annotations

import httpx
import pytest

from tests.delivery.conftest import message
from verify.delivery.providers.base import Outcome
from verify.delivery.providers.guard import BlockedAddress, GuardedTransport
from verify.delivery.providers.webhook import WebhookProvider
from verify.events.ssrf import parse_networks

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="


def resolver(address: str):
    return lambda host, port: [address]


def recorder():
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"message_id": "m1"})

    return seen, httpx.MockTransport(handle)


def test_a_public_name_is_pinned_to_the_address_that_was_checked():
    """The request goes to the checked IP, with the name kept in Host and TLS SNI."""
    seen, inner = recorder()
    guarded = GuardedTransport(inner, resolver=resolver("93.184.216.34"))
    with httpx.Client(transport=guarded) as client:
        client.post("https://gateway.example:8443/send?x=1", content=b"{}")
    [request] = seen
    assert (request.url.host, request.url.port, request.url.path) == (
        "93.184.216.34",
        8443,
        "/send",
    )
    assert request.headers["host"] == "gateway.example:8443"
    assert request.extensions["sni_hostname"] == "gateway.example"


def test_a_verdict_is_kept_for_half_a_minute_then_judged_again():
    """Within VERDICT_TTL a URL is neither resolved nor judged again; after it, a name whose DNS
    answer changed is sent to the new address, or refused when the new one is private."""
    answers = iter(["93.184.216.34", "151.101.1.69", "10.0.0.7", "10.0.0.7"])
    asked: list[str] = []

    def dns(host: str, port: int) -> list[str]:
        asked.append(host)
        return [next(answers)]

    now = [100.0]
    seen, inner = recorder()
    guarded = GuardedTransport(inner, resolver=dns, clock=lambda: now[0])
    with httpx.Client(transport=guarded) as client:
        for _ in range(3):
            client.post("https://gateway.example/send", content=b"{}")
        now[0] += GuardedTransport.VERDICT_TTL
        client.post("https://gateway.example/send", content=b"{}")
        now[0] += GuardedTransport.VERDICT_TTL
        with pytest.raises(BlockedAddress):
            client.post("https://gateway.example/send", content=b"{}")
        with pytest.raises(BlockedAddress):  # a refusal is not kept: asked again, refused again
            client.post("https://gateway.example/send", content=b"{}")
    assert [r.url.host for r in seen] == ["93.184.216.34"] * 3 + ["151.101.1.69"]
    assert {r.headers["host"] for r in seen} == {"gateway.example"}
    assert len(asked) == 4


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.7", "169.254.169.254", "::1"])
def test_a_name_resolving_to_a_private_address_is_refused(address):
    """DNS pointing a public-looking name at an internal address is refused before connecting."""
    seen, inner = recorder()
    guarded = GuardedTransport(inner, resolver=resolver(address))
    with httpx.Client(transport=guarded) as client, pytest.raises(BlockedAddress):
        client.post("https://gateway.example/send", content=b"{}")
    assert seen == []


def test_the_operator_allowlist_lets_a_private_gateway_through():
    seen, inner = recorder()
    guarded = GuardedTransport(inner, parse_networks(["10.0.0.0/8"]), resolver("10.0.0.7"))
    with httpx.Client(transport=guarded) as client:
        assert client.post("http://gw.internal/send", content=b"{}").status_code == 200
    assert seen[0].url.host == "10.0.0.7"


def test_a_refused_address_is_a_misconfigured_provider_not_a_send():
    """The adapter classifies a refusal as failover / provider_misconfigured; nothing was sent."""
    seen, inner = recorder()
    provider = WebhookProvider(
        url="https://gateway.example/send",
        secret=SECRET,
        transport=GuardedTransport(inner, resolver=resolver("192.168.1.10")),
    )
    result = provider.send(message())
    assert (result.outcome, result.reason, result.raw_code) == (
        Outcome.FAILOVER,
        "provider_misconfigured",
        "blocked_address",
    )
    assert seen == []
