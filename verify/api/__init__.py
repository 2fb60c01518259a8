"""The HTTP API: flask-smorest blueprints (thin: parse, call the domain, serialize)."""

from __future__ import annotations

import flask
from flask_smorest import Api

from verify.api import dev, meta, services, verifications

TENANT_BLUEPRINTS = (services.blp, verifications.blp)


def register(app: flask.Flask, api: Api) -> None:
    api.spec.components.security_scheme("basicAuth", {"type": "http", "scheme": "basic"})
    for blp in TENANT_BLUEPRINTS:
        api.register_blueprint(blp)
    app.register_blueprint(meta.blp)
    app.register_blueprint(dev.blp)
