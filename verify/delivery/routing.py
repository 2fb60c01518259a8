"""Routing: which providers may carry a message on a channel to a destination country, in order.

An account's providers for (channel, country), lowest ``priority`` first (then oldest). A provider
with no countries serves every country; email destinations have no country, so only such providers
route email. When an account has no provider for a route, development and test settings fall back
to the built-in ``console`` provider; production has no route (the attempt fails with ``no_route``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from verify.delivery.providers.base import Provider as Adapter
from verify.models.delivery import Provider

CONSOLE = "console"  # the built-in provider's name, and its circuit key


@dataclass(frozen=True)
class Route:
    """One provider on a route. ``sid`` is None for the built-in console provider."""

    sid: str | None
    type: str
    friendly_name: str
    config: dict[str, Any]
    sealed_credentials: bytes
    date_updated: object = None  # versions a cached adapter
    country: str | None = None  # the destination country it was chosen for (None: email)

    @property
    def key(self) -> str:
        """The provider's identity: adapters, failover's exclusion, the console."""
        return self.sid or CONSOLE

    @property
    def circuit(self) -> str:
        """Its circuit breaker: one per provider and destination country, so that an outage of
        one country's carriers rests the provider for that country only."""
        return f"{self.key}:{self.country}" if self.country else self.key


def route_of(provider: Provider, country: str | None = None) -> Route:
    return Route(
        provider.sid,
        provider.type,
        provider.friendly_name,
        dict(provider.config),
        provider.sealed_credentials,
        provider.date_updated,
        country,
    )


# Builds (or reuses) the adapter for a provider on a route.
ProviderFactory = Callable[[Route], Adapter]

BUILTIN_CONSOLE = Route(None, CONSOLE, "Console (built-in)", {}, b"")


def serves(provider: Provider, channel: str, country: str | None) -> bool:
    if not provider.enabled or channel not in provider.channels.split(","):
        return False
    countries = [c for c in provider.countries.split(",") if c]
    return not countries or (country is not None and country in countries)


class RouteCache:
    """Routes read in the last ``ttl`` seconds, per process: a provider change reaches the workers
    within that time (the same bound as the web tier's credential and service caches)."""

    def __init__(self, ttl: float = 5.0, size: int = 4096) -> None:
        self._ttl = ttl
        self._size = size
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str | None], tuple[float, list[Route]]] = {}

    def get(self, key: tuple[str, str, str | None]) -> list[Route] | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: tuple[str, str, str | None], routes: list[Route]) -> None:
        with self._lock:
            if len(self._entries) >= self._size:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self._ttl, routes)


class Router:
    def __init__(
        self, session: Session, *, builtin_console: bool, cache: RouteCache | None = None
    ) -> None:
        self._session = session
        self._builtin_console = builtin_console
        self._cache = cache

    def route(self, account_sid: str, channel: str, country: str | None) -> list[Route]:
        """The providers for this message in the order to try them (empty: no route)."""
        key = (account_sid, channel, country)
        cached = self._cache.get(key) if self._cache is not None else None
        if cached is not None:
            return cached
        routes = self._route(account_sid, channel, country)
        if self._cache is not None:
            self._cache.put(key, routes)
        return routes

    def _route(self, account_sid: str, channel: str, country: str | None) -> list[Route]:
        providers = self._session.scalars(
            select(Provider)
            .where(Provider.account_sid == account_sid, Provider.enabled.is_(True))
            .order_by(Provider.priority, Provider.date_created, Provider.sid)
        )
        scope = country if channel != "email" else None
        out = [route_of(p, scope) for p in providers if serves(p, channel, scope)]
        if not out and self._builtin_console:
            return [replace(BUILTIN_CONSOLE, country=scope)]
        return out
