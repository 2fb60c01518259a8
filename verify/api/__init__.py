"""The HTTP API: flask-smorest blueprints (thin: parse, call the domain, serialize)."""

from __future__ import annotations

import flask
from flask_smorest import Api

from verify.api import (
    attempts,
    callbacks,
    context,
    dev,
    fraud_decisions,
    fraud_rules,
    meta,
    providers,
    rate_limits,
    safe_list,
    services,
    verifications,
    webhooks,
)

TENANT_BLUEPRINTS = (
    services.blp,
    verifications.blp,
    webhooks.blp,
    providers.blp,
    attempts.blp,
    fraud_rules.blp,
    fraud_decisions.blp,
    safe_list.blp,
    rate_limits.blp,
)
# Public: the provider's own signature authenticates a delivery receipt (no tenant credentials).
PUBLIC_BLUEPRINTS = (callbacks.blp,)


def register(app: flask.Flask, api: Api) -> None:
    api.spec.components.security_scheme("basicAuth", {"type": "http", "scheme": "basic"})
    for blp in (*TENANT_BLUEPRINTS, *PUBLIC_BLUEPRINTS):
        api.register_blueprint(blp)
    app.register_blueprint(meta.blp)
    app.register_blueprint(dev.blp)
    app.after_request(context.rate_limit_headers)  # a start's RateLimit-* headers
