"""The application factory: builds the Flask app around a Runtime. Nothing happens at import time."""

from __future__ import annotations

import gc

import flask
from flask_swagger_ui import get_swaggerui_blueprint

from verify import __version__, api, console
from verify.api import context, parsing, problems
from verify.config import Settings
from verify.domain.accounts import CredentialCache
from verify.logs import configure_logging
from verify.runtime import Runtime, build_runtime


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> flask.Flask:
    app = flask.Flask("verify")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=64 * 1024,
        API_TITLE="Verify",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "security": [{"basicAuth": []}],
            "info": {
                "description": "A self-hosted, Twilio Verify v2 compatible one-time-code service."
            },
        },
    )
    if settings.env != "test":
        configure_logging(settings.log_level)
    app.extensions["verify"] = runtime or build_runtime(settings)
    app.extensions["verify.credentials"] = CredentialCache()

    smorest = problems.VerifyApi(app)
    api.register(app, smorest)
    problems.register(app)
    app.register_blueprint(
        get_swaggerui_blueprint("/docs", "/openapi.json", config={"app_name": "Verify API"}),
        url_prefix="/docs",
    )
    console.init_app(app, app.extensions["verify"])
    app.before_request(context.start_request)
    app.before_request(parsing.refuse_unstorable_in_request)
    app.after_request(context.end_request)
    app.teardown_appcontext(context.close_session)
    return app


def create_app_from_env() -> flask.Flask:
    """For WSGI servers given a factory (``gunicorn 'verify.app:create_app_from_env()'``)."""
    app = create_app(Settings.from_env())
    # Everything built so far lives as long as the process: keep it out of the collector's full
    # passes, which otherwise pause a worker for tens of milliseconds.
    gc.freeze()
    return app
