"""Pytest fixtures for the protocol peers. Use them from a conftest with
``from tests.peers.fixtures import twilio_peer, vonage_peer, gateway_peer, smtp_peer, receipt_sink``.
Each peer is started for one test and stopped after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers._server import HttpPeer, Recorded, Reply
from tests.peers.gateway import GatewayPeer
from tests.peers.smtp import SmtpPeer
from tests.peers.twilio import TwilioPeer
from tests.peers.vonage import VonagePeer


class ReceiptSink(HttpPeer):
    """Stands in for our receipt endpoint: records what the peers post and answers 204."""

    def handle(self, request: Recorded) -> Reply:
        return Reply(204, b"")

    def callback(self, path: str = "/receipts") -> str:
        return f"{self.url}{path}"


@pytest.fixture
def twilio_peer() -> Iterator[TwilioPeer]:
    peer = TwilioPeer()
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture
def vonage_peer() -> Iterator[VonagePeer]:
    peer = VonagePeer()
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture
def gateway_peer() -> Iterator[GatewayPeer]:
    peer = GatewayPeer()
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture
def receipt_sink() -> Iterator[ReceiptSink]:
    sink = ReceiptSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_peer() -> Iterator[SmtpPeer]:
    """A plain SMTP server (no TLS, no AUTH); make your own SmtpPeer for the other modes."""
    peer = SmtpPeer()
    peer.start()
    yield peer
    peer.stop()
