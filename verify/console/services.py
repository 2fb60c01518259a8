"""Wiring for the console's pages: the other areas' domain services, built from the Runtime.

Each call builds a service on the request's session; every one of them owns its transactions, so
console code reads its own rows inside ``with session.begin()`` blocks and never holds one open.
"""

from __future__ import annotations

from verify import abuse
from verify.abuse.gate import AbuseControls
from verify.abuse.registry import FraudRules
from verify.api import context
from verify.delivery.circuit import CircuitBreakers, Policy
from verify.events import ssrf
from verify.events.relay import WebhookQueue
from verify.events.webhooks import WebhookService

CONSOLE_ACTOR = "console"


def webhooks() -> WebhookService:
    rt = context.runtime()
    return WebhookService(
        context.session(),
        clock=rt.clock,
        sealer=rt.sealer,
        allow=ssrf.parse_networks(rt.settings.webhook_allow_networks),
        dispatcher=WebhookQueue(rt.queue),
    )


def abuse_controls() -> AbuseControls:
    return abuse.controls_for(context.runtime())


def fraud_rules() -> FraudRules:
    """Changes made here are audited with the actor ``console`` (the operator)."""
    rt = context.runtime()
    return FraudRules(context.session(), rt.clock, abuse_controls().cache, CONSOLE_ACTOR)


def circuit_breakers() -> CircuitBreakers:
    """For reading and resetting breakers; the policy only matters to the workers that trip them."""
    return CircuitBreakers(context.runtime().redis, Policy())
