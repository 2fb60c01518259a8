"""Console pages for running the service: providers with their circuit state and recent results,
and the development outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import flask
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from verify.api import context
from verify.console import queries, services
from verify.console.web import blp, render
from verify.delivery.console import outbox_for
from verify.delivery.routing import CONSOLE
from verify.models.delivery import Provider

OUTBOX_LIMIT = 100
STATS_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class ProviderRow:
    key: str  # the provider's sid, or "console" for the built-in one
    provider: Provider | None  # None: the built-in console provider
    circuits: dict[str, dict[str, str]]  # its breakers with a history: <key>[:<country>] -> state
    stats: queries.ProviderStats

    @property
    def state(self) -> str:
        """The worst of its breakers."""
        states = {c.get("state", "closed") for c in self.circuits.values()}
        return next((s for s in ("open", "half_open") if s in states), "closed")

    @property
    def resting(self) -> list[tuple[str, str]]:
        """(where, state) of each breaker that is not closed: a country, or every destination."""
        return [
            (name.partition(":")[2] or "every destination", c["state"])
            for name, c in self.circuits.items()
            if c.get("state", "closed") != "closed"
        ]

    @property
    def window(self) -> tuple[int, int]:
        """Calls failed and made in the breakers' current windows."""
        failed = sum(int(c.get("failed", 0)) for c in self.circuits.values())
        return failed, sum(int(c.get("total", 0)) for c in self.circuits.values())


@blp.get("/providers")
def providers() -> tuple[str, int]:
    rt = context.runtime()
    session = context.session()
    breakers = services.circuit_breakers()
    stats = queries.provider_stats(session, rt.clock.now() - STATS_WINDOW)
    rows = [
        ProviderRow(p.sid, p, breakers.states(p.sid), stats.get(p.sid, queries.ProviderStats()))
        for p in queries.providers(session)
    ]
    if rt.settings.is_development or CONSOLE in stats:
        console = stats.get(CONSOLE, queries.ProviderStats())
        rows.append(ProviderRow(CONSOLE, None, breakers.states(CONSOLE), console))
    return render("providers.html", rows=rows, hours=int(STATS_WINDOW.total_seconds() // 3600))


@blp.post("/providers/<key>/reset-circuit")
def reset_circuit(key: str) -> Response:
    """Close a provider's circuits now, for every country (after the operator fixed its
    credentials, say)."""
    known = {p.sid for p in queries.providers(context.session())} | {CONSOLE}
    if key not in known:
        raise NotFound(f"No provider {key}.")
    services.circuit_breakers().reset(key)
    flask.flash(f"The circuit of {key} is closed: workers send to it again.", "success")
    return flask.redirect(flask.url_for("console.providers"))


@blp.get("/outbox")
def outbox() -> tuple[str, int]:
    """What the console provider "sent". Message bodies (with their codes) only outside production:
    this page is the one place in the console that shows a code, as ``/dev/outbox`` does."""
    rt = context.runtime()
    if not rt.settings.is_development:
        return render("outbox.html", entries=None)
    return render("outbox.html", entries=outbox_for(rt).read(OUTBOX_LIMIT))
