"""The HTTP core shared by the sync and async clients: building requests, the retry policy, and
turning answers into results or typed exceptions. Nothing here does I/O or sleeps; the clients do.

Retry policy: a call is *retryable* when it is safe to send twice: GET and DELETE, and POSTs that
carry an Idempotency-Key (the server replays the first answer). A retryable call is retried on a
transport error, on 502/503/504, and on 409 (its first attempt is still running), up to
``max_retries`` times, with exponential backoff and jitter capped at ``backoff_cap`` seconds. A
``Retry-After`` header is honoured when it is no longer than the cap; a longer one ends the retries
(the exception carries ``retry_after``). A failed connection is retried for any call, since nothing
was sent. 429 is never retried: it is a product signal for the caller. Other 4xx are final.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from verify import __version__
from verify.client import errors

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})
RETRY_STATUSES = frozenset({502, 503, 504})
USER_AGENT = f"verify-client-python/{__version__}"


@dataclass(frozen=True)
class Call:
    """One API request, as data: sent again unchanged on each retry."""

    method: str
    url: str  # a path under the base URL, or an absolute URL (pagination links)
    form: Mapping[str, str] | None = None
    params: Mapping[str, str | int] | None = None
    idempotency_key: str | None = None

    @property
    def retryable(self) -> bool:
        return self.method in SAFE_METHODS or self.idempotency_key is not None


def client_options(base_url: str, username: str, password: str, timeout: float) -> dict[str, Any]:
    """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient``."""
    return {
        "base_url": base_url.rstrip("/"),
        "auth": httpx.BasicAuth(username, password),
        "timeout": httpx.Timeout(timeout),
        "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"},
    }


def build_request(client: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
    headers = {"Idempotency-Key": call.idempotency_key} if call.idempotency_key else None
    return client.build_request(
        call.method,
        call.url,
        data=dict(call.form) if call.form is not None else None,
        params=dict(call.params) if call.params is not None else None,
        headers=headers,
    )


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    backoff_base: float = 0.5
    backoff_cap: float = 5.0

    def backoff(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (0-based): exponential, jittered, capped."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2**retry)
        return random.uniform(ceiling / 2, ceiling)

    def delay(
        self, call: Call, retry: int, outcome: httpx.Response | httpx.TransportError
    ) -> float | None:
        """Seconds to wait before sending ``call`` again, or None to stop with ``outcome``."""
        if retry >= self.max_retries:
            return None
        if isinstance(outcome, httpx.TransportError):
            never_sent = isinstance(outcome, httpx.ConnectError | httpx.ConnectTimeout)
            return self.backoff(retry) if call.retryable or never_sent else None
        status = outcome.status_code
        if not call.retryable or not (
            status in RETRY_STATUSES or (status == 409 and call.idempotency_key)
        ):
            return None
        retry_after = parse_retry_after(outcome.headers)
        if retry_after is None:
            return self.backoff(retry)
        return float(retry_after) if retry_after <= self.backoff_cap else None


def settle(outcome: httpx.Response | httpx.TransportError) -> Any:
    """The decoded JSON of a successful answer (None when empty); raise for anything else."""
    if isinstance(outcome, httpx.TransportError):
        raise transport_error(outcome) from outcome
    if outcome.status_code >= 400:
        raise api_error(outcome)
    if outcome.status_code == 204 or not outcome.content:
        return None
    return outcome.json()


def api_error(response: httpx.Response) -> errors.ApiError:
    try:
        decoded = response.json()
    except ValueError:
        decoded = None
    body: dict[str, Any] = decoded if isinstance(decoded, dict) else {}
    code = body.get("code")
    message = body.get("message") or body.get("detail") or response.reason_phrase
    cls = errors.api_error_class(response.status_code, body)
    return cls(
        str(message or f"HTTP {response.status_code}"),
        code=code if isinstance(code, int) else None,
        status=response.status_code,
        retry_after=parse_retry_after(response.headers),
        body=body,
    )


def transport_error(exc: httpx.TransportError) -> errors.TransportError:
    cls: type[errors.TransportError]
    if isinstance(exc, httpx.ConnectTimeout):
        cls = errors.ConnectTimeout
    elif isinstance(exc, httpx.TimeoutException):
        cls = errors.Timeout
    elif isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        cls = errors.ConnectionFailed
    else:
        cls = errors.TransportError
    try:
        where = f"{exc.request.method} {exc.request.url}: "
    except RuntimeError:  # an httpx error raised without its request
        where = ""
    return cls(f"{where}{type(exc).__name__}: {exc}")


def parse_retry_after(headers: Mapping[str, str]) -> int | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return int(value)
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, round((when - datetime.now(UTC)).total_seconds()))
