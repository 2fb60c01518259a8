"""The operator console: server-rendered pages at /console and the RQ dashboard at /console/rq,
both behind the operator's sign-in (docs/console.md)."""

from __future__ import annotations

from datetime import timedelta

import flask

from verify.console import auth, fraud, limits, operations, rq, verifications, web, webhooks
from verify.runtime import Runtime

__all__ = ["fraud", "init_app", "limits", "operations", "verifications", "webhooks"]


def init_app(app: flask.Flask, runtime: Runtime) -> None:
    """Register the console and the dashboard; configure the session cookie they share."""
    app.config.update(
        # The session exists for the console alone: scope the cookie to it.
        SESSION_COOKIE_NAME="verify_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=runtime.settings.env == "production",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=auth.SESSION_HOURS),
    )
    app.register_blueprint(web.blp)
    rq.mount(app, runtime)
