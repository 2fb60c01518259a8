"""The verification search and one verification's timeline."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import flask
import pytest
from sqlalchemy.orm import Session

from tests.conftest import ApiClient, Tenant, delivered_code, make_tenant
from tests.console.conftest import Console, start
from verify.delivery import receipts
from verify.domain.clock import FrozenClock
from verify.models import SendAttempt
from verify.models.delivery import DeliveryReceipt
from verify.runtime import Runtime

ADA, BOB = "+14155550123", "+14155550199"
ROW = re.compile(r'href="/console/verifications/(VE[0-9a-f]{32})"')


def listed(html: str) -> list[str]:
    return ROW.findall(html)


@pytest.fixture
def seeded(api: ApiClient, app: flask.Flask, runtime: Runtime) -> dict[str, str]:
    """Two verifications to Ada (one per service of two tenants), one to Bob."""
    other = ApiClient(app, make_tenant(runtime, "Globex"))
    return {
        "ada": start(api, ADA),
        "ada_other_tenant": start(other, ADA, "call"),
        "bob": start(api, BOB),
    }


def test_search_by_full_number_finds_every_tenants_verifications(
    console: Console, seeded: dict[str, str]
) -> None:
    """An operator who knows only the number finds all its verifications, whoever started them;
    the list shows the number masked."""
    html = console.html("/console/verifications?q=%2B14155550123")
    assert sorted(listed(html)) == sorted([seeded["ada"], seeded["ada_other_tenant"]])
    assert "2 verifications to +14155550123" in html
    rows = html.split("<tbody>", 1)[1]
    assert "+14*****0123" in rows
    assert ADA not in rows


@pytest.mark.parametrize("typed", ["14155550123", "+1 (415) 555-0123", "1 415 555 0123"])
def test_search_normalizes_the_number(console: Console, seeded: dict[str, str], typed: str) -> None:
    """Typed as people type it (no plus, spaces, brackets): normalized as the API normalizes it."""
    html = console.html(f"/console/verifications?q={typed.replace('+', '%2B')}")
    assert sorted(listed(html)) == sorted([seeded["ada"], seeded["ada_other_tenant"]])


def test_search_by_masked_number(console: Console, seeded: dict[str, str]) -> None:
    """What the console shows (+14*****0123) finds what it stands for, and nothing else."""
    html = console.html("/console/verifications?q=%2B14*****0123")
    assert sorted(listed(html)) == sorted([seeded["ada"], seeded["ada_other_tenant"]])
    assert sorted(listed(console.html("/console/verifications?q=*0199"))) == [seeded["bob"]]


def test_search_by_sids(
    console: Console, seeded: dict[str, str], tenant: Tenant, runtime: Runtime
) -> None:
    assert listed(console.html(f"/console/verifications?q={seeded['bob']}")) == [seeded["bob"]]
    with runtime.sessions() as session:
        attempt = session.query(SendAttempt).filter_by(verification_sid=seeded["bob"]).one()
    assert listed(console.html(f"/console/verifications?q={attempt.sid}")) == [seeded["bob"]]
    by_service = listed(console.html(f"/console/verifications?q={tenant.service_sid}"))
    assert sorted(by_service) == sorted([seeded["ada"], seeded["bob"]])
    by_account = listed(console.html(f"/console/verifications?q={tenant.account_sid}"))
    assert sorted(by_account) == sorted([seeded["ada"], seeded["bob"]])


def test_filter_by_status(console: Console, api: ApiClient, seeded: dict[str, str]) -> None:
    api.post(f"{api.base}/Verifications/{seeded['bob']}", {"Status": "canceled"})
    assert listed(console.html("/console/verifications?status=canceled")) == [seeded["bob"]]
    pending = listed(console.html("/console/verifications?status=pending"))
    assert sorted(pending) == sorted([seeded["ada"], seeded["ada_other_tenant"]])


def test_filter_by_date_range(console: Console, api: ApiClient, clock: FrozenClock) -> None:
    """from and to are whole UTC days, both included."""
    old = start(api, ADA)
    clock.advance(3 * 86400)
    new = start(api, BOB)
    console.login()  # three days later the session has ended
    today = clock.now().date()
    since = (today - timedelta(days=1)).isoformat()
    assert listed(console.html(f"/console/verifications?from={since}")) == [new]
    before = (today - timedelta(days=3)).isoformat()
    assert listed(console.html(f"/console/verifications?to={before}")) == [old]
    both = listed(console.html(f"/console/verifications?from={before}&to={today.isoformat()}"))
    assert both == [new, old]  # newest first


def test_pagination(console: Console, api: ApiClient, clock: FrozenClock) -> None:
    """25 a page, newest first, and the pager keeps the search."""
    sids = []
    for n in range(27):
        sids.append(start(api, f"+1415555{n:04d}"))
        clock.advance(901)  # sequential numbers: one per window, or the fraud rules step in
    first = console.html("/console/verifications?q=%2B1415*")
    assert listed(first) == sids[::-1][:25]
    assert "27 verifications" in first
    assert "page 1 of 2" in first
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older
    second = console.html(older.group(1).replace("&amp;", "&"))
    assert listed(second) == sids[::-1][25:]
    assert "q=%2B1415" in older.group(1)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("q=hello", "enter a verification, attempt, service or account sid"),
        ("q=*12", "a masked number needs at least 3 visible characters"),
        ("status=lost", "Invalid parameter `status`: must be one of pending"),
        ("from=yesterday", "Invalid parameter `from`: must be a date, YYYY-MM-DD"),
        ("from=2026-02-02&to=2026-02-01", "must not be after `to`"),
        ("page=0", "Invalid parameter `page`"),
    ],
)
def test_bad_search_says_what_is_wrong(console: Console, query: str, message: str) -> None:
    response = console.get(f"/console/verifications?{query}")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert 'id="q"' in html  # the form is still there


def test_unknown_verification_is_a_404_page(console: Console) -> None:
    response = console.get("/console/verifications/VE" + "0" * 32)
    assert response.status_code == 404
    assert "No verification VE" in response.get_data(as_text=True)


def diagnosis(html: str) -> str:
    found = re.search(r'<p class="diagnosis (\w+)" id="diagnosis">([^<]+)</p>', html)
    assert found
    return f"{found.group(1)}: {found.group(2)}"


def test_timeline_of_an_approved_verification(
    console: Console, api: ApiClient, work: Callable[[], None], runtime: Runtime, clock: FrozenClock
) -> None:
    """Start, delivery, a wrong code, the right code: all on one page, in time order."""
    sid = start(api, ADA)
    clock.advance(2)
    work()
    code = delivered_code(runtime, ADA)
    clock.advance(2)
    api.check("0" * len(code) if code != "0" * len(code) else "1" * len(code), ADA)
    clock.advance(2)
    api.check(code, ADA)
    html = console.html(f"/console/verifications/{sid}")
    assert diagnosis(html).startswith("good: The code arrived")
    timeline = html.split('id="timeline"', 1)[1]
    order = [
        "Verification started (sms)",
        "Send attempt #1 (sms) created",
        "message.sent",
        "Wrong code entered",
        "Right code entered: approved",
        "verification.approved",
    ]
    positions = [timeline.index(text) for text in order]
    assert positions == sorted(positions)
    assert ADA in html  # the detail page names the full number
    assert code not in html


def test_diagnosis_when_no_worker_picked_it_up(console: Console, api: ApiClient) -> None:
    sid = start(api, ADA)
    assert diagnosis(console.html(f"/console/verifications/{sid}")).startswith(
        "warn: Still queued: no worker has picked it up"
    )


def test_diagnosis_for_a_test_number(console: Console, app: flask.Flask, runtime: Runtime) -> None:
    sandbox = ApiClient(app, make_tenant(runtime, "Sandbox", test_numbers={ADA: "123456"}))
    sid = start(sandbox, ADA)
    assert diagnosis(console.html(f"/console/verifications/{sid}")).startswith(
        "info: A test number: nothing is ever sent"
    )


def test_diagnosis_when_the_verification_ended_first(
    console: Console, api: ApiClient, work: Callable[[], None]
) -> None:
    sid = start(api, ADA)
    api.post(f"{api.base}/Verifications/{sid}", {"Status": "canceled"})
    work()
    assert diagnosis(console.html(f"/console/verifications/{sid}")).startswith(
        "warn: Not sent: the verification ended first (verification_canceled)"
    )


def receive(
    session: Session,
    attempt: SendAttempt,
    status: str,
    clock: FrozenClock,
    source: str = "callback",
) -> None:
    """Store a receipt for ``attempt`` and apply it, as the delivery area does."""
    row = DeliveryReceipt(
        account_sid=attempt.account_sid, provider_sid="PN" + "0" * 32, provider_message_id="m-1",
        attempt_sid=attempt.sid, status=status, reason_code=None, raw_code=None, applied=False,
        source=source, occurred_at=clock.now(), date_created=clock.now(),
    )  # fmt: skip
    session.add(row)
    session.flush()
    receipts.apply(session, attempt, row, clock.now(), lambda _: None)


def test_delivery_receipts_on_the_timeline(
    console: Console, api: ApiClient, runtime: Runtime, work: Callable[[], None], clock: FrozenClock
) -> None:
    """A provider's receipts (a late duplicate "sent", then "delivered"), as the delivery area
    stores and applies them: on the timeline, and the answer becomes "delivered"."""
    sid = start(api, ADA)
    work()
    clock.advance(3)
    with runtime.sessions() as session, session.begin():
        attempt = session.query(SendAttempt).filter_by(verification_sid=sid).one()
        for status in ("delivered", "sent"):
            receive(session, attempt, status, clock)
    html = console.html(f"/console/verifications/{sid}")
    assert diagnosis(html).startswith("good: Delivered to the handset by console (attempt #1)")
    timeline = html.split('id="timeline"', 1)[1]
    assert "Delivery receipt: delivered" in timeline
    assert "Delivery receipt: sent" in timeline
    assert "not applied (out of order or duplicate)" in timeline
    assert "message.delivered" in timeline
    assert "Looked up at the provider" not in timeline
    assert "Looked-up status" not in timeline


def test_a_lookup_at_the_provider_is_on_the_timeline(
    console: Console, api: ApiClient, runtime: Runtime, work: Callable[[], None], clock: FrozenClock
) -> None:
    """An attempt the sweep had looked up (no final receipt came) says so on the timeline, and
    the provider's answer reads as looked up, not as a receipt it posted."""
    sid = start(api, ADA)
    work()
    clock.advance(600)
    with runtime.sessions() as session, session.begin():
        attempt = session.query(SendAttempt).filter_by(verification_sid=sid).one()
        attempt.reconciled_at = clock.now()
        receive(session, attempt, "delivered", clock, source="lookup")
    html = console.html(f"/console/verifications/{sid}")
    assert diagnosis(html).startswith("good: Delivered to the handset by console (attempt #1)")
    timeline = html.split('id="timeline"', 1)[1]
    assert "Looked up at the provider" in timeline
    assert "attempt #1 · no final receipt had come" in timeline
    assert "Looked-up status: delivered" in timeline
    assert "Delivery receipt:" not in timeline


def test_a_nul_character_in_a_search_is_refused(console: Console) -> None:
    """No query reaches the database with a NUL in it (PostgreSQL would refuse it: a 500)."""
    r = console.get("/console/verifications", query_string={"q": "VE\x00"})
    assert r.status_code == 400
    assert "Invalid parameter `q`: must not contain NUL characters" in r.get_data(as_text=True)
