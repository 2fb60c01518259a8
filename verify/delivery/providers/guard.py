"""The SSRF guard (verify/events/ssrf.py) for tenant-configured provider URLs: the ``http``
provider's ``url`` and the REST adapters' base-URL overrides.

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


class BlockedAddress(httpx.ConnectError):
    """The guard refused the provider's address; nothing was sent."""


def check_urls(
    type: str, config: Mapping[str, Any], allow: Sequence[ssrf.Network]
) -> list[tuple[str, str]]:
    """``(config.<key>, problem)`` for every URL the guard refuses by its form."""
    problems = []
    for key in URL_FIELDS.get(type, ()):
        value = config.get(key)
        if isinstance(value, str) and value:
            try:
                ssrf.check_form(value, allow)
            except ssrf.UnsafeURL as exc:
                problems.append((f"config.{key}", str(exc)))
    return problems


class GuardedTransport(httpx.BaseTransport):
    """Resolves and checks each request's host, then sends it to the checked address."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        allow: Sequence[ssrf.Network] = (),
        resolver: ssrf.Resolver = ssrf.system_resolver,
    ) -> None:
        self._inner = inner
        self._allow = tuple(allow)
        self._resolver = resolver

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            target = ssrf.resolve_target(str(request.url), self._allow, self._resolver)
        except ssrf.UnsafeURL as exc:
            raise BlockedAddress(str(exc), request=request) from None
        pinned = httpx.URL(target.pinned_url)
        request.url = request.url.copy_with(host=pinned.host)
        request.headers["Host"] = target.host_header
        request.extensions = {**request.extensions, "sni_hostname": target.host}
        return self._inner.handle_request(request)

    def close(self) -> None:
        pass  # the inner transport is shared by every adapter of the process
