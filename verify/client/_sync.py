"""The synchronous client."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx

from verify.client import _operations as ops
from verify.client._http import Call, RetryPolicy, build_request, client_options, settle
from verify.client.models import Service, Verification, VerificationCheck

T = TypeVar("T")


class VerifyClient:
    """A client for a Verify (or Twilio Verify v2) server.

    ``username``/``password`` are an Account SID and its auth token, or an API key SID and its
    secret. Every request has a ``timeout`` (seconds, for connecting, writing and reading each).

    Every POST carries an Idempotency-Key, so every request is safe to repeat: on a connection
    error, a timeout, 502/503/504 or 409 (the same key still in flight) the client tries again, up to
    ``max_retries`` times, waiting a jittered, exponentially growing delay from ``backoff_base`` up
    to ``backoff_cap`` seconds (or the server's ``Retry-After`` when that is no longer). A 429 is
    never retried: it is raised at once, with ``retry_after``. ``transport`` replaces httpx's
    network transport (``httpx.MockTransport`` in tests).

    Errors are exceptions from ``verify.client.errors``; a wrong code is *not* an error
    (``check(...).valid`` is False)::

        from verify.client import MaxSendAttemptsReached, VerifyClient

        with VerifyClient("http://127.0.0.1:8000", account_sid, auth_token) as client:
            try:
                client.verifications.start(service_sid, "+14155550123", "sms")
            except MaxSendAttemptsReached as exc:
                print(f"too many codes; try again in {exc.retry_after} s")
            check = client.verifications.check(service_sid, "123456", to="+14155550123")
            if check.status == "approved":
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
        transport: httpx.BaseTransport | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 5.0,
    ) -> None:
        options = client_options(base_url, username, password, timeout)
        self._http = httpx.Client(transport=transport, **options)
        self._retry = RetryPolicy(max_retries, backoff_base, backoff_cap)
        self.services = Services(self._run)
        self.verifications = Verifications(self._run)

    def _run(self, op: ops.Operation[T]) -> T:
        return op.parse(self._send(op.call))

    def _send(self, call: Call) -> Any:
        retry = 0
        while True:
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = self._http.send(build_request(self._http, call))
            except httpx.TransportError as exc:
                outcome = exc
            delay = self._retry.delay(call, retry, outcome)
            if delay is None:
                return settle(outcome)
            time.sleep(delay)
            retry += 1

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> VerifyClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Services:
    """``client.services``: create, fetch, list, update and delete Verify services."""

    def __init__(self, run: ops.Runner) -> None:
        self._run = run

    def create(self, friendly_name: str, **settings: Unpack[ops.ServiceSettings]) -> Service:
        """Create a service, e.g. ``create("Acme", code_length=8, channels=["sms", "email"])``."""
        return self._run(ops.create_service(friendly_name, settings))

    def fetch(self, sid: str) -> Service:
        return self._run(ops.fetch_service(sid))

    def update(
        self, sid: str, *, friendly_name: str | None = None, **settings: Unpack[ops.ServiceSettings]
    ) -> Service:
        """Change the given settings; the others keep their values."""
        op = ops.update_service(sid, {"friendly_name": friendly_name, **settings})
        return self._run(op)

    def delete(self, sid: str) -> None:
        """Delete a service and its verifications."""
        self._run(ops.delete_service(sid))

    def list(self, page_size: int = 50) -> Iterator[Service]:
        """Every service of the account, fetching pages of ``page_size`` as iteration goes."""
        op: ops.Operation[ops.Page[Service]] | None = ops.list_services(page_size)
        while op is not None:
            page = self._run(op)
            yield from page.items
            op = page.next


class Verifications:
    """``client.verifications``: start (or resend), check, fetch, cancel and approve."""

    def __init__(self, run: ops.Runner) -> None:
        self._run = run

    def start(
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
        """Send a code to ``to`` (E.164 phone number, or an email address for ``channel="email"``).

        Starting again while a verification for ``to`` is pending resends its code (on the given
        channel). Raises ``InvalidParameter`` (``parameter == "To"``) for a bad destination,
        ``MaxSendAttemptsReached`` after too many sends (see ``retry_after``), ``Blocked``
        subclasses when the destination may not be sent codes, ``ChannelDisabled``.

        ``status_callback``: a URL that gets this verification's events, signed with the service's
        callback secret. ``rate_limits``: the service's rate limits by unique name, with the value
        each counts (e.g. ``{"end_user_ip": ip}``). ``risk_check=False`` skips the fraud rules where
        the service allows it.
        """
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
        return self._run(op)

    resend = start  # a start for a pending ``to`` is a resend; the name reads better at call sites

    def check(
        self,
        service_sid: str,
        code: str,
        *,
        to: str | None = None,
        verification_sid: str | None = None,
    ) -> VerificationCheck:
        """Check ``code`` for the pending verification of ``to`` (or ``verification_sid``).

        A wrong code returns ``valid=False`` with ``status="pending"``. Raises
        ``MaxCheckAttemptsReached`` when the verification ran out of attempts,
        ``VerificationNotPending`` (``verification_status`` approved/canceled/expired/failed) when it is
        finished, ``NotFoundError`` when nothing is pending for ``to``.
        """
        op = ops.check_verification(service_sid, code, to=to, verification_sid=verification_sid)
        return self._run(op)

    def fetch(self, service_sid: str, sid: str) -> Verification:
        return self._run(ops.fetch_verification(service_sid, sid))

    def cancel(self, service_sid: str, sid: str) -> Verification:
        """Cancel a pending verification: its code stops working."""
        return self._run(ops.set_verification_status(service_sid, sid, "canceled"))

    def approve(self, service_sid: str, sid: str) -> Verification:
        """Approve without a code (the service must have ``manual_approval_enabled``)."""
        return self._run(ops.set_verification_status(service_sid, sid, "approved"))
