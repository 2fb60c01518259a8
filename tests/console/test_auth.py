"""The console's guard: sign-in with the operator token, the session cookie, CSRF, throttling."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import flask
import pytest

from tests.console.conftest import Console, csrf_of
from verify.app import create_app
from verify.config import Settings
from verify.domain.clock import FrozenClock
from verify.runtime import Runtime

SAMPLE = "VE" + "0" * 32


def console_rules(app: flask.Flask, method: str) -> list[str]:
    """Every console URL taking ``method``, except the sign-in page and the stylesheet."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/console") or rule.endpoint.startswith("rq_dashboard"):
            continue
        if rule.endpoint in ("console.login", "console.login_submit", "console.static"):
            continue
        if method in (rule.methods or ()):
            out.append(
                re.sub(r"<(int:)?[^>]+>", lambda m: "1" if m.group(1) else SAMPLE, rule.rule)
            )
    return out


def test_every_page_redirects_to_sign_in(app: flask.Flask, anonymous: Console) -> None:
    """Each console page, asked for without a session, sends the browser to the sign-in page."""
    pages = console_rules(app, "GET")
    assert "/console/verifications" in pages
    for path in pages:
        response = anonymous.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/console/login?next=/console"), path


def test_every_form_refuses_without_a_session(app: flask.Flask, anonymous: Console) -> None:
    """A POST without a session changes nothing: 401 (no redirect that a script would follow)."""
    anonymous.get("/console/login")  # a session with a CSRF token, but not signed in
    for path in console_rules(app, "POST"):
        response = anonymous.post(path, {"csrf_token": "x"})
        assert response.status_code == 401, path


def test_sign_in_and_out(anonymous: Console) -> None:
    """The right token opens the console and returns to the page asked for; signing out closes it."""
    page = anonymous.get("/console/verifications?status=pending")
    target = page.headers["Location"].split("next=", 1)[1]
    response = anonymous.login(next="/console/verifications?status=pending")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/verifications?status=pending"
    assert target.startswith("/console/verifications")
    assert "Sign out" in anonymous.html("/console/verifications")

    response = anonymous.post("/console/logout")
    assert response.status_code == 302
    assert anonymous.get("/console/verifications").status_code == 302
    assert "You are signed out." in anonymous.html("/console/login")


def test_wrong_token_is_refused(anonymous: Console) -> None:
    response = anonymous.login(token="not-the-operator-token-at-all")
    assert response.status_code == 401
    assert "That is not the operator token." in response.get_data(as_text=True)
    assert anonymous.get("/console/verifications").status_code == 302


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/v2/Services", "/\\evil"]
)
def test_sign_in_never_redirects_outside_the_console(anonymous: Console, target: str) -> None:
    response = anonymous.login(next=target)
    assert response.headers["Location"] == "/console/verifications"


def test_session_cookie_flags(anonymous: Console) -> None:
    """HttpOnly, SameSite=Lax, scoped to /console; not Secure in test mode (plain-HTTP dev server)."""
    response = anonymous.login()
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("verify_console=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_in_production(settings: Settings, runtime: Runtime) -> None:
    prod = replace(settings, env="production")
    runtime.settings = prod
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        app = create_app(prod, runtime=runtime)  # production configures JSON logging: undone below
    finally:
        root.handlers[:], root.level = handlers, level
    cookie = Console(app, prod).login().headers["Set-Cookie"]
    assert "; Secure" in cookie


def test_forged_form_is_rejected(console: Console) -> None:
    """A form without this session's CSRF token (another site's form) is refused and does nothing."""
    response = console.client.post("/console/logout", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert "Form rejected" in response.get_data(as_text=True)
    response = console.client.post("/console/logout", data={})
    assert response.status_code == 400
    assert console.get("/console/verifications").status_code == 200  # still signed in


def test_sign_in_form_needs_its_csrf_token(anonymous: Console, settings: Settings) -> None:
    """Login CSRF: a sign-in posted from elsewhere (no token from our form) is refused."""
    response = anonymous.client.post("/console/login", data={"token": settings.operator_token})
    assert response.status_code == 400
    assert anonymous.get("/console/verifications").status_code == 302


def test_signing_in_replaces_the_csrf_token(anonymous: Console) -> None:
    """A token known before sign-in (planted, say) is worthless after it."""
    before = csrf_of(anonymous.html("/console/login"))
    anonymous.login()
    assert anonymous.csrf != before
    assert anonymous.client.post("/console/logout", data={"csrf_token": before}).status_code == 400


def test_sessions_end_after_twelve_hours(console: Console, clock: FrozenClock) -> None:
    clock.advance(11 * 3600)
    assert console.get("/console/verifications").status_code == 200
    clock.advance(3600)
    assert console.get("/console/verifications").status_code == 302


def test_rotating_the_operator_token_signs_everyone_out(
    console: Console, runtime: Runtime, settings: Settings
) -> None:
    runtime.settings = replace(settings, operator_token="a-brand-new-operator-token-0123456789")
    assert console.get("/console/verifications").status_code == 302


def test_failed_sign_ins_are_throttled(anonymous: Console, settings: Settings) -> None:
    """Ten wrong tokens from one address, then even the right one waits (429 with Retry-After)."""
    for _ in range(10):
        assert anonymous.login(token="wrong-token-wrong-token-wrong").status_code == 401
    response = anonymous.login()
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 900
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    other = Console(anonymous.app, settings)
    other.client.environ_base["REMOTE_ADDR"] = "10.0.0.9"
    assert other.login().status_code == 302  # another address is not held back


def test_pages_are_not_cached_or_framed(console: Console) -> None:
    response = console.get("/console/verifications")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src" not in response.headers["Content-Security-Policy"]  # default-src 'none'
