"""Wiring for the delivery pipeline: the services of one process (worker or web), built from its
Runtime. Adapters are built once per provider version and reused (their HTTP connections too)."""

from __future__ import annotations

import functools
import threading
from datetime import datetime

import httpx
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from verify.delivery import providers as registry
from verify.delivery import templates
from verify.delivery.circuit import CircuitBreakers, Policy
from verify.delivery.console import outbox_for
from verify.delivery.fallback import ChannelTimeouts
from verify.delivery.lane import LaneSender
from verify.delivery.providers.base import Provider
from verify.delivery.queue import Timers
from verify.delivery.receipts import ReceiptService
from verify.delivery.routing import Route, RouteCache, Router
from verify.delivery.sender import RetryPolicy, SendService
from verify.delivery.voice import VoiceService
from verify.domain.providers import open_credentials
from verify.domain.sends import SendGate
from verify.events.ssrf import parse_networks
from verify.runtime import Runtime


class AdapterCache:
    """A ProviderFactory: one adapter per provider and version (``date_updated``)."""

    def __init__(self, rt: Runtime, *, echo: bool = False) -> None:
        self._rt = rt
        self._echo = echo
        self._lock = threading.Lock()
        self._adapters: dict[str, tuple[datetime | None, Provider]] = {}
        # One transport for every adapter of the process: building an httpx client's TLS context
        # costs more than a local provider call, and the connection pool is reused. A tenant's
        # providers reach it through the SSRF guard, pinned to the address it checked.
        self._transport = httpx.HTTPTransport(retries=0)
        self._guarded = registry.GuardedTransport(
            self._transport, parse_networks(rt.settings.webhook_allow_networks)
        )

    def __call__(self, route: Route) -> Provider:
        version = route.date_updated
        with self._lock:
            cached = self._adapters.get(route.key)
            if cached is not None and cached[0] == version:
                return cached[1]
        adapter = self._build(route)
        with self._lock:
            self._adapters[route.key] = (version, adapter)  # type: ignore[assignment]
        return adapter

    def _build(self, route: Route) -> Provider:
        credentials = (
            open_credentials(self._rt.sealer, route.sid, route.sealed_credentials)
            if route.sid
            else {}
        )
        config = dict(route.config)
        if route.sid is None:  # the built-in console: `verify dev` prints to the worker's terminal
            config = {"echo": self._echo}
        return registry.build_provider(
            route.type,
            config,
            credentials,
            timeout=float(self._rt.settings.limits.provider_timeout),
            outbox=outbox_for(self._rt),
            transport=self._guarded if route.sid else self._transport,
        )


class Delivery:
    """The long-lived parts of the pipeline for one process."""

    def __init__(self, rt: Runtime, *, echo: bool = False) -> None:
        limits = rt.settings.limits
        self.rt = rt
        self.adapters = AdapterCache(rt, echo=echo)
        self.dispatcher = rt.dispatcher
        self.routes = RouteCache()
        self.timers = Timers(rt.redis, self.dispatcher)
        self.breakers = CircuitBreakers(
            rt.redis,
            Policy(
                failures=limits.circuit_failures,
                failure_rate=limits.circuit_failure_rate,
                min_volume=limits.circuit_min_volume,
                window=limits.circuit_window,
                cooldown=limits.circuit_cooldown,
                probe_lease=max(limits.provider_timeout * 2, 5),
            ),
        )
        self.retry = RetryPolicy(
            max_tries=limits.delivery_max_tries,
            base=float(limits.delivery_retry_base),
            cap=float(limits.delivery_retry_cap),
        )

    def sender(
        self, session: Session, gate: SendGate | None = None, *, lane: Connection | None = None
    ) -> SendService:
        """``lane``: the session's own connection on PostgreSQL, with no transaction begun; the
        common send then runs as single statements on it (verify/delivery/lane.py)."""
        rt = self.rt
        make = functools.partial(LaneSender, lane=lane) if lane is not None else SendService
        return make(
            session,
            clock=rt.clock,
            sealer=rt.sealer,
            router=Router(session, builtin_console=rt.settings.is_development, cache=self.routes),
            providers=self.adapters,
            breakers=self.breakers,
            timers=self.timers,
            dispatcher=self.dispatcher,
            render=templates.render,
            resolve_locale=templates.resolve_locale,
            retry=self.retry,
            public_url=rt.settings.public_url,
            gate=gate,
        )

    def channel_timeouts(self, session: Session) -> ChannelTimeouts:
        return ChannelTimeouts(session, clock=self.rt.clock, dispatcher=self.dispatcher)

    def receipts(self, session: Session) -> ReceiptService:
        return ReceiptService(
            session, clock=self.rt.clock, providers=self.adapters, dispatcher=self.dispatcher
        )

    def voice(self, session: Session) -> VoiceService:
        return VoiceService(
            session,
            clock=self.rt.clock,
            sealer=self.rt.sealer,
            providers=self.adapters,
            public_url=self.rt.settings.public_url,
        )
