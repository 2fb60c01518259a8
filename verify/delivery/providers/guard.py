"""The SSRF guard (verify/events/ssrf.py) for tenant-configured provider URLs and hosts: the
``http`` provider's ``url``, the REST adapters' base-URL overrides and the SMTP server.

A URL's form is checked when the provider is configured (``check_urls``), and every request an
adapter makes goes through ``GuardedTransport``: the host is resolved, every address checked
against the operator allowlist the webhooks use (``VERIFY_WEBHOOK_ALLOW_NETWORKS``), and the
connection made to the checked address (Host header and TLS SNI keep the name; no second DNS
lookup that could answer differently). Adapters follow no redirects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from verify.events import ssrf

# Config keys that hold a URL the adapter will call, per provider type.
URL_FIELDS: dict[str, tuple[str, ...]] = {
    "http": ("url",),
    "twilio": ("base_url",),
    "vonage": ("sms_url", "api_url"),
}
# Config keys that hold a host name the adapter connects to.
HOST_FIELDS: dict[str, tuple[str, ...]] = {"smtp": ("host",)}


class BlockedAddress(httpx.ConnectError):
    """The guard refused the provider's address; nothing was sent."""


def check_urls(
    type: str, config: Mapping[str, Any], allow: Sequence[ssrf.Network]
) -> list[tuple[str, str]]:
    """``(config.<key>, problem)`` for every URL or host the guard refuses by its form."""
    problems = []
    for keys, check in ((URL_FIELDS, ssrf.check_form), (HOST_FIELDS, ssrf.check_host)):
        for key in keys.get(type, ()):
            value = config.get(key)
            if isinstance(value, str) and value:
                try:
                    check(value, allow)
                except ssrf.UnsafeURL as exc:
                    problems.append((f"config.{key}", str(exc)))
    return problems


class GuardedTransport(httpx.BaseTransport):
    """Resolves and checks each request's host, then sends it to the checked address.

    The host is resolved and every address judged on every request; only the pinned form of a
    URL for an address (httpx parses URLs in Python, at a cost close to the local HTTP exchange
    itself) is remembered."""

    _PINNED_KEPT = 1024  # a provider's URLs are few; the memo starts over past this

    def __init__(
        self,
        inner: httpx.BaseTransport,
        allow: Sequence[ssrf.Network] = (),
        resolver: ssrf.Resolver = ssrf.system_resolver,
    ) -> None:
        self._inner = inner
        self._allow = tuple(allow)
        self._resolver = resolver
        self._pinned: dict[tuple[str, str], httpx.URL] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        try:
            target = ssrf.resolve_target(url, self._allow, self._resolver)
        except ssrf.UnsafeURL as exc:
            raise BlockedAddress(str(exc), request=request) from None
        key = (url, target.address)
        pinned = self._pinned.get(key)
        if pinned is None:
            if len(self._pinned) >= self._PINNED_KEPT:
                self._pinned.clear()
            host = httpx.URL(target.pinned_url).host
            pinned = self._pinned[key] = request.url.copy_with(host=host)
        request.url = pinned
        request.headers["Host"] = target.host_header
        request.extensions = {**request.extensions, "sni_hostname": target.host}
        return self._inner.handle_request(request)

    def address_for(self, host: str, port: int) -> str:
        """For adapters that open their own connections (SMTP): the address to connect to for
        ``host``, resolved and judged as a request's would be (ssrf.UnsafeURL if refused)."""
        return ssrf.resolve_host(host, port, self._allow, self._resolver)

    def close(self) -> None:
        pass  # the inner transport is shared by every adapter of the process
