"""The sample app (examples/login_flow) in a real browser: headless Chromium driven by Playwright
(tests/browser.py), against the Verify app on a socket, codes delivered by a real RQ worker and read
from the outbox.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.browser import Browser, Page, Shots, expect, new_page
from tests.conftest import Tenant, delivered_code
from verify.domain.clock import FrozenClock
from verify.runtime import Runtime

APP_FILE = Path(__file__).resolve().parents[2] / "examples" / "login_flow" / "app.py"
PHONE, EMAIL, PASSWORD = "+14155550111", "ada@example.com", "correct horse battery"

# The browser exercises the sample app and the client, not the storage: one backend is enough.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _load_sample_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("login_flow_app", APP_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def site_factory(live_server: str, tenant: Tenant, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start the sample app on a free port, configured for the live Verify and the tenant."""
    servers: list[Any] = []

    def start(**config: Any) -> str:
        app = _load_sample_app().create_app(
            {
                "VERIFY_URL": live_server,
                "VERIFY_ACCOUNT_SID": tenant.account_sid,
                "VERIFY_AUTH_TOKEN": tenant.auth_token,
                "VERIFY_SERVICE_SID": tenant.service_sid,
                "DATABASE": str(tmp_path / "users.db"),
                "SECRET_KEY": "test-only",
                **config,
            }
        )
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, app))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, app in servers:
        server.shutdown()
        app.extensions["verify"].close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with new_page(browser) as page:
        yield page


@pytest.fixture
def shots(page: Page, tmp_path: Path, request: pytest.FixtureRequest) -> Shots:
    return Shots.for_test(page, tmp_path, request)


def wrong(code: str) -> str:
    return "1" * len(code) if code != "1" * len(code) else "2" * len(code)


def sign_up(
    page: Page, site: str, work: Callable[[], None], runtime: Runtime, shots: Shots
) -> None:
    page.goto(f"{site}/signup")
    page.fill("#username", "ada")
    page.fill("#password", PASSWORD)
    page.fill("#phone", PHONE)
    page.fill("#email", EMAIL)
    shots("signup")
    page.click("text=Send me a code")
    expect(page.locator("main")).to_contain_text("We sent a code by text message to +1•••••0111")
    work()
    page.fill("#code", delivered_code(runtime, PHONE))
    page.click("text=Verify")
    expect(page.locator("h1")).to_have_text("Welcome, ada")
    expect(page.locator("main")).to_contain_text(f"Verified phone: {PHONE}")
    shots("signed-up")


def sign_in_with_password(page: Page, shots: Shots) -> None:
    page.click("text=Sign out")
    expect(page.locator(".flash.info")).to_have_text("You are signed out.")
    page.fill("#username", "ada")
    page.fill("#password", "not the password")
    page.click("text=Continue")
    expect(page.locator(".flash.error")).to_have_text("Wrong username or password.")
    page.fill("#username", "ada")
    page.fill("#password", PASSWORD)
    page.click("text=Continue")
    expect(page.locator("h1")).to_have_text("Confirm it's you")
    shots("method")


def test_sign_up_then_sign_in_by_sms(
    page: Page,
    site_factory: Callable[..., str],
    work: Callable[[], None],
    runtime: Runtime,
    shots: Shots,
) -> None:
    """Sign up (phone verified), sign out, password, SMS code: a wrong one, then the right one."""
    site = site_factory()
    sign_up(page, site, work, runtime, shots)
    sign_in_with_password(page, shots)

    page.check("input[value=sms]")
    page.click("text=Send code")
    expect(page.locator("h1")).to_have_text("Enter your code")
    resend = page.locator("#resend")
    expect(resend).to_be_disabled()
    expect(resend).to_contain_text("Resend code in")
    shots("code")

    work()
    code = delivered_code(runtime, PHONE)
    page.fill("#code", wrong(code))
    page.click("text=Verify")
    expect(page.locator(".flash.error")).to_have_text(
        "That code isn't right. Check the message and try again."
    )
    shots("wrong-code")

    page.fill("#code", code)
    page.click("text=Verify")
    expect(page.locator("h1")).to_have_text("Welcome, ada")
    shots("dashboard")


def test_sign_in_by_email_after_the_code_expired(
    page: Page,
    site_factory: Callable[..., str],
    work: Callable[[], None],
    runtime: Runtime,
    clock: FrozenClock,
    shots: Shots,
) -> None:
    """Email as the second step; an expired code says so, and the resend button (after its
    countdown) sends a new one that works."""
    site = site_factory(RESEND_COOLDOWN=2)
    sign_up(page, site, work, runtime, shots)
    sign_in_with_password(page, shots)

    page.check("input[value=email]")
    page.click("text=Send code")
    expect(page.locator("main")).to_contain_text("We sent a code by email to a•••@example.com.")
    work()
    code = delivered_code(runtime, EMAIL)

    clock.advance(601)  # the code's ten minutes are over
    page.fill("#code", code)
    page.click("text=Verify")
    expect(page.locator(".flash.error")).to_have_text("This code has expired. Send a new one.")
    shots("expired")

    resend = page.locator("#resend")
    expect(resend).to_be_enabled(timeout=5_000)  # after the 2 s countdown
    resend.click()
    expect(page.locator(".flash.info")).to_have_text(
        "We sent a new code by email to a•••@example.com."
    )
    shots("resent")
    work()
    fresh = delivered_code(runtime, EMAIL)
    page.fill("#code", fresh)
    page.click("text=Verify")
    expect(page.locator("h1")).to_have_text("Welcome, ada")


def test_messages_for_a_bad_number_and_too_many_wrong_codes(
    page: Page,
    site_factory: Callable[..., str],
    work: Callable[[], None],
    runtime: Runtime,
    shots: Shots,
) -> None:
    site = site_factory()
    page.goto(f"{site}/signup")
    page.fill("#username", "bob")
    page.fill("#password", PASSWORD)
    page.fill("#phone", "4155550123")
    page.fill("#email", "bob@example.com")
    page.click("text=Send me a code")
    expect(page.locator(".flash.error")).to_contain_text(
        "This phone number can't be used: phone numbers must be in E.164 format"
    )
    expect(page.locator("#username")).to_have_value("bob")  # the form keeps what was typed
    shots("bad-number")

    page.fill("#password", PASSWORD)
    page.fill("#phone", "+14155550122")
    page.click("text=Send me a code")
    work()
    code = delivered_code(runtime, "+14155550122")
    for _ in range(5):
        page.fill("#code", wrong(code))
        page.click("text=Verify")
    expect(page.locator(".flash.error")).to_have_text(
        "Too many wrong codes. Send a new code to try again."
    )
    shots("too-many-attempts")
    page.goto(f"{site}/dashboard")
    expect(page.locator("h1")).to_have_text("Sign in")  # nothing was saved, nobody signed in
