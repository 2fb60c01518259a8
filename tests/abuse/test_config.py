"""Configuring the abuse controls: the FraudRules API (validation, audit trail), the rules file and
its CLI, the dry run, and changes reaching a running worker without a restart."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from tests.abuse.conftest import add_rule
from tests.conftest import make_tenant
from verify.abuse import AbuseControls, build_gate
from verify.abuse.counters import Counters
from verify.domain.destinations import parse_phone
from verify.domain.sends import SendContext, StartRequest
from verify.models import Verification
from verify.runtime import build_runtime

RU = "+79161234567"


@pytest.mark.parametrize(
    ("fields", "parameter"),
    [
        ({"Type": "nonsense"}, "Type"),
        ({"Type": "prefix_velocity", "Params": json.dumps({"max": 0})}, "Params"),
        ({"Type": "prefix_velocity", "Params": json.dumps({"maxx": 3})}, "Params"),
        ({"Type": "geo_permissions", "Params": json.dumps({"allow": ["XX"]})}, "Params"),
        (
            {"Type": "geo_permissions", "Params": json.dumps({"allow": ["US"], "block": ["US"]})},
            "Params",
        ),
        (
            {
                "Type": "rate_limit",
                "Params": json.dumps({"key": "global", "max": 1, "interval": 1}),
            },
            "Params",
        ),
        ({"Type": "conversion_rate", "Params": json.dumps({"min_rate": 2})}, "Params"),
        ({"Type": "number_type", "Mode": "shadow"}, "Mode"),
        ({"Type": "number_type", "Channels": "sms,fax"}, "Channels"),
        ({"Type": "number_type", "Params": "[1]"}, "Params"),
    ],
)
def test_invalid_rules_are_refused_with_the_parameter_named(api, fields, parameter):
    """A bad rule is 400 60200 naming what is wrong; nothing is stored."""
    r = api.post("/v2/FraudRules", fields)
    assert (r.status_code, r.json["code"], r.json["parameter"]) == (400, 60200, parameter), r.json
    assert api.get("/v2/FraudRules").json["fraud_rules"] == []


def test_another_accounts_service_is_not_found(api, runtime):
    other = make_tenant(runtime, "Other")
    r = api.post("/v2/FraudRules", {"Type": "number_type", "ServiceSid": other.service_sid})
    assert (r.status_code, r.json["code"]) == (404, 20404)


def test_rules_crud_and_the_audit_trail(api):
    """Create, update, fetch, list and delete a rule; each change is in the audit trail with the
    credential that made it and the rule before and after."""
    rule = add_rule(api, "prefix_velocity", {"max": 5}, Description="tight", Priority=5)
    assert rule["sid"].startswith("FR")
    assert rule["params"] == {"prefix_digits": 4, "max": 5, "window": 900}
    assert (rule["scope"], rule["mode"], rule["channels"]) == ("account", "enforce", [])
    updated = api.post(
        f"/v2/FraudRules/{rule['sid']}", {"Mode": "monitor", "Params": json.dumps({"max": 7})}
    )
    assert (updated.json["mode"], updated.json["params"]["max"]) == ("monitor", 7)
    assert (
        api.post(f"/v2/FraudRules/{rule['sid']}", {"Type": "geo_permissions"}).json["code"] == 60200
    )
    assert api.get(f"/v2/FraudRules/{rule['sid']}").json["description"] == "tight"
    assert [r["sid"] for r in api.get("/v2/FraudRules").json["fraud_rules"]] == [rule["sid"]]
    assert api.delete(f"/v2/FraudRules/{rule['sid']}").status_code == 204
    assert api.get(f"/v2/FraudRules/{rule['sid']}").status_code == 404
    changes = api.get("/v2/FraudRules/Changes").json["changes"]
    assert [c["action"] for c in changes] == ["deleted", "updated", "created"]
    assert {c["actor"] for c in changes} == {api.tenant.account_sid}
    assert changes[1]["before"]["mode"] == "enforce"
    assert changes[1]["after"]["mode"] == "monitor"
    assert changes[0]["after"] is None


def test_rules_are_scoped_to_their_account(api, app, runtime):
    from tests.conftest import ApiClient

    rule = add_rule(api, "number_type")
    other = ApiClient(app, make_tenant(runtime, "Other"))
    assert other.get(f"/v2/FraudRules/{rule['sid']}").status_code == 404
    assert other.get("/v2/FraudRules/Changes").json["changes"] == []


def test_dry_run_explains_and_counts_nothing(api, runtime):
    """The dry run answers what a send would meet, with reasons and limits, and writes nothing:
    repeating it changes no counter."""
    data = {"ServiceSid": api.tenant.service_sid, "To": RU, "Channel": "sms"}
    first = api.post("/v2/FraudRules/DryRun", data).json
    assert (first["outcome"], first["code"], first["status"]) == ("block", 60605, 403)
    assert first["decisions"][0]["rule_sid"] == "default:geo_permissions"
    assert "RU" in first["reason"]
    allowed = {**data, "To": "+12015550100"}
    for _ in range(7):
        answer = api.post("/v2/FraudRules/DryRun", allowed).json
        assert answer["outcome"] == "allow"
    destination = next(limit for limit in answer["limits"] if limit["key"] == "destination")
    assert destination["remaining"] == 4  # as for a first send: nothing was counted
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Verification)) == 0
    assert api.start("+12015550100").headers["RateLimit-Remaining"] == "4"


def test_dry_run_shows_a_refusal(api):
    add_rule(api, "rate_limit", {"key": "destination", "max": 1, "interval": 600})
    assert api.start("+12015550100").status_code == 201
    data = {"ServiceSid": api.tenant.service_sid, "To": "+12015550100"}
    answer = api.post("/v2/FraudRules/DryRun", data).json
    assert (answer["outcome"], answer["code"]) == ("refuse", 60203)


def test_a_rule_changed_through_the_api_reaches_a_running_worker(api, settings, clock):
    """A worker process's gate (its own runtime and configuration cache, as in `verify worker`)
    screens a send as allowed, then — after a rule is added through the API, with no restart —
    blocks it within about a second."""
    worker_rt = build_runtime(settings, clock=clock)
    try:
        gate = build_gate(worker_rt)
        dest = parse_phone("+12015550100")
        ctx = SendContext(
            api.tenant.account_sid,
            api.tenant.service_sid,
            dest,
            "sms",
            StartRequest(to=dest.value, channel="sms"),
            None,
        )
        assert gate.screen_delivery(ctx).block is None
        add_rule(api, "geo_permissions", {"allow": ["CA"]})
        deadline = time.monotonic() + 5
        while gate.screen_delivery(ctx).block is None:
            assert time.monotonic() < deadline, "the worker never saw the new rule"
            time.sleep(0.1)
        screening = gate.screen_delivery(ctx)
        assert screening.block is not None
        assert screening.block.code == 60605
        assert screening.reason_code == "geo_blocked"
    finally:
        worker_rt.close()


def test_worker_screening_counts_nothing(runtime, tenant):
    """screen_delivery reads the counters; it never charges a limit or counts a send."""
    controls = AbuseControls(runtime.sessions, runtime.redis, runtime.clock)
    dest = parse_phone("+12015550100")
    ctx = SendContext(
        tenant.account_sid,
        tenant.service_sid,
        dest,
        "sms",
        StartRequest(to=dest.value, channel="sms"),
        None,
    )
    gate = controls.gate()
    for _ in range(20):
        assert gate.screen_delivery(ctx).block is None
    assert runtime.redis.keys("verify:abuse:rl:*") == []


# -- the rules file ----------------------------------------------------------------------------------


def _cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}
    env.update(settings.as_environ())
    verify = Path(sys.executable).with_name("verify")
    return subprocess.run(
        [str(verify), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _load(settings, path: Path, account_sid: str) -> dict[str, int]:
    """``verify fraud load --json`` of a rules file: what it did to the account's rules."""
    loaded = _cli(settings, "fraud", "load", str(path), "--json")
    assert loaded.returncode == 0, loaded.stderr
    return json.loads(loaded.stdout)[account_sid]


def test_rules_file_round_trip_through_the_cli(api, settings, tmp_path, runtime):
    """export → load is a no-op; a changed file updates, creates and deletes rules (audited as the
    CLI), and the web process follows without a restart."""
    kept = add_rule(api, "prefix_velocity", {"max": 5})
    gone = add_rule(api, "number_type", {"voip": "refuse"})
    exported = _cli(settings, "fraud", "export")
    assert exported.returncode == 0, exported.stderr
    document = yaml.safe_load(exported.stdout)
    rules = document["accounts"][api.tenant.account_sid]
    assert {r["sid"] for r in rules} == {kept["sid"], gone["sid"]}
    path = tmp_path / "rules.yaml"
    path.write_text(exported.stdout)
    assert _load(settings, path, api.tenant.account_sid) == {
        "created": 0,
        "updated": 0,
        "deleted": 0,
        "unchanged": 2,
    }

    rules = [r for r in rules if r["sid"] == kept["sid"]]
    rules[0]["params"]["max"] = 9
    rules.append(
        {"type": "geo_permissions", "service": api.tenant.service_sid, "params": {"allow": ["US"]}}
    )
    path.write_text(yaml.safe_dump({"version": 1, "accounts": {api.tenant.account_sid: rules}}))
    assert _load(settings, path, api.tenant.account_sid) == {
        "created": 1,
        "updated": 1,
        "deleted": 1,
        "unchanged": 0,
    }
    listed = {r["type"]: r for r in api.get("/v2/FraudRules").json["fraud_rules"]}
    assert listed["prefix_velocity"]["params"]["max"] == 9
    assert listed["geo_permissions"]["service_sid"] == api.tenant.service_sid
    assert "number_type" not in listed
    assert {c["actor"] for c in api.get("/v2/FraudRules/Changes").json["changes"][:3]} == {"cli"}
    time.sleep(1.1)  # the web process checks the version at most once a second
    r = api.start("+447106123456")
    assert (r.status_code, r.json["code"]) == (403, 60605)


def test_a_bad_rules_file_changes_nothing(api, settings, tmp_path):
    add_rule(api, "prefix_velocity", {"max": 5})
    path = tmp_path / "rules.yaml"
    bad = [{"type": "number_type"}, {"type": "prefix_velocity", "params": {"max": -1}}]
    path.write_text(yaml.safe_dump({"version": 1, "accounts": {api.tenant.account_sid: bad}}))
    result = _cli(settings, "fraud", "load", str(path))
    assert result.returncode != 0
    assert "max must be an integer" in result.stderr
    assert [r["type"] for r in api.get("/v2/FraudRules").json["fraud_rules"]] == ["prefix_velocity"]


def test_the_version_counter_is_all_a_process_checks(runtime):
    """Between changes a process reads one small key, at most once a second."""
    counters = Counters(runtime.redis)
    before = counters.version()
    counters.bump_version()
    assert counters.version() != before


def test_the_worker_screens_a_queued_send_again(api, runtime, worker_process):
    """A send queued before a rule was added is blocked by the worker (a separate process) before
    any provider sees it: the attempt is blocked, the decision recorded, nothing delivered."""
    from tests.abuse.conftest import attempts, decisions
    from verify.delivery.console import outbox_for

    sid = api.start("+12015550100").json["sid"]
    add_rule(api, "geo_permissions", {"allow": ["CA"]})
    worker_process()
    (attempt,) = attempts(runtime, sid)
    assert (attempt.status, attempt.reason_code) == ("blocked", "geo_blocked")
    assert [d.reason_code for d in decisions(runtime, sid)] == ["geo_blocked"]
    assert outbox_for(runtime).read(10) == []


ODD_PARAMS = [
    "", "x", "US", "+1", 0, -1, 10**30, 1.5, float("inf"), float("nan"), True, None, [], {},
    ["US", "US"], ["XX"], [["US"]], [{}], {"US": 1}, "\u202e",
]  # fmt: skip
VALID_PARAMS = {"rate_limit": {"key": "account", "max": 5, "interval": 60}}


def test_odd_values_in_every_rule_parameter_are_refused_by_name(api):
    """Each parameter of each rule type (its normalized defaults name them), given each odd value:
    created, or 400 naming Params; never a server error."""
    from verify.domain.fraud import TYPES
    from verify.domain.fraud_params import normalize

    failed = []
    for type_ in TYPES:
        base = normalize(type_, VALID_PARAMS.get(type_, {}))
        for name, value in itertools.product([*base, "prefix_digits"], ODD_PARAMS):
            params = {**base, name: value}
            r = api.post("/v2/FraudRules", {"Type": type_, "Params": json.dumps(params)})
            if r.status_code == 201:
                api.delete(f"/v2/FraudRules/{r.json['sid']}")
            elif (r.status_code, r.json.get("parameter")) != (400, "Params"):
                failed.append((type_, name, repr(value)[:20], r.status_code))
    assert not failed


@pytest.mark.parametrize("description", ["x" * 256, ["x"], 5])
def test_a_description_longer_than_stored_or_not_text_is_refused_everywhere(api, description):
    """The check lives in RuleFields, which the API, the console and the rules file all build
    (from the console and a rules file this was a 500 on PostgreSQL)."""
    from verify.abuse.registry import RuleFields
    from verify.errors import InvalidParameter

    with pytest.raises(InvalidParameter) as refused:
        RuleFields(type="number_type", description=description)
    assert refused.value.parameter == "Description"
    if isinstance(description, str):
        r = api.post("/v2/FraudRules", {"Type": "number_type", "Description": description})
        assert (r.status_code, r.json["parameter"]) == (400, "Description")
