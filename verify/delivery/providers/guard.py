"""The SSRF guard (verify/events/ssrf.py) for tenant-configured provider URLs and hosts: the
``http`` provider's ``url``, the REST adapters' base-URL overrides and the SMTP server.

A URL's form is checked when the provider is configured (``check_urls``), and every request an
adapter makes goes through ``GuardedTransport``: the host is resolved, every address checked
against the operator allowlist the webhooks use (``VERIFY_WEBHOOK_ALLOW_NETWORKS``), and the
connection made to the checked address (Host header and TLS SNI keep the name; no second DNS
lookup that could answer differently). The verdict is kept for half a minute. Adapters follow no
redirects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
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

    A URL's verdict (the address it was pinned to, in the form httpx sends) is kept for
    ``VERDICT_TTL`` seconds, as a resolver's cache would keep the answer: without it every message
    would cost a DNS query, and httpx's URL parsing costs about as much as the local HTTP exchange.
    Only checked addresses are ever connected to; a name whose DNS answer changes is judged again
    when its verdict runs out."""

    VERDICT_TTL = 30.0
    _KEPT = 1024  # a provider's URLs are few; the memo starts over past this

    def __init__(
        self,
        inner: httpx.BaseTransport,
        allow: Sequence[ssrf.Network] = (),
        resolver: ssrf.Resolver = ssrf.system_resolver,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._allow = tuple(allow)
        self._resolver = resolver
        self._clock = clock
        self._verdicts: dict[str, tuple[float, httpx.URL, ssrf.Target]] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        now = self._clock()
        kept = self._verdicts.get(url)
        if kept is None or now >= kept[0]:
            try:
                target = ssrf.resolve_target(url, self._allow, self._resolver)
            except ssrf.UnsafeURL as exc:
                self._verdicts.pop(url, None)
                raise BlockedAddress(str(exc), request=request) from None
            if len(self._verdicts) >= self._KEPT:
                self._verdicts.clear()
            pinned = request.url.copy_with(host=httpx.URL(target.pinned_url).host)
            kept = self._verdicts[url] = (now + self.VERDICT_TTL, pinned, target)
        _, request.url, target = kept
        request.headers["Host"] = target.host_header
        request.extensions = {**request.extensions, "sni_hostname": target.host}
        return self._inner.handle_request(request)

    def address_for(self, host: str, port: int) -> str:
        """For adapters that open their own connections (SMTP): the address to connect to for
        ``host``, resolved and judged as a request's would be (ssrf.UnsafeURL if refused)."""
        return ssrf.resolve_host(host, port, self._allow, self._resolver)

    def close(self) -> None:
        pass  # the inner transport is shared by every adapter of the process
