"""Console pages given odd query values and paths: a page or a 4xx, never a server error."""

from __future__ import annotations

import itertools
import re

from tests.conftest import Tenant
from tests.console.conftest import Console

ODD = [
    "", "-1", "0", "1" * 23, "abc", "2026-13-45", "+", "VE" + "0" * 32, "%", "'", "é", "1e309",
    "http://[x", "//[", "[" * 3000 + "]" * 3000, '{"a": ' + "9" * 5000 + "}",
]  # fmt: skip
PAGES = [
    "/console/",
    "/console/verifications",
    "/console/webhooks",
    "/console/rate-limits",
    "/console/fraud",
    "/console/providers",
    "/console/outbox",
    "/console/login",
]
PARAMETERS = ["q", "status", "from", "to", "page", "endpoint_sid", "to_number", "account", "next"]
MISSING = [
    "/console/verifications/VE" + "0" * 32,
    "/console/verifications/nonsense",
    "/console/webhooks/nonsense",
    "/console/fraud/nonsense",
    "/console/fraud/nonsense/rules/nonsense",
]


def test_odd_query_values_never_fail_the_server(console: Console) -> None:
    failed = [
        (page, name, value, r.status_code)
        for page, name, value in itertools.product(PAGES, PARAMETERS, ODD)
        if (r := console.get(page, query_string={name: value})).status_code >= 500
    ]
    assert not failed


def test_a_page_past_any_list_is_refused(console: Console) -> None:
    for page in ("/console/verifications", "/console/webhooks"):
        r = console.get(page, query_string={"page": "1" * 23})
        assert r.status_code == 400, page
        assert "must be a page number" in r.get_data(as_text=True)


def test_missing_things_are_not_found(console: Console) -> None:
    assert {path: console.get(path).status_code for path in MISSING} == dict.fromkeys(MISSING, 404)


RULE_FIELDS = [
    "type", "mode", "params", "priority", "service_sid", "channels", "enabled", "description",
    "allow", "block", "monitor", "default",
]  # fmt: skip


def test_odd_form_values_never_fail_the_server(console: Console, tenant: Tenant) -> None:
    """Every console form, each field given each odd value: a page, a redirect or a 4xx."""
    rules = f"/console/fraud/{tenant.account_sid}/rules"
    created = console.post(rules, {"type": "prefix_velocity", "params": "{}"})
    assert created.status_code == 302
    [sid] = re.findall(r"(FR[0-9a-f]{32}) \(prefix_velocity\) created", console.html(rules[:-6]))
    forms = [(rules, name) for name in RULE_FIELDS] + [(f"{rules}/{sid}", n) for n in RULE_FIELDS]
    forms += [
        ("/console/webhooks/nonsense/replay", "next"),
        ("/console/webhooks/endpoints/nonsense/replay-dead", "next"),
        ("/console/providers/nonsense/reset-circuit", "next"),
        (f"{rules}/nonsense/delete", "next"),
        ("/console/logout", "next"),
    ]
    failed = [
        (path, name, value[:20], r.status_code)
        for (path, name), value in itertools.product(forms, ODD)
        if (r := console.post(path, {"type": "geo_permissions", name: value})).status_code >= 500
    ]
    assert not failed


def test_odd_sign_in_values_never_fail_the_server(anonymous: Console) -> None:
    anonymous.login()  # for the CSRF token
    failed = [
        (name, value[:20], r.status_code)
        for name, value in itertools.product(["token", "next"], ODD)
        if (r := anonymous.post("/console/login", {name: value})).status_code >= 500
    ]
    assert not failed
