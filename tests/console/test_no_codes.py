"""No page of the console, and nothing the RQ dashboard serves, shows a code — the development outbox
being the one, documented exception — and lists show numbers masked."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Callable

import flask

from tests.conftest import ApiClient, delivered_code, make_tenant
from tests.console.conftest import Console, start
from verify.domain.clock import FrozenClock
from verify.runtime import Runtime

ADA, BOB = "+14155550123", "+12125550177"
LINK = re.compile(r'href="(/console/[^"#]*)"')
REGISTRIES = ("queued", "started", "finished", "failed", "deferred", "scheduled", "canceled")


def crawl(console: Console, start_at: list[str], limit: int = 300) -> dict[str, str]:
    """Every console page reachable from ``start_at`` by links (GET only), with its body."""
    seen: dict[str, str] = {}
    todo = list(start_at)
    while todo and len(seen) < limit:
        path = htmllib.unescape(todo.pop())
        if path in seen or "/static/" in path or path.startswith("/console/rq"):
            continue
        response = console.get(path, follow_redirects=True)
        assert response.status_code == 200, (path, response.status_code)
        body = response.get_data(as_text=True)
        seen[path] = body
        todo.extend(LINK.findall(body))
    return seen


def dashboard(console: Console) -> dict[str, str]:
    """What the RQ dashboard serves: its pages and every JSON document its scripts load."""
    out = {
        p: console.get(p).get_data(as_text=True)
        for p in ("/console/rq/", "/console/rq/0/view/workers")
    }
    for name in ("queues", "workers"):
        out[name] = console.get(f"/console/rq/0/data/{name}.json").get_data(as_text=True)
    for queue in console.get("/console/rq/0/data/queues.json").get_json()["queues"]:
        for registry in REGISTRIES:
            path = f"/console/rq/0/data/jobs/{queue['name']}/{registry}/100/asc/1.json"
            data = console.get(path).get_json()
            out[path] = str(data)
            for job in data["jobs"]:
                detail = f"/console/rq/0/data/job/{job['id']}.json"
                out[detail] = console.get(detail).get_data(as_text=True)
    return out


def test_no_page_shows_a_code(
    console: Console,
    app: flask.Flask,
    runtime: Runtime,
    work: Callable[[], None],
    clock: FrozenClock,
) -> None:
    """Codes of ten digits (no accidental match), delivered, checked wrong and right, a canceled
    one, a second tenant: every page reachable in the console and the dashboard is free of them."""
    api = ApiClient(app, make_tenant(runtime, "Acme", code_length=10))
    other = ApiClient(app, make_tenant(runtime, "Globex", code_length=10))
    approved = start(api, ADA)
    start(other, BOB)
    canceled = start(other, ADA)
    work()
    codes = [delivered_code(runtime, ADA), delivered_code(runtime, BOB)]
    clock.advance(5)
    api.check("0" * 10 if codes[0] != "0" * 10 else "1" * 10, ADA)
    api.check(codes[0], ADA)
    other.post(f"{other.base}/Verifications/{canceled}", {"Status": "canceled"})
    work()

    pages = crawl(
        console,
        [
            "/console/verifications",
            f"/console/verifications?q={ADA.replace('+', '%2B')}",
            "/console/webhooks",
            "/console/fraud",
            "/console/providers",
            f"/console/rate-limits?number=%2B14155550123&service={api.tenant.service_sid}",
        ],
    )
    assert f"/console/verifications/{approved}" in pages
    assert "/console/outbox" in pages
    served = {**pages, **dashboard(console)}
    for path, body in served.items():
        for code in codes:
            if path == "/console/outbox":
                assert code in body  # the documented, development-only exception
            else:
                assert code not in body, path

    # Full numbers: on a verification's page, and echoed where the operator typed one (a search
    # by number, the rate-limit form); everywhere else masked.
    typed = ("/console/verifications/", "/console/rate-limits", "/console/verifications?q=")
    lists = [p for p in served if not p.startswith(typed)]
    assert "/console/verifications" in lists
    for path in lists:
        for number in (ADA, BOB):
            assert number not in served[path], path
