"""Fixtures for the pipeline tests: the protocol peers (tests/peers/), providers pointing at them,
and the app on a real socket that the worker hands to providers as ``VERIFY_PUBLIC_URL``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import ApiClient, make_settings
from tests.peers import twilio as tw
from tests.peers import vonage as vn
from tests.peers._server import ACCEPT, Behaviour, fail
from tests.peers.fixtures import gateway_peer, smtp_peer, twilio_peer, vonage_peer
from tests.peers.gateway import GatewayPeer
from verify import jobs
from verify.config import Settings
from verify.runtime import Runtime

__all__ = ["gateway_peer", "smtp_peer", "twilio_peer", "vonage_peer"]

# What the pipeline tests ask of a gateway, in the http provider's protocol.
MODES: dict[str, Behaviour] = {
    "accept": ACCEPT,
    "unavailable": fail(503),
    "rate_limited": fail(429),
    "invalid": fail(400, "invalid_destination"),
}


class Gateways:
    """One GatewayPeer per named ``http`` provider, started on first use."""

    def __init__(self) -> None:
        self.peers: dict[str, GatewayPeer] = {}

    def __getitem__(self, name: str) -> GatewayPeer:
        if name not in self.peers:
            peer = GatewayPeer()
            peer.start()
            self.peers[name] = peer
        return self.peers[name]

    def mode(self, name: str, mode: str) -> None:
        self[name].behave(MODES[mode])

    def calls(self, name: str) -> list[dict]:
        return list(self[name].messages)

    def add(self, api: ApiClient, name: str, priority: int = 1, **extra: object) -> str:
        """Create an ``http`` provider named ``name`` pointing at its peer; returns its sid."""
        peer = self[name]
        r = api.post(
            "/v2/Providers",
            {
                "Type": "http",
                "FriendlyName": name,
                "Priority": priority,
                "Config": json.dumps({"url": f"{peer.url}/send"}),
                "Credentials": json.dumps({"secret": peer.secret}),
                **extra,
            },
        )
        assert r.status_code == 201, r.json
        return str(r.json["sid"])

    def stop(self) -> None:
        for peer in self.peers.values():
            peer.stop()


@pytest.fixture
def settings(backend, tmp_path: Path) -> Settings:
    """The operator allows the loopback network, where the peers listen (the SSRF guard refuses
    it otherwise, at configuration and at send time)."""
    base = make_settings(backend.database_url, backend.redis_url, tmp_path)
    return replace(base, webhook_allow_networks=("127.0.0.0/8",))


@pytest.fixture
def gateways() -> Iterator[Gateways]:
    g = Gateways()
    yield g
    g.stop()


@pytest.fixture
def public_url(live_server: str, runtime: Runtime) -> str:
    """The app on a socket, and the worker's ``VERIFY_PUBLIC_URL`` pointing at it (so providers get
    status-callback and voice URLs there, and the peers can reach them)."""
    jobs.bind(replace(runtime, settings=replace(runtime.settings, public_url=live_server)))
    return live_server


def add_twilio(api: ApiClient, peer: tw.TwilioPeer, name: str = "twilio", **extra: object) -> str:
    r = api.post(
        "/v2/Providers",
        {
            "Type": "twilio",
            "FriendlyName": name,
            "Priority": 1,
            "Config": json.dumps(
                {"account_sid": peer.account_sid, "from": "+15005550006", "base_url": peer.url}
            ),
            "Credentials": json.dumps({"auth_token": peer.auth_token}),
            **extra,
        },
    )
    assert r.status_code == 201, r.json
    return str(r.json["sid"])


def add_vonage(api: ApiClient, peer: vn.VonagePeer, name: str = "vonage", **extra: object) -> str:
    r = api.post(
        "/v2/Providers",
        {
            "Type": "vonage",
            "FriendlyName": name,
            "Priority": 2,
            "Config": json.dumps(
                {
                    "api_key": peer.api_key,
                    "from": "+15005550007",
                    "application_id": peer.application_id,
                    "sms_url": peer.url,
                    "api_url": peer.url,
                }
            ),
            "Credentials": json.dumps(
                {
                    "api_secret": peer.api_secret,
                    "private_key": peer.private_key,
                    "signature_secret": peer.signature_secret,
                }
            ),
            **extra,
        },
    )
    assert r.status_code == 201, r.json
    return str(r.json["sid"])
