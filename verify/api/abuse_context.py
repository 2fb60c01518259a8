"""Per-request wiring for the abuse-control views (fraud rules and decisions, the safe list, rate
limits): the registries built from the Runtime, and the caller's account."""

from __future__ import annotations

import flask

from verify import abuse
from verify.abuse.rate_limits import RateLimits
from verify.abuse.registry import FraudRules
from verify.abuse.safe_list import SafeList
from verify.api import context

FORM = "application/x-www-form-urlencoded"


def url(path: str) -> str:
    return flask.request.host_url.rstrip("/") + path


def controls() -> abuse.AbuseControls:
    return abuse.controls_for(context.runtime())


def fraud_rules() -> FraudRules:
    rt = context.runtime()
    actor = context.principal().credential_sid
    return FraudRules(context.session(), rt.clock, controls().cache, actor)


def safe_list() -> SafeList:
    return SafeList(context.session(), context.runtime().clock, controls().cache)


def rate_limits() -> RateLimits:
    return RateLimits(context.session(), context.runtime().clock, controls().cache)


def account() -> str:
    return context.principal().account_sid
