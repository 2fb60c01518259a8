"""Fixtures for the delivery tests: the protocol peers, and receipts as the web layer would pass them."""

from __future__ import annotations

from tests.peers._server import Recorded
from tests.peers.fixtures import gateway_peer, receipt_sink, smtp_peer, twilio_peer, vonage_peer
from verify.delivery.providers.base import OutboundMessage, ReceiptRequest
from verify.delivery.templates import render

__all__ = ["gateway_peer", "receipt_sink", "smtp_peer", "twilio_peer", "vonage_peer"]

TO = "+14155550123"


def receipt_request(base_url: str, recorded: Recorded) -> ReceiptRequest:
    """What our receipt endpoint hands to ``parse_receipt`` for a request the sink recorded."""
    query = "&".join(f"{k}={v}" for k, v in recorded.query.items())
    url = f"{base_url}{recorded.path}" + (f"?{query}" if query else "")
    return ReceiptRequest(
        url=url,
        method=recorded.method,
        headers=recorded.headers,
        body=recorded.body,
        form=recorded.form,
        query=recorded.query,
    )


def message(channel: str = "sms", locale: str = "en", **overrides: object) -> OutboundMessage:
    fields: dict[str, object] = {
        "friendly_name": "Acme Login",
        "code": "123456",
        "do_not_share_warning": False,
        "dtmf_required": False,
        "to": "someone@example.com" if channel == "email" else TO,
        "verification_sid": "VE" + "1" * 32,
        "attempt_sid": "VL" + "2" * 32,
        "status_callback": None,
    }
    fields.update(overrides)
    return render(channel, locale, **fields)  # type: ignore[arg-type]
