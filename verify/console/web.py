"""The console blueprint: the sign-in guard, CSRF on every form, security headers, HTML errors,
and the sign-in and sign-out pages. The other pages register themselves on ``blp``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import flask
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from verify.api import context
from verify.console import auth
from verify.domain.destinations import mask
from verify.errors import VerifyError

blp = flask.Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

PUBLIC = frozenset({"console.login", "console.login_submit", "console.static"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# No script, no inline style, no framing: the pages are plain HTML and one stylesheet.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def render(template: str, status_code: int = 200, /, **values: Any) -> tuple[str, int]:
    return flask.render_template(f"console/{template}", **values), status_code


def error_page(status: int, title: str, detail: str) -> tuple[str, int]:
    return render("error.html", status, title=title, detail=detail)


def login_redirect() -> Response:
    target = flask.request.full_path.rstrip("?")
    return flask.redirect(flask.url_for("console.login", next=target))


@blp.before_request
def _guard() -> Response | tuple[str, int] | None:
    method = flask.request.method
    if flask.request.endpoint in PUBLIC:
        if method not in SAFE_METHODS:
            auth.check_csrf()
        return None
    if not auth.signed_in():
        if method in SAFE_METHODS:
            return login_redirect()
        return error_page(401, "Signed out", "Your session has ended. Sign in again.")
    if method not in SAFE_METHODS:
        auth.check_csrf()
    return None


@blp.after_request
def _headers(response: flask.Response) -> flask.Response:
    if flask.request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@blp.app_template_filter("when")
def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S")


@blp.app_template_filter("masked")
def _masked(value: str | None) -> str:
    return mask(value) if value else "—"


@blp.context_processor
def _globals() -> dict[str, Any]:
    return {
        "csrf_token": auth.csrf_token,
        "csrf_field": auth.CSRF_FIELD,
        "development": context.runtime().settings.is_development,
        "signed_in": auth.signed_in(),
        "available_pages": flask.current_app.view_functions.keys(),
    }


@blp.errorhandler(auth.CsrfRejected)
def _csrf_rejected(_: auth.CsrfRejected) -> tuple[str, int]:
    return error_page(
        400,
        "Form rejected",
        "This form did not come from this console session (or the session has changed). "
        "Go back, reload the page and try again.",
    )


@blp.errorhandler(VerifyError)
def _verify_error(err: VerifyError) -> tuple[str, int]:
    return error_page(err.status, err.title, err.detail)


@blp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    return error_page(exc.code or 500, exc.name, exc.description or exc.name)


# -- sign-in ---------------------------------------------------------------------------------------


@blp.get("/login")
def login() -> Response | tuple[str, int]:
    if auth.signed_in():
        return flask.redirect(auth.safe_next(flask.request.args.get("next")) or _home())
    return render("login.html", next=auth.safe_next(flask.request.args.get("next")))


@blp.post("/login")
def login_submit() -> Response | tuple[str, int]:
    address = flask.request.remote_addr or "unknown"
    throttle = auth.throttle()
    target = auth.safe_next(flask.request.form.get("next"))
    try:
        throttle.check(address)
    except auth.TooManyAttempts as exc:
        page, status = render(
            "login.html",
            429,
            next=target,
            error=f"Too many failed sign-ins from this address. Try again in {exc.retry_after} s.",
        )
        return flask.Response(page, status, headers={"Retry-After": str(exc.retry_after)})
    if not auth.token_matches(flask.request.form.get("token", "")):
        throttle.failed(address)
        return render("login.html", 401, next=target, error="That is not the operator token.")
    throttle.succeeded(address)
    auth.sign_in()
    return flask.redirect(target or _home())


@blp.post("/logout")
def logout() -> Response:
    auth.sign_out()
    flask.flash("You are signed out.", "info")
    return flask.redirect(flask.url_for("console.login"))


@blp.get("/")
def home() -> Response:
    return flask.redirect(_home())


def _home() -> str:
    return flask.url_for("console.verifications")
