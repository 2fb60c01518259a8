"""The client against the real server on a socket, on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import Tenant, delivered_code
from verify.client import (
    AsyncVerifyClient,
    AuthenticationError,
    InvalidParameter,
    MaxCheckAttemptsReached,
    MaxSendAttemptsReached,
    NotFoundError,
    VerificationNotPending,
    VerifyClient,
)
from verify.domain.clock import FrozenClock
from verify.runtime import Runtime

TO = "+14155550123"


@pytest.fixture
def client(live_server: str, tenant: Tenant) -> Iterator[VerifyClient]:
    with VerifyClient(live_server, tenant.account_sid, tenant.auth_token) as client:
        yield client


def wrong(code: str) -> str:
    return "1" * len(code) if code != "1" * len(code) else "2" * len(code)


def test_start_deliver_check(
    client: VerifyClient, tenant: Tenant, work: Callable[[], None], runtime: Runtime
) -> None:
    """Start, deliver through a real worker, a wrong code, then the right one: approved."""
    verification = client.verifications.start(tenant.service_sid, TO, "sms")
    assert verification.status == "pending"
    assert verification.sid.startswith("VE")
    assert verification.expires_at is not None
    assert verification.expires_at.tzinfo is not None
    assert len(verification.send_code_attempts) == 1

    work()
    code = delivered_code(runtime, TO)
    check = client.verifications.check(tenant.service_sid, wrong(code), to=TO)
    assert (check.valid, check.status) == (False, "pending")

    check = client.verifications.check(tenant.service_sid, code, to=TO)
    assert (check.valid, check.status, check.sid) == (True, "approved", verification.sid)
    fetched = client.verifications.fetch(tenant.service_sid, verification.sid)
    assert fetched.status == "approved"
    assert fetched.check_attempts == 2


def test_a_finished_verification_names_its_state(
    client: VerifyClient, tenant: Tenant, clock: FrozenClock
) -> None:
    """Canceled and expired verifications answer checks with VerificationNotPending."""
    canceled = client.verifications.start(tenant.service_sid, TO)
    assert client.verifications.cancel(tenant.service_sid, canceled.sid).status == "canceled"
    with pytest.raises(VerificationNotPending) as info:
        client.verifications.check(tenant.service_sid, "123456", verification_sid=canceled.sid)
    assert (info.value.verification_status, info.value.verification_sid) == (
        "canceled",
        canceled.sid,
    )

    expiring = client.verifications.start(tenant.service_sid, TO)
    clock.advance(601)
    with pytest.raises(VerificationNotPending) as info:
        client.verifications.check(tenant.service_sid, "123456", verification_sid=expiring.sid)
    assert info.value.verification_status == "expired"
    assert info.value.code == 20404


def test_the_sixth_send_is_refused_with_retry_after(client: VerifyClient, tenant: Tenant) -> None:
    first = client.verifications.start(tenant.service_sid, TO)
    for _ in range(4):
        assert client.verifications.resend(tenant.service_sid, TO).sid == first.sid
    with pytest.raises(MaxSendAttemptsReached) as info:
        client.verifications.resend(tenant.service_sid, TO)
    assert info.value.code == 60203
    assert info.value.retry_after is not None
    assert 0 < info.value.retry_after <= 600


def test_too_many_wrong_codes(client: VerifyClient, tenant: Tenant) -> None:
    verification = client.verifications.start(tenant.service_sid, TO)
    for _ in range(4):
        assert not client.verifications.check(tenant.service_sid, "000000", to=TO).valid
    with pytest.raises(MaxCheckAttemptsReached) as info:
        client.verifications.check(tenant.service_sid, "000000", to=TO)
    assert info.value.verification_sid == verification.sid
    assert info.value.retry_after is not None


def test_the_same_idempotency_key_sends_once(client: VerifyClient, tenant: Tenant) -> None:
    first = client.verifications.start(tenant.service_sid, TO, idempotency_key="k-1")
    again = client.verifications.start(tenant.service_sid, TO, idempotency_key="k-1")
    assert again.sid == first.sid
    assert len(again.send_code_attempts) == 1


def test_request_errors(client: VerifyClient, tenant: Tenant, live_server: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        client.verifications.start(tenant.service_sid, "not a number")
    assert info.value.parameter == "To"
    with pytest.raises(InvalidParameter) as info:  # the server names what it could not count
        client.verifications.start(tenant.service_sid, TO, rate_limits={"no_such_limit": "x"})
    assert info.value.parameter == "RateLimits"
    with pytest.raises(NotFoundError):
        client.verifications.check(tenant.service_sid, "123456", to=TO)
    with pytest.raises(AuthenticationError), VerifyClient(live_server, "AC0", "no") as stranger:
        stranger.services.fetch(tenant.service_sid)


def test_services(client: VerifyClient, tenant: Tenant) -> None:
    created = client.services.create(
        "Client", code_length=8, channels=["sms", "email"], test_numbers={"+15005550006": "1234"}
    )
    assert (created.code_length, created.channels, created.test_numbers) == (
        8,
        ["sms", "email"],
        ["+15005550006"],
    )
    updated = client.services.update(created.sid, friendly_name="Renamed", code_ttl=120)
    assert (updated.friendly_name, updated.code_ttl, updated.code_length) == ("Renamed", 120, 8)
    fallback = client.services.update(created.sid, fallback_channels=["email"], channel_timeout=45)
    assert (fallback.fallback_channels, fallback.channel_timeout) == (["email"], 45)
    assert client.services.fetch(created.sid).fallback_channels == ["email"]
    extra = [client.services.create(f"More {i}").sid for i in range(2)]
    listed = [s.sid for s in client.services.list(page_size=2)]
    assert sorted(listed) == sorted([tenant.service_sid, created.sid, *extra])
    client.services.delete(created.sid)
    with pytest.raises(NotFoundError):
        client.services.fetch(created.sid)


def test_the_async_client(
    live_server: str, tenant: Tenant, work: Callable[[], None], runtime: Runtime
) -> None:
    async def run() -> None:
        async with AsyncVerifyClient(live_server, tenant.account_sid, tenant.auth_token) as client:
            started = await client.verifications.start(
                tenant.service_sid, "ada@example.com", "email"
            )
            assert started.channel == "email"
            work()  # RQ installs signal handlers: the main thread only
            code = delivered_code(runtime, "ada@example.com")
            check = await client.verifications.check(
                tenant.service_sid, code, verification_sid=started.sid
            )
            assert check.status == "approved"
            with pytest.raises(VerificationNotPending) as info:
                await client.verifications.check(tenant.service_sid, code, to="ada@example.com")
            assert info.value.verification_status == "approved"
            assert [s.sid async for s in client.services.list()] == [tenant.service_sid]

    asyncio.run(run())
