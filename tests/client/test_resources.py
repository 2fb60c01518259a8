"""What the client sends for each method and how it reads the answers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest

from tests.client.conftest import BASE, Recorder
from verify.client import AsyncVerifyClient, Service, Verification, VerificationCheck

VERIFICATION = {
    "sid": "VE1",
    "service_sid": "VA1",
    "account_sid": "AC1",
    "to": "+14155550123",
    "channel": "sms",
    "status": "pending",
    "valid": False,
    "send_code_attempts": [
        {"attempt_sid": "VL1", "channel": "sms", "time": "2025-01-02T03:04:05Z", "status": "sent"}
    ],
    "date_created": "2025-01-02T03:04:05Z",
    "date_updated": "2025-01-02T03:04:05Z",
    "expires_at": "2025-01-02T03:14:05Z",
    "check_attempts": 0,
    "lookup": {"carrier": None},
    "something_new": {"the": "future"},
}


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def test_start_sends_twilio_parameters_and_parses_the_verification() -> None:
    recorder = Recorder(httpx.Response(201, json=VERIFICATION))
    v = recorder.client().verifications.start(
        "VA1", "+14155550123", "sms", locale="fr", custom_friendly_name="Acme", device_ip="1.2.3.4"
    )
    request = recorder.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/v2/Services/VA1/Verifications")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Authorization"] == "Basic " + "QUMxOnRva2Vu"  # AC1:token
    assert form(request) == {
        "To": "+14155550123",
        "Channel": "sms",
        "Locale": "fr",
        "CustomFriendlyName": "Acme",
        "DeviceIp": "1.2.3.4",
    }
    assert isinstance(v, Verification)
    assert (v.sid, v.status, v.valid, v.check_attempts) == ("VE1", "pending", False, 0)
    assert v.expires_at == datetime(2025, 1, 2, 3, 14, 5, tzinfo=UTC)
    assert v.send_code_attempts[0].attempt_sid == "VL1"
    assert v.send_code_attempts[0].time == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert v.raw["something_new"] == {"the": "future"}


def test_start_sends_the_abuse_and_callback_parameters() -> None:
    """StatusCallback, RateLimits (a JSON object) and RiskCheck, in Twilio's spelling."""
    recorder = Recorder(httpx.Response(201, json=VERIFICATION))
    recorder.client().verifications.start(
        "VA1",
        "+14155550123",
        status_callback="https://app.example/verify-events",
        rate_limits={"end_user_ip": "1.2.3.4"},
        risk_check=False,
    )
    sent = form(recorder.requests[0])
    assert json.loads(sent.pop("RateLimits")) == {"end_user_ip": "1.2.3.4"}
    assert sent == {
        "To": "+14155550123",
        "Channel": "sms",
        "StatusCallback": "https://app.example/verify-events",
        "RiskCheck": "disable",
    }


def test_parsing_tolerates_missing_and_strange_fields() -> None:
    v = Verification.from_dict({"sid": "VE1", "send_code_attempts": "?", "date_created": "never"})
    assert (v.sid, v.status, v.send_code_attempts, v.date_created) == ("VE1", "", [], None)
    assert Service.from_dict({}).channels == []


def test_check_by_to_or_by_sid() -> None:
    answer = {**VERIFICATION, "status": "approved", "valid": True}
    recorder = Recorder(httpx.Response(200, json=answer))
    client = recorder.client()
    check = client.verifications.check("VA1", "123456", to="+14155550123")
    client.verifications.check("VA1", "123456", verification_sid="VE1")
    assert isinstance(check, VerificationCheck)
    assert check.valid
    assert check.approved
    assert recorder.requests[0].url.path == "/v2/Services/VA1/VerificationCheck"
    assert form(recorder.requests[0]) == {"Code": "123456", "To": "+14155550123"}
    assert form(recorder.requests[1]) == {"Code": "123456", "VerificationSid": "VE1"}


def test_fetch_cancel_approve() -> None:
    recorder = Recorder(httpx.Response(200, json=VERIFICATION))
    client = recorder.client()
    client.verifications.fetch("VA1", "VE1")
    client.verifications.cancel("VA1", "VE1")
    client.verifications.approve("VA1", "VE1")
    fetch, cancel, approve = recorder.requests
    assert (fetch.method, fetch.url.path) == ("GET", "/v2/Services/VA1/Verifications/VE1")
    assert (cancel.method, form(cancel)) == ("POST", {"Status": "canceled"})
    assert form(approve) == {"Status": "approved"}


def test_path_segments_are_escaped() -> None:
    recorder = Recorder(httpx.Response(200, json=VERIFICATION))
    recorder.client().verifications.fetch("VA1", "../Services")
    assert recorder.requests[0].url.raw_path == b"/v2/Services/VA1/Verifications/..%2FServices"


def test_service_settings_are_snake_case_keywords() -> None:
    recorder = Recorder(httpx.Response(201, json={"sid": "VA2", "channels": ["sms", "email"]}))
    service = recorder.client().services.create(
        "Acme",
        code_length=8,
        code_ttl=300,
        max_check_attempts=3,
        max_send_attempts=4,
        channels=["sms", "email"],
        custom_code_enabled=True,
        do_not_share_warning_enabled=False,
        manual_approval_enabled=True,
        default_locale="de",
        test_numbers={"+15005550006": "123456"},
    )
    sent = form(recorder.requests[0])
    assert json.loads(sent.pop("TestNumbers")) == {"+15005550006": "123456"}
    assert sent == {
        "FriendlyName": "Acme",
        "CodeLength": "8",
        "CodeTtl": "300",
        "MaxCheckAttempts": "3",
        "MaxSendAttempts": "4",
        "Channels": "sms,email",
        "CustomCodeEnabled": "true",
        "DoNotShareWarningEnabled": "false",
        "ManualApprovalEnabled": "true",
        "DefaultLocale": "de",
    }
    assert service.channels == ["sms", "email"]


def test_update_sends_only_what_is_given_and_rejects_unknown_settings() -> None:
    recorder = Recorder(httpx.Response(200, json={"sid": "VA1"}))
    client = recorder.client()
    client.services.update("VA1", friendly_name="New", code_ttl=120)
    assert form(recorder.requests[0]) == {"FriendlyName": "New", "CodeTtl": "120"}
    with pytest.raises(TypeError, match="code_lenght"):
        client.services.update("VA1", code_lenght=6)  # type: ignore[call-arg]
    assert len(recorder.requests) == 1


def test_delete_returns_none() -> None:
    recorder = Recorder(httpx.Response(204))
    recorder.client().services.delete("VA1")
    assert recorder.requests[0].method == "DELETE"


def pages(request: httpx.Request) -> httpx.Response:
    """Five services, served in pages of PageSize with absolute next_page_url links."""
    size = int(request.url.params["PageSize"])
    number = int(request.url.params.get("Page", "0"))
    sids = [f"VA{i}" for i in range(5)][number * size : (number + 1) * size]
    more = (number + 1) * size < 5
    next_url = f"{BASE}/v2/Services?PageSize={size}&Page={number + 1}" if more else None
    body = {
        "services": [{"sid": s} for s in sids],
        "meta": {"page": number, "page_size": size, "next_page_url": next_url},
    }
    return httpx.Response(200, json=body)


def test_list_follows_every_page() -> None:
    recorder = Recorder(pages)
    sids = [s.sid for s in recorder.client().services.list(page_size=2)]
    assert sids == ["VA0", "VA1", "VA2", "VA3", "VA4"]
    assert [r.url.params.get("Page") for r in recorder.requests] == [None, "1", "2"]
    assert recorder.requests[0].url.params["PageSize"] == "2"


def test_list_is_lazy() -> None:
    recorder = Recorder(pages)
    services = recorder.client().services.list(page_size=2)
    assert recorder.requests == []
    next(iter(services))
    assert len(recorder.requests) == 1


def test_async_list_and_services() -> None:
    recorder = Recorder(pages)

    async def run() -> list[str]:
        transport = httpx.MockTransport(recorder)
        async with AsyncVerifyClient(BASE, "AC1", "token", transport=transport) as client:
            return [s.sid async for s in client.services.list(page_size=3)]

    assert asyncio.run(run()) == ["VA0", "VA1", "VA2", "VA3", "VA4"]
    assert len(recorder.requests) == 2


def test_the_client_closes_its_pool() -> None:
    client = Recorder(pages).client()
    with client:
        pass
    with pytest.raises(RuntimeError):
        client.services.fetch("VA1")
