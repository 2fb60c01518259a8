"""What every HTTP adapter shares: the normalized reason codes and the classification of transport
failures and HTTP statuses that no provider-specific code explains. The reason codes are
documented in docs/delivery.md; the pipeline stores them on the attempt.
"""

from __future__ import annotations

import email.utils
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from verify.delivery.providers.base import Outcome, SendResult
from verify.delivery.providers.guard import BlockedAddress
from verify.domain.text import load_json

INVALID_DESTINATION = "invalid_destination"  # the number or address does not exist / is malformed
UNREACHABLE_DESTINATION = "unreachable_destination"  # exists, but cannot get this channel now
BLOCKED_BY_PROVIDER = (
    "blocked_by_provider"  # the provider or carrier refused (filtering, geo rules)
)
RECIPIENT_OPTED_OUT = "recipient_opted_out"  # the person asked this sender to stop (STOP)
PROVIDER_AUTH_FAILED = "provider_auth_failed"  # our credentials were refused
PROVIDER_MISCONFIGURED = "provider_misconfigured"  # sender, account or settings cannot send this
PROVIDER_RATE_LIMITED = "provider_rate_limited"  # too many requests: slow down
PROVIDER_UNAVAILABLE = "provider_unavailable"  # refused connection, 5xx, outage
TIMEOUT = "timeout"  # no answer within the adapter's timeout
UNSUPPORTED_CHANNEL = "unsupported_channel"  # this provider does not carry this channel
REJECTED = "rejected"  # the provider refused the request for a reason it did not explain
UNKNOWN = "unknown"

REASONS = (
    INVALID_DESTINATION,
    UNREACHABLE_DESTINATION,
    BLOCKED_BY_PROVIDER,
    RECIPIENT_OPTED_OUT,
    PROVIDER_AUTH_FAILED,
    PROVIDER_MISCONFIGURED,
    PROVIDER_RATE_LIMITED,
    PROVIDER_UNAVAILABLE,
    TIMEOUT,
    UNSUPPORTED_CHANNEL,
    REJECTED,
    UNKNOWN,
)


# What httpx.Client would send by default, so a request reads the same on the wire.
_DEFAULT_HEADERS = {
    "accept": "*/*",
    "accept-encoding": "gzip, deflate",
    "connection": "keep-alive",
    "user-agent": f"python-httpx/{httpx.__version__}",
}


class Poster:
    """POSTs straight to a transport. An adapter needs none of httpx.Client's work per request
    (merging defaults, a cookie jar, auth flows, redirects: adapters follow none), and that work
    costs more than the local HTTP exchange itself. The timeout travels with every request."""

    def __init__(self, timeout: float, transport: httpx.BaseTransport | None = None) -> None:
        self._timeout = httpx.Timeout(timeout).as_dict()
        self._transport = transport

    def post(self, url: httpx.URL, content: bytes, headers: Mapping[str, str]) -> httpx.Response:
        if self._transport is None:  # built on first use: a TLS context is not cheap
            self._transport = httpx.HTTPTransport(retries=0)
        request = httpx.Request(
            "POST",
            url,
            content=content,
            headers={**_DEFAULT_HEADERS, **headers},
            extensions={"timeout": self._timeout},
        )
        response = self._transport.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        return response


def transport_failure(exc: httpx.HTTPError) -> SendResult:
    """A request that got no HTTP answer. Nothing reached the provider when the connection failed:
    another provider can take it now. A timeout after connecting may have been sent: same provider,
    later (the pipeline's breaker stops a provider that keeps timing out). An address the SSRF
    guard refused is this provider's configuration."""
    if isinstance(exc, BlockedAddress):
        return SendResult(
            Outcome.FAILOVER, reason=PROVIDER_MISCONFIGURED, raw_code="blocked_address"
        )
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return SendResult(
            Outcome.FAILOVER, reason=PROVIDER_UNAVAILABLE, raw_code=type(exc).__name__
        )
    if isinstance(exc, httpx.TimeoutException):
        return SendResult(Outcome.RETRY, reason=TIMEOUT, raw_code=type(exc).__name__)
    return SendResult(Outcome.FAILOVER, reason=PROVIDER_UNAVAILABLE, raw_code=type(exc).__name__)


def by_status(response: httpx.Response, raw_code: str | None = None) -> SendResult:
    """The outcome an HTTP status alone implies, for answers the provider's own codes do not explain."""
    status = response.status_code
    raw = raw_code or str(status)
    if status == 429:
        return SendResult(
            Outcome.RETRY,
            reason=PROVIDER_RATE_LIMITED,
            raw_code=raw,
            retry_after=retry_after(response.headers),
        )
    if status in (401, 403):
        return SendResult(Outcome.FAILOVER, reason=PROVIDER_AUTH_FAILED, raw_code=raw)
    if status == 404:
        return SendResult(Outcome.FAILOVER, reason=PROVIDER_MISCONFIGURED, raw_code=raw)
    if status == 408:
        return SendResult(Outcome.RETRY, reason=TIMEOUT, raw_code=raw)
    if status >= 500:
        return SendResult(Outcome.FAILOVER, reason=PROVIDER_UNAVAILABLE, raw_code=raw)
    return SendResult(Outcome.FAILOVER, reason=REJECTED, raw_code=raw)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if present and sane."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, min(seconds, 3600.0))


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name from any mapping."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def json_object(content: bytes) -> dict[str, Any]:
    """A provider's JSON body (an answer, a receipt) as an object; {} if it is none (not JSON, not
    an object, or one that cannot be read whole)."""
    try:
        value = load_json(content or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
