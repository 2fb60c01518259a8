"""The retry policy: what is retried, how often, how long it waits, and with which key."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping

import httpx
import pytest

from tests.client.conftest import BASE, Recorder, problem
from verify.client import AsyncVerifyClient, errors
from verify.client._http import Call, RetryPolicy

SERVICE = {"sid": "VA1", "friendly_name": "Acme"}
VERIFICATION = {"sid": "VE1", "status": "pending", "to": "+14155550123"}
UNAVAILABLE = problem(20503, 503)


def ok(body: Mapping[str, object], status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def test_a_get_is_retried_on_503_until_it_succeeds() -> None:
    recorder = Recorder(UNAVAILABLE, UNAVAILABLE, ok(SERVICE))
    assert recorder.client().services.fetch("VA1").sid == "VA1"
    assert len(recorder.requests) == 3


def test_retries_stop_after_max_retries() -> None:
    recorder = Recorder(UNAVAILABLE)
    with pytest.raises(errors.ServiceUnavailable):
        recorder.client(max_retries=3).services.fetch("VA1")
    assert len(recorder.requests) == 4


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_errors_are_retried(status: int) -> None:
    recorder = Recorder(httpx.Response(status), ok(SERVICE))
    recorder.client().services.fetch("VA1")
    assert len(recorder.requests) == 2


def test_a_start_is_retried_with_the_same_idempotency_key() -> None:
    """Connection errors and timeouts on a create: every attempt carries one key, a UUID."""
    recorder = Recorder(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), ok(VERIFICATION))
    verification = recorder.client().verifications.start("VA1", "+14155550123")
    assert verification.sid == "VE1"
    keys = {r.headers["Idempotency-Key"] for r in recorder.requests}
    assert len(recorder.requests) == 3
    assert len(keys) == 1
    uuid.UUID(keys.pop())


def test_each_call_has_its_own_key_and_a_given_key_is_used() -> None:
    recorder = Recorder(ok(VERIFICATION, 201))
    client = recorder.client()
    client.verifications.start("VA1", "+14155550123")
    client.verifications.resend("VA1", "+14155550123")
    client.verifications.start("VA1", "+14155550123", idempotency_key="signup-42")
    keys = [r.headers["Idempotency-Key"] for r in recorder.requests]
    assert keys[0] != keys[1]
    assert keys[2] == "signup-42"


def test_every_post_carries_a_key() -> None:
    """Checks, cancels, approvals and service changes too, so all of them can be retried."""
    recorder = Recorder(ok(VERIFICATION))
    client = recorder.client()
    client.verifications.check("VA1", "123456", to="+14155550123")
    client.verifications.cancel("VA1", "VE1")
    client.verifications.approve("VA1", "VE1")
    client.services.create("Acme")
    client.services.update("VA1", code_length=8)
    assert all(r.method == "POST" and r.headers["Idempotency-Key"] for r in recorder.requests)


def test_an_in_flight_duplicate_is_retried() -> None:
    """409: the first attempt with this key is still running; the retry gets its answer."""
    recorder = Recorder(problem(20409, 409), ok(VERIFICATION))
    recorder.client().verifications.start("VA1", "+14155550123")
    assert len(recorder.requests) == 2


def test_429_is_not_retried() -> None:
    recorder = Recorder(problem(60203, 429))
    with pytest.raises(errors.MaxSendAttemptsReached) as info:
        recorder.client().verifications.start("VA1", "+14155550123")
    assert info.value.retry_after == 42
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    ("code", "status"), [(60200, 400), (20003, 401), (20404, 404), (20422, 422), (20500, 500)]
)
def test_other_errors_are_not_retried(code: int, status: int) -> None:
    recorder = Recorder(problem(code, status))
    with pytest.raises(errors.ApiError):
        recorder.client().verifications.start("VA1", "+14155550123")
    with pytest.raises(errors.ApiError):
        recorder.client().services.fetch("VA1")
    assert len(recorder.requests) == 2


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    soon = problem(20503, 503)
    soon.headers["Retry-After"] = "0"
    recorder = Recorder(soon, ok(SERVICE))
    recorder.client().services.fetch("VA1")
    assert len(recorder.requests) == 2

    later = problem(20503, 503)
    later.headers["Retry-After"] = "3600"
    recorder = Recorder(later, ok(SERVICE))
    with pytest.raises(errors.ServiceUnavailable) as info:
        recorder.client().services.fetch("VA1")
    assert info.value.retry_after == 3600
    assert len(recorder.requests) == 1


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_retries=50, backoff_base=0.5, backoff_cap=5.0)
    for retry in range(30):
        ceiling = min(5.0, 0.5 * 2**retry)
        delays = [policy.backoff(retry) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert max(policy.backoff(40) for _ in range(100)) <= 5.0


def test_the_client_really_waits_between_retries() -> None:
    recorder = Recorder(UNAVAILABLE, UNAVAILABLE, ok(SERVICE))
    started = time.monotonic()
    recorder.client(backoff_base=0.04).services.fetch("VA1")
    assert time.monotonic() - started >= 0.02 + 0.04


def test_a_request_that_was_never_sent_is_retried_even_without_a_key() -> None:
    policy = RetryPolicy()
    bare_post = Call("POST", "/x", form={})
    assert not bare_post.retryable
    assert policy.delay(bare_post, 0, httpx.ConnectError("refused")) is not None
    assert policy.delay(bare_post, 0, httpx.ReadTimeout("slow")) is None
    assert policy.delay(bare_post, 0, httpx.Response(503)) is None
    assert Call("DELETE", "/x").retryable


def test_timeouts_are_on_by_default() -> None:
    seen: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return ok(SERVICE)

    Recorder(handler).client().services.fetch("VA1")
    Recorder(handler).client(timeout=2.5).services.fetch("VA1")
    assert seen[0] == {"connect": 10.0, "read": 10.0, "write": 10.0, "pool": 10.0}
    assert seen[1]["read"] == 2.5


def test_the_async_client_retries_the_same_way() -> None:
    recorder = Recorder(
        httpx.ConnectError("refused"), UNAVAILABLE, ok(VERIFICATION), problem(60202, 429)
    )

    async def run() -> None:
        transport = httpx.MockTransport(recorder)
        async with AsyncVerifyClient(
            BASE, "AC1", "token", transport=transport, backoff_base=0
        ) as client:
            assert (await client.verifications.start("VA1", "+14155550123")).sid == "VE1"
            with pytest.raises(errors.MaxCheckAttemptsReached):
                await client.verifications.check("VA1", "123456", to="+14155550123")

    asyncio.run(run())
    assert len(recorder.requests) == 4
    assert len({r.headers["Idempotency-Key"] for r in recorder.requests[:3]}) == 1
