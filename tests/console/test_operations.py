"""Rate-limit state for a number, providers with their circuits, and the development outbox."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from tests.conftest import ApiClient, Tenant, delivered_code
from tests.console.conftest import Console, start
from verify.delivery.circuit import CircuitBreakers, Policy
from verify.runtime import Runtime

ADA = "+14155550123"


def limit_row(html: str, key: str, policy: str) -> list[str]:
    """The cells of the limits table's row for ``key`` with ``policy`` ("5 / 600 s")."""
    table = html.split('id="limits"', 1)[1].split("</table>", 1)[0]
    for row in table.split("<tr>")[2:]:
        cells = [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in row.split("</td>")[:-1]]
        if cells[1] == key and cells[2] == policy:
            return cells
    raise AssertionError(f"no {key} {policy} row")


def test_rate_limit_state_of_a_number(console: Console, api: ApiClient, tenant: Tenant) -> None:
    """Three sends to Ada: one more would leave 1 of her 5 per 10 minutes; reading counts nothing."""
    for _ in range(3):
        start(api, ADA)
    url = f"/console/rate-limits?number=%2B14155550123&service={tenant.service_sid}&channel=sms"
    html = console.html(url)
    assert "The next send to +14155550123 would go through." in html
    assert limit_row(html, "destination", "5 / 600 s")[3] == "1"
    assert limit_row(console.html(url), "destination", "5 / 600 s")[3] == "1"  # unchanged
    assert "4155550123" not in html.split('id="limits"', 1)[1]  # counters are labelled masked


def test_rate_limit_state_when_exhausted(console: Console, api: ApiClient, tenant: Tenant) -> None:
    for _ in range(5):
        start(api, ADA)
    html = console.html(f"/console/rate-limits?number=%2B14155550123&service={tenant.service_sid}")
    assert "The next send to +14155550123 would be refused" in html
    row = limit_row(html, "destination", "5 / 600 s")
    assert row[3] == "0"
    assert row[4].endswith(" s")
    assert "exhausted" in row[6]


def test_rate_limit_form_errors(console: Console, tenant: Tenant) -> None:
    bad = console.get(f"/console/rate-limits?number=12&service={tenant.service_sid}")
    assert bad.status_code == 400
    assert "Invalid parameter `number`" in bad.get_data(as_text=True)
    html = console.html("/console/rate-limits")
    assert f'<option value="{tenant.service_sid}" selected>' in html  # the only service


def test_providers_with_circuit_and_results(
    console: Console, api: ApiClient, runtime: Runtime, work: Callable[[], None]
) -> None:
    """The built-in console provider: one accepted attempt; its circuit opens after failures and
    the operator closes it."""
    start(api, ADA)
    work()
    html = console.html("/console/providers")
    row = html.split('id="providers"', 1)[1].split("Console (built-in)", 1)[1].split("</tr>", 1)[0]
    cells = [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in row.split("</td>")]
    assert cells[3].startswith("closed")
    assert cells[4:6] == ["1", "100.0 %"]

    breakers = CircuitBreakers(runtime.redis, Policy(failures=2))
    now = runtime.clock.now().timestamp()
    breakers.record("console:FR", False, now)
    breakers.record("console:FR", False, now)
    html = console.html("/console/providers")
    assert '<span class="badge open">open</span>' in html
    assert "open for FR" in html
    response = console.post("/console/providers/console/reset-circuit")
    assert response.status_code == 302
    assert breakers.states("console") == {}
    assert "The circuit of console is closed" in console.html("/console/providers")
    assert console.post("/console/providers/PN" + "0" * 32 + "/reset-circuit").status_code == 404


def test_outbox_shows_bodies_only_outside_production(
    console: Console, api: ApiClient, runtime: Runtime, work: Callable[[], None]
) -> None:
    start(api, ADA)
    work()
    code = delivered_code(runtime, ADA)
    html = console.html("/console/outbox")
    assert code in html
    assert "+14*****0123" in html
    runtime.settings = replace(runtime.settings, env="production")
    html = console.html("/console/outbox")
    assert code not in html
    assert "off in production" in html
