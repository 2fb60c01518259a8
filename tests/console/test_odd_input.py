"""Console pages given odd query values and paths: a page or a 4xx, never a server error."""

from __future__ import annotations

import itertools

from tests.console.conftest import Console

ODD = ["", "-1", "0", "1" * 23, "abc", "2026-13-45", "+", "VE" + "0" * 32, "%", "'", "é", "1e309"]
PAGES = [
    "/console/",
    "/console/verifications",
    "/console/webhooks",
    "/console/rate-limits",
    "/console/fraud",
    "/console/providers",
    "/console/outbox",
]
PARAMETERS = ["q", "status", "from", "to", "page", "endpoint_sid", "to_number", "account"]
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
