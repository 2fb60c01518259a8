"""Fraud rules and geo permissions in the console: view, create, edit, delete — validated by the abuse
area, audited as the console, and in force for the next send without a restart."""

from __future__ import annotations

import re

import flask

from tests.conftest import ApiClient, Tenant, make_tenant
from tests.console.conftest import Console
from verify.models.abuse import FraudRule, FraudRuleChange
from verify.runtime import Runtime

RULE = re.compile(r'id="edit-(FR[0-9a-f]{32})"')


def rules(runtime: Runtime, account_sid: str) -> list[FraudRule]:
    with runtime.sessions() as session:
        return list(session.query(FraudRule).filter_by(account_sid=account_sid))


def changes(runtime: Runtime, account_sid: str) -> list[tuple[str, str]]:
    with runtime.sessions() as session:
        rows = session.query(FraudRuleChange).filter_by(account_sid=account_sid)
        return [(c.action, c.actor) for c in rows.order_by(FraudRuleChange.id)]


def set_geo(console: Console, tenant: Tenant, **fields: str) -> str:
    """Create the account's geo permissions from the form on its page; returns the rule's sid."""
    form = {"type": "geo_permissions", "mode": "enforce", "enabled": "on", "default": "block"}
    response = console.post(f"/console/fraud/{tenant.account_sid}/rules", {**form, **fields})
    assert response.status_code == 302, response.get_data(as_text=True)
    [sid] = console_rules(console, tenant)
    return sid


def console_rules(console: Console, tenant: Tenant) -> list[str]:
    return RULE.findall(console.html(f"/console/fraud/{tenant.account_sid}"))


def test_one_account_goes_straight_to_its_rules(console: Console, tenant: Tenant) -> None:
    response = console.get("/console/fraud")
    assert response.headers["Location"] == f"/console/fraud/{tenant.account_sid}"


def test_several_accounts_are_listed(console: Console, tenant: Tenant, runtime: Runtime) -> None:
    other = make_tenant(runtime, "Globex")
    html = console.html("/console/fraud")
    assert tenant.account_sid in html
    assert other.account_sid in html


def test_without_rules_the_defaults_are_shown(console: Console, tenant: Tenant) -> None:
    html = console.html(f"/console/fraud/{tenant.account_sid}")
    assert "The built-in default applies" in html
    assert 'id="defaults"' in html
    assert "This account has no rules of its own." in html


def test_edit_geo_permissions_takes_effect_on_the_next_send(
    console: Console, tenant: Tenant, api: ApiClient, runtime: Runtime
) -> None:
    """Block the United States: the next start to a US number is refused (60605), with no restart;
    the change is audited as the console's."""
    sid = set_geo(console, tenant, allow="US, GB", block="")
    [rule] = rules(runtime, tenant.account_sid)
    assert rule.sid == sid
    assert rule.params["allow"] == ["GB", "US"]
    assert api.start("+14155550123").status_code == 201

    page = console.html(f"/console/fraud/{tenant.account_sid}/rules/{rule.sid}")
    assert 'id="geo-allow"' in page
    response = console.post(
        f"/console/fraud/{tenant.account_sid}/rules/{rule.sid}",
        {"mode": "enforce", "enabled": "on", "priority": "10", "allow": "GB", "block": "us",
         "monitor": "", "default": "block", "description": "no US for now"},
    )  # fmt: skip
    assert response.status_code == 302
    html = console.html(response.headers["Location"])
    assert f"Rule {rule.sid} (geo_permissions) saved" in html
    geo = html.split('id="geo"', 1)[1].split("</table>", 1)[0]
    assert "US" in geo.split("</td>")[2]  # the "Blocked" column
    refused = api.start("+14155550124")
    assert refused.status_code == 403
    assert refused.get_json()["code"] == 60605
    assert changes(runtime, tenant.account_sid) == [("created", "console"), ("updated", "console")]


def test_a_bad_edit_says_why_and_changes_nothing(
    console: Console, tenant: Tenant, runtime: Runtime
) -> None:
    rule = set_geo(console, tenant, allow="US")
    response = console.post(
        f"/console/fraud/{tenant.account_sid}/rules/{rule}",
        {"mode": "enforce", "enabled": "on", "allow": "US, ZZ", "default": "block"},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "unknown country code(s): ZZ" in html
    assert 'value="US, ZZ"' in html  # the form keeps what was typed
    assert rules(runtime, tenant.account_sid)[0].params["allow"] == ["US"]
    assert changes(runtime, tenant.account_sid) == [("created", "console")]


def test_rules_with_json_parameters(console: Console, tenant: Tenant, runtime: Runtime) -> None:
    """Create a prefix-velocity rule in monitor mode, edit its JSON, then delete it."""
    base = f"/console/fraud/{tenant.account_sid}/rules"
    bad = console.post(base, {"type": "prefix_velocity", "mode": "monitor", "params": "{max: 3}"})
    assert bad.status_code == 400
    assert "Invalid parameter `Params`: is not valid JSON" in bad.get_data(as_text=True)
    assert rules(runtime, tenant.account_sid) == []

    created = console.post(
        base,
        {"type": "prefix_velocity", "mode": "monitor", "enabled": "on", "channels": "sms",
         "params": '{"max": 3, "window": 600}', "description": "watch"},
    )  # fmt: skip
    assert created.status_code == 302
    [rule] = rules(runtime, tenant.account_sid)
    assert (rule.mode, rule.channels, rule.params["max"], rule.params["window"]) == (
        "monitor", "sms", 3, 600,
    )  # fmt: skip

    edit = console.post(
        f"{base}/{rule.sid}",
        {"mode": "enforce", "enabled": "on", "priority": "5", "params": '{"max": 7}'},
    )
    assert edit.status_code == 302
    [rule] = rules(runtime, tenant.account_sid)
    assert (rule.mode, rule.priority, rule.params["max"], rule.enabled) == ("enforce", 5, 7, True)

    nul = console.post(f"{base}/{rule.sid}", {"mode": "enforce", "params": '{"max\\u0000": 1}'})
    assert nul.status_code == 400
    assert "`Params`: must not contain NUL characters" in nul.get_data(as_text=True)

    for params, says in [
        ("[" * 3000 + "]" * 3000, "must not nest more than 32 levels deep"),
        ('{"max": ' + "9" * 5000 + "}", "holds a number too long to read"),
    ]:
        refused = console.post(f"{base}/{rule.sid}", {"mode": "enforce", "params": params})
        assert refused.status_code == 400
        assert f"`Params`: {says}" in refused.get_data(as_text=True)

    wrong = console.post(f"{base}/{rule.sid}", {"mode": "enforce", "params": '{"nope": 1}'})
    assert wrong.status_code == 400
    assert "unknown parameter(s) for prefix_velocity: nope" in wrong.get_data(as_text=True)

    assert console.post(f"{base}/{rule.sid}/delete").status_code == 302
    assert rules(runtime, tenant.account_sid) == []
    assert [a for a, _ in changes(runtime, tenant.account_sid)] == ["created", "updated", "deleted"]


def test_unknown_account_and_rule(console: Console, tenant: Tenant, app: flask.Flask) -> None:
    assert console.get("/console/fraud/AC" + "0" * 32).status_code == 404
    missing = f"/console/fraud/{tenant.account_sid}/rules/FR" + "0" * 32
    assert console.get(missing).status_code == 404
    assert console.post(missing, {"mode": "enforce"}).status_code == 404


def test_another_accounts_rule_is_not_reachable_through_this_account(
    console: Console, tenant: Tenant, runtime: Runtime
) -> None:
    rule = set_geo(console, tenant, allow="US")
    other = make_tenant(runtime, "Globex")
    assert console.get(f"/console/fraud/{other.account_sid}/rules/{rule}").status_code == 404


def test_a_blocked_send_is_explained_on_its_verification(
    console: Console, tenant: Tenant, api: ApiClient
) -> None:
    """Found by its number, the refused verification says the abuse controls blocked it, and why."""
    set_geo(console, tenant, allow="GB", block="US")
    assert api.start("+14155550123").status_code == 403
    html = console.html("/console/verifications?q=%2B14155550123")
    [sid] = re.findall(r'href="/console/verifications/(VE[0-9a-f]{32})"', html)
    page = console.html(f"/console/verifications/{sid}")
    assert "Not sent: the abuse controls blocked it (geo_blocked)" in page
    timeline = page.split('id="timeline"', 1)[1]
    assert "Fraud rule geo_permissions: blocked" in timeline
    assert "sms to US is not enabled in the geo permissions" in timeline
