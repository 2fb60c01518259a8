"""The HTTP API: flask-smorest blueprints (thin: parse, call the domain, serialize)."""

from __future__ import annotations

import flask
from flask_smorest import Api

from verify.api import context, dev, meta, services, verifications

TENANT_BLUEPRINTS = (services.blp, verifications.blp)


def _tenant_guard() -> flask.Response | None:
    context.authenticate_tenant()
    return context.begin_idempotent()


def register(app: flask.Flask, api: Api) -> None:
    api.spec.components.security_scheme("basicAuth", {"type": "http", "scheme": "basic"})
    for blp in TENANT_BLUEPRINTS:
        blp.before_request(_tenant_guard)
        blp.after_request(context.finish_idempotent)
        api.register_blueprint(blp)
    app.register_blueprint(meta.blp)
    app.register_blueprint(dev.blp)
