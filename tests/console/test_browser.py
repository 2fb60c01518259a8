"""The console in a real browser: headless Chromium driven by Playwright (tests/browser.py), against
the app on a socket, messages delivered by a real RQ worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import flask
import pytest

from tests.browser import Browser, Page, Shots, expect, new_page
from tests.conftest import ApiClient, Tenant, delivered_code, make_tenant
from tests.console.conftest import Receiver, deliver_everything, start
from verify.config import Settings
from verify.domain.clock import FrozenClock
from verify.runtime import Runtime

ADA, BOB = "+14155550123", "+14155550199"

# The browser exercises pages, not storage (the test-client tests run on both backends).
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with new_page(browser, viewport={"width": 1280, "height": 800}) as page:
        yield page


@pytest.fixture
def shots(page: Page, tmp_path: Path, request: pytest.FixtureRequest) -> Shots:
    return Shots.for_test(page, tmp_path, request, "console")


def sign_in(page: Page, live_server: str, settings: Settings, shots: Shots) -> None:
    page.goto(f"{live_server}/console/")
    expect(page.locator("h1")).to_have_text("Verify console")
    shots("sign-in")
    page.fill("#token", "not the token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".flash.error")).to_have_text("That is not the operator token.")
    page.fill("#token", settings.operator_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h1")).to_have_text("Verifications")


@pytest.fixture
def story(
    api: ApiClient, app: flask.Flask, runtime: Runtime, work: Callable[[], None], clock: FrozenClock
) -> dict[str, str]:
    """Ada's code arrived and she typed it (after one typo); a second tenant's verification to
    her is still queued; Bob's was canceled before any worker ran."""
    approved = start(api, ADA)
    clock.advance(1)
    work()
    code = delivered_code(runtime, ADA)
    clock.advance(20)
    api.check("1" * len(code) if code != "1" * len(code) else "2" * len(code), ADA)
    clock.advance(5)
    api.check(code, ADA)
    clock.advance(60)
    other = ApiClient(app, make_tenant(runtime, "Globex"))
    queued = start(other, ADA, "call")
    bob = start(api, BOB)
    api.post(f"{api.base}/Verifications/{bob}", {"Status": "canceled"})
    return {"approved": approved, "queued": queued, "bob": bob, "code": code}


def test_operator_finds_a_number_and_sees_why(
    page: Page,
    live_server: str,
    settings: Settings,
    story: dict[str, str],
    shots: Shots,
) -> None:
    """Knowing only Ada's number: sign in, search, open each verification, read the answer."""
    sign_in(page, live_server, settings, shots)
    shots("verifications")

    page.fill("#q", ADA)
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".summary")).to_contain_text(f"2 verifications to {ADA}")
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("+14*****0123")
    shots("search-by-number")

    page.click(f"text={story['approved']}")
    expect(page.locator("#diagnosis")).to_contain_text("The code arrived")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Wrong code entered")
    expect(timeline).to_contain_text("Right code entered: approved")
    expect(page.locator("main")).not_to_contain_text(story["code"])
    shots("timeline-approved")

    page.go_back()
    page.click(f"text={story['queued']}")
    expect(page.locator("#diagnosis")).to_contain_text("Still queued: no worker has picked it up")
    shots("timeline-queued")

    page.click("text=All verifications to this destination")
    expect(rows).to_have_count(2)

    page.fill("#q", "+14*****0199")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    page.click(f"text={story['bob']}")
    expect(page.locator("#diagnosis")).to_contain_text("the verification ended first")

    page.click("nav >> text=Outbox")
    expect(page.locator("#outbox")).to_contain_text(story["code"])  # development only
    shots("outbox")

    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".flash.info")).to_have_text("You are signed out.")
    page.goto(f"{live_server}/console/verifications")
    expect(page.locator("h1")).to_have_text("Verify console")


def test_rq_dashboard_behind_the_console_sign_in(
    page: Page, live_server: str, settings: Settings, api: ApiClient, shots: Shots
) -> None:
    """Anonymous: the sign-in page, never the dashboard. Signed in: the service's queue and its job."""
    start(api, ADA)
    page.goto(f"{live_server}/console/rq/")
    expect(page.locator("h1")).to_have_text("Verify console")
    page.fill("#token", settings.operator_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server}/console/rq/")
    queue = page.locator("#queues tbody tr", has_text="verify")
    expect(queue).to_contain_text("1")
    shots("rq-queues")
    page.goto(f"{live_server}/console/rq/0/view/jobs/verify/queued/8/asc/1")
    expect(page.locator("#jobs")).to_contain_text("deliver VL")
    expect(page.locator("#jobs")).not_to_contain_text("4155550123")
    shots("rq-jobs")

    # Its scripts post with the X-CSRFToken header from the _csrf_token cookie: actions work.
    page.click("[data-role=delete-job-btn]")
    page.click("#confirmation-modal-yes")
    expect(page.locator("#jobs")).not_to_contain_text("deliver VL")


def test_replay_a_webhook_and_edit_a_fraud_rule(
    page: Page,
    live_server: str,
    settings: Settings,
    api: ApiClient,
    tenant: Tenant,
    endpoint: str,
    receiver: Receiver,
    runtime: Runtime,
    work: Callable[[], None],
    shots: Shots,
) -> None:
    """The tenant's receiver was down: its deliveries are dead. It is back: one replay, then all.
    Then block a country in the account's geo permissions, and the API refuses a send there."""
    verification = start(api, ADA)
    deliver_everything(work)
    sign_in(page, live_server, settings, shots)

    page.click("nav >> text=Webhooks")
    expect(page.locator("#endpoints")).to_contain_text("Acme hooks")
    dead = page.locator("#deliveries tbody tr")
    expect(dead.first).to_contain_text("dead")
    count = dead.count()
    assert count >= 2
    shots("webhooks-dead")

    receiver.status = 200
    dead.first.locator('a[href^="/console/webhooks/"]').click()
    expect(page.locator("#attempts")).to_contain_text("HTTP 500")
    page.get_by_role("button", name="Replay this delivery").click()
    expect(page.locator(".flash.success")).to_contain_text("is queued to be sent again")
    deliver_everything(work)
    page.reload()
    expect(page.locator("#attempts")).to_contain_text("HTTP 200")
    expect(page.locator("h1 .badge")).to_have_text("succeeded")
    shots("webhook-replayed")

    page.click("text=← Webhook deliveries")
    page.get_by_role("button", name=f"Replay {count - 1} dead").click()
    expect(page.locator(".flash.success")).to_contain_text(f"{count - 1} dead deliver")
    deliver_everything(work)
    page.reload()
    expect(page.locator("#endpoints")).to_have_count(0)
    expect(page.locator("#deliveries")).not_to_contain_text("dead")
    assert len(receiver.taken) == count == len(set(receiver.taken))
    shots("webhooks-recovered")

    page.goto(f"{live_server}/console/verifications/{verification}")
    expect(page.locator("#timeline")).to_contain_text(f"to Acme hooks ({endpoint}): HTTP 200")
    shots("timeline-with-webhooks")

    page.click("nav >> text=Fraud rules")
    expect(page.locator("main")).to_contain_text("The built-in default applies")
    page.fill("#geo-allow", "US, CA")
    page.get_by_role("button", name="Set geo permissions").click()
    expect(page.locator("#geo")).to_contain_text("CA, US")
    page.locator("#geo").get_by_role("link", name="Edit").click()
    page.fill("#geo-allow", "CA")
    page.fill("#geo-block", "US")
    page.fill("#description", "US paused after a pumping attack")
    shots("fraud-rule-edit")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash.success")).to_contain_text("(geo_permissions) saved")
    expect(page.locator("#changes")).to_contain_text("updated")
    shots("fraud-rules")
    refused = api.start("+14155550124")
    assert refused.status_code == 403
    assert refused.get_json()["code"] == 60605

    page.click("nav >> text=Rate limits")
    page.fill("#number", ADA)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#limits")).to_contain_text("5 / 600 s")
    shots("rate-limits")
    page.click("nav >> text=Providers")
    expect(page.locator("#providers")).to_contain_text("Console (built-in)")
    shots("providers")
