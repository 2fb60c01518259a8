"""The asynchronous client: the same operations, retry policy and errors as ``VerifyClient``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx

from verify.client import _operations as ops
from verify.client._http import Call, RetryPolicy, build_request, client_options, settle
from verify.client.models import Service, Verification, VerificationCheck

T = TypeVar("T")


class AsyncVerifyClient:
    """``VerifyClient`` for asyncio, over ``httpx.AsyncClient``.

    Same arguments, methods, retries and exceptions; every method is awaited::

        async with AsyncVerifyClient(base_url, account_sid, auth_token) as client:
            await client.verifications.start(service_sid, "+14155550123")
            check = await client.verifications.check(service_sid, code, to="+14155550123")
            async for service in client.services.list():
                ...
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 5.0,
    ) -> None:
        options = client_options(base_url, username, password, timeout)
        self._http = httpx.AsyncClient(transport=transport, **options)
        self._retry = RetryPolicy(max_retries, backoff_base, backoff_cap)
        self.services = AsyncServices(self._run)
        self.verifications = AsyncVerifications(self._run)

    async def _run(self, op: ops.Operation[T]) -> T:
        return op.parse(await self._send(op.call))

    async def _send(self, call: Call) -> Any:
        retry = 0
        while True:
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = await self._http.send(build_request(self._http, call))
            except httpx.TransportError as exc:
                outcome = exc
            delay = self._retry.delay(call, retry, outcome)
            if delay is None:
                return settle(outcome)
            await asyncio.sleep(delay)
            retry += 1

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncVerifyClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class AsyncServices:
    """``client.services`` of the async client (see ``verify.client.Services``)."""

    def __init__(self, run: ops.AsyncRunner) -> None:
        self._run = run

    async def create(self, friendly_name: str, **settings: Unpack[ops.ServiceSettings]) -> Service:
        return await self._run(ops.create_service(friendly_name, settings))

    async def fetch(self, sid: str) -> Service:
        return await self._run(ops.fetch_service(sid))

    async def update(
        self, sid: str, *, friendly_name: str | None = None, **settings: Unpack[ops.ServiceSettings]
    ) -> Service:
        return await self._run(
            ops.update_service(sid, {"friendly_name": friendly_name, **settings})
        )

    async def delete(self, sid: str) -> None:
        await self._run(ops.delete_service(sid))

    async def list(self, page_size: int = 50) -> AsyncIterator[Service]:
        """Every service of the account (``async for``), fetching pages as iteration goes."""
        op: ops.Operation[ops.Page[Service]] | None = ops.list_services(page_size)
        while op is not None:
            page = await self._run(op)
            for service in page.items:
                yield service
            op = page.next


class AsyncVerifications:
    """``client.verifications`` of the async client (see ``verify.client.Verifications``)."""

    def __init__(self, run: ops.AsyncRunner) -> None:
        self._run = run

    async def start(
        self,
        service_sid: str,
        to: str,
        channel: str = "sms",
        *,
        locale: str | None = None,
        custom_code: str | None = None,
        custom_friendly_name: str | None = None,
        device_ip: str | None = None,
        status_callback: str | None = None,
        rate_limits: Mapping[str, str] | None = None,
        risk_check: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Verification:
        op = ops.start_verification(
            service_sid,
            to,
            channel,
            locale=locale,
            custom_code=custom_code,
            custom_friendly_name=custom_friendly_name,
            device_ip=device_ip,
            status_callback=status_callback,
            rate_limits=rate_limits,
            risk_check=risk_check,
            idempotency_key=idempotency_key,
        )
        return await self._run(op)

    resend = start  # a start for a pending ``to`` is a resend; the name reads better at call sites

    async def check(
        self,
        service_sid: str,
        code: str,
        *,
        to: str | None = None,
        verification_sid: str | None = None,
    ) -> VerificationCheck:
        op = ops.check_verification(service_sid, code, to=to, verification_sid=verification_sid)
        return await self._run(op)

    async def fetch(self, service_sid: str, sid: str) -> Verification:
        return await self._run(ops.fetch_verification(service_sid, sid))

    async def cancel(self, service_sid: str, sid: str) -> Verification:
        return await self._run(ops.set_verification_status(service_sid, sid, "canceled"))

    async def approve(self, service_sid: str, sid: str) -> Verification:
        return await self._run(ops.set_verification_status(service_sid, sid, "approved"))
