"""rq-dashboard at /console/rq, behind the console's sign-in, on the runtime's Redis connection.

rq-dashboard has no authentication of its own and opens its own Redis connections from
``RQ_DASHBOARD_REDIS_URL``; here it gets neither choice. Its request hook that picks a connection is
replaced, for this app only, by the console's guard and the runtime's client. Its scripts send a
``_csrf_token`` cookie's value back as ``X-CSRFToken`` on every POST: the cookie carries the
session's CSRF token, and every state-changing dashboard request must present it.
"""

from __future__ import annotations

import flask
import rq_dashboard
from rq_dashboard import web as rq_web
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from verify.console import auth
from verify.runtime import Runtime

NAME = "rq_dashboard"
URL_PREFIX = "/console/rq"
# rq-dashboard changes state on these, and takes one of them (requeue all) by GET as well.
_UNSAFE_ENDPOINTS = frozenset({f"{NAME}.requeue_all"})


def mount(app: flask.Flask, runtime: Runtime) -> None:
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    # Shown in its instance selector; the connection itself is the runtime's client.
    app.config["RQ_DASHBOARD_REDIS_URL"] = (
        f"queues of this service ({runtime.settings.queue_name})",
    )
    setattr(app, "redis_conn", runtime.redis)  # noqa: B010 - where rq-dashboard looks for it
    hooks = app.before_request_funcs[NAME]
    hooks[:] = [_guard, *(h for h in hooks if h is not rq_web.push_rq_connection), _one_instance]
    app.after_request_funcs[NAME].append(_csrf_cookie)
    app.url_build_error_handlers.append(_app_static)


def _guard() -> Response | tuple[str, int] | None:
    request = flask.request
    if not auth.signed_in():
        if request.method == "GET" and "/data/" not in request.path:
            target = request.full_path.rstrip("?")
            return flask.redirect(flask.url_for("console.login", next=target))
        return flask.Response("Sign in to the console first.\n", 401, mimetype="text/plain")
    if request.method != "GET" or request.endpoint in _UNSAFE_ENDPOINTS:
        try:
            auth.check_csrf()
        except auth.CsrfRejected:
            return flask.Response("Missing or wrong CSRF token.\n", 403, mimetype="text/plain")
    return None


def _one_instance() -> None:
    """Only the runtime's Redis: the dashboard's other "instances" do not exist here."""
    number = (flask.request.view_args or {}).get("instance_number")
    if number not in (None, 0):
        raise NotFound()


def _csrf_cookie(response: flask.Response) -> flask.Response:
    if auth.signed_in():
        response.set_cookie(
            auth.CSRF_COOKIE,
            auth.csrf_token(),
            path=URL_PREFIX,
            secure=flask.current_app.config["SESSION_COOKIE_SECURE"],
            httponly=False,  # the dashboard's script reads it
            samesite="Strict",
        )
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _app_static(error: Exception, endpoint: str, values: dict[str, object]) -> str:
    """rq-dashboard asks for the app's ``static`` endpoint (its favicon); this app has none."""
    if endpoint == "static":
        return flask.url_for(f"{NAME}.static", filename=str(values.get("filename", "")))
    raise error
