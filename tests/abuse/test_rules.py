"""The fraud rules, each type through the real start path: what is blocked, what is recorded."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from tests.abuse.conftest import SPREAD, add_rule, attempts, decisions, verification
from verify.models import Event
from verify.models.abuse import FraudBlock

RU = "+79161234567"  # a Russian mobile: outside the default geo permissions
UK_LANDLINE = "+442079460000"
UK_VOIP = "+445612345678"


def assert_blocked(r, code: int = 60410) -> dict:
    assert (r.status_code, r.json["code"]) == (403, code), r.json
    assert r.json["verification_sid"].startswith("VE")
    assert r.json["reason"]
    return r.json


def test_geo_default_denies_sms_outside_the_default_countries(api, runtime):
    """SMS to Russia is 403 60605: a failed verification with a blocked attempt, a stored decision,
    a fraud.blocked event, and nothing for the worker."""
    body = assert_blocked(api.start(RU), 60605)
    sid = body["verification_sid"]
    assert body["reason_code"] == "geo_blocked"
    assert "RU" in body["reason"]
    assert verification(runtime, sid).status == "failed"
    (attempt,) = attempts(runtime, sid)
    assert (attempt.status, attempt.reason_code) == ("blocked", "geo_blocked")
    (decision,) = decisions(runtime, sid)
    assert (decision.rule_sid, decision.action, decision.mode) == (
        "default:geo_permissions",
        "block",
        "enforce",
    )
    assert decision.inputs["country"] == "RU"
    assert runtime.queue.count == 0
    with runtime.sessions() as s:
        event = s.scalar(select(Event).where(Event.type == "fraud.blocked"))
        assert event is not None
        assert event.payload["reason_code"] == "geo_blocked"
        assert RU not in json.dumps(event.payload)  # masked
    shown = api.get(f"{api.base}/Verifications/{sid}").json
    assert shown["status"] == "failed"
    assert shown["send_code_attempts"][0]["status"] == "blocked"
    assert shown["send_code_attempts"][0]["reason_code"] == "geo_blocked"


def test_geo_permissions_per_service_and_channel(api):
    """A service rule allowing RU for SMS lets SMS through; voice (not in its channels) keeps the
    default: blocked."""
    add_rule(
        api,
        "geo_permissions",
        {"allow": ["US", "RU"]},
        ServiceSid=api.tenant.service_sid,
        Channels="sms",
    )
    assert api.start(RU).status_code == 201
    r = api.start("+79161234568", "call")
    assert_blocked(r, 60605)


def test_geo_monitor_flags_without_blocking(api, runtime):
    """A country in ``monitor`` is sent to and flagged."""
    add_rule(api, "geo_permissions", {"allow": ["US"], "monitor": ["RU"]})
    r = api.start(RU)
    assert r.status_code == 201
    (decision,) = decisions(runtime, r.json["sid"])
    assert (decision.action, decision.reason_code) == ("flag", "geo_monitored")


def test_geo_does_not_apply_to_email(api):
    """Email has no country: geo permissions never block it."""
    add_rule(api, "geo_permissions", {"default": "block"})
    assert api.start("someone@example.org", "email").status_code == 201


def test_landline_is_refused_for_sms_but_called(api):
    """A landline cannot get an SMS (403 60205); a voice call to it is fine."""
    body = assert_blocked(api.start(UK_LANDLINE), 60205)
    assert body["reason_code"] == "number_type_landline"
    assert api.start(UK_LANDLINE, "call").status_code == 201


def test_voip_is_flagged_or_refused_by_policy(api, runtime):
    """VoIP numbers are flagged by default, refused when the policy says so."""
    r = api.start(UK_VOIP)
    assert r.status_code == 201
    assert [d.reason_code for d in decisions(runtime, r.json["sid"])] == ["number_type_voip"]
    add_rule(api, "number_type", {"voip": "refuse"})
    assert_blocked(api.start("+445612345679"))


def test_prefix_velocity(api, runtime):
    """More than ``max`` different numbers in one prefix within the window are blocked, with the
    counts."""
    add_rule(api, "prefix_velocity", {"prefix_digits": 4, "max": 3, "window": 600})
    numbers = ["+12015550100", "+12015551234", "+12015552468", "+12015553579"]
    for n in numbers[:3]:
        assert api.start(n).status_code == 201
    body = assert_blocked(api.start(numbers[3]))
    assert body["reason_code"] == "prefix_velocity"
    (d,) = decisions(runtime, body["verification_sid"])
    assert d.inputs == {"prefix": "+1201555", "numbers": 4, "max": 3, "window": 600}


def test_sequential_number_burst(api):
    """Five different numbers of one hundred-block within 15 minutes: the fifth is blocked."""
    for n in range(4):
        assert api.start(f"+1201555012{n}").status_code == 201
    body = assert_blocked(api.start("+12015550129"))
    assert body["reason_code"] == "sequential_burst"


def test_sequential_burst_window_slides(api, clock):
    """After the window, the same block may be used again."""
    for n in range(4):
        assert api.start(f"+1201555012{n}").status_code == 201
    clock.advance(901)
    assert api.start("+12015550129").status_code == 201


def test_ip_velocity_destinations_and_countries(api):
    """One device IP: more than max_destinations numbers, or more than max_countries countries,
    within the window are blocked."""
    add_rule(api, "ip_velocity", {"max_destinations": 2, "max_countries": 5, "window": 3600})
    ip = {"DeviceIp": "198.51.100.23"}
    assert api.start(SPREAD[0], **ip).status_code == 201
    assert api.start(SPREAD[1], **ip).status_code == 201
    assert assert_blocked(api.start(SPREAD[2], **ip))["reason_code"] == "ip_velocity_destinations"
    assert api.start(SPREAD[3], DeviceIp="198.51.100.24").status_code == 201


def test_ip_velocity_countries(api):
    add_rule(api, "ip_velocity", {"max_destinations": 50, "max_countries": 1, "window": 3600})
    ip = {"DeviceIp": "198.51.100.23"}
    assert api.start(SPREAD[0], **ip).status_code == 201
    body = assert_blocked(api.start("+447106123456", **ip))
    assert body["reason_code"] == "ip_velocity_countries"


def test_ip_velocity_ignores_the_callers_own_address(api):
    """Without DeviceIp the address is the application's server: IP velocity does not count it."""
    add_rule(api, "ip_velocity", {"max_destinations": 1, "window": 3600})
    assert all(api.start(n).status_code == 201 for n in SPREAD[:3])


CONVERSION = {"prefix_digits": 4, "window": 600, "buckets": 2, "min_sample": 4, "min_rate": 0.5, "cooldown": 3600}  # fmt: skip


def _at_bucket_start(clock) -> None:
    """Move the test clock (which starts at the real time) to the start of a conversion bucket
    (window / buckets = 300 s): 301 s later is then always the next bucket. From the last second
    of a bucket it would be the one after, and the sends would already have left the window."""
    clock.advance(300 - clock.now().timestamp() % 300)


def _prefix_numbers(prefix: str, count: int, start: int = 0) -> list[str]:
    return [f"{prefix}{(start + i) * 1237 % 10_000:04d}" for i in range(count)]


def test_conversion_guard_blocks_a_prefix_that_never_converts(api, runtime, clock):
    """Four settled sends, none approved: the next send blocks the prefix for the cool-down (stored
    durably); after it, sends pass until the guard sees a bad sample again, which doubles it."""
    add_rule(api, "conversion_rate", CONVERSION)
    numbers = _prefix_numbers("+1201555", 12)
    _at_bucket_start(clock)
    for n in numbers[:4]:
        assert api.start(n).status_code == 201
    clock.advance(301)  # the sends settle (out of the current bucket)
    body = assert_blocked(api.start(numbers[4]))
    assert body["reason_code"] == "conversion_prefix"
    (d,) = [d for d in decisions(runtime, body["verification_sid"])]
    assert (d.inputs["sent"], d.inputs["approved"], d.inputs["cooldown"]) == (4, 0, 3600)
    assert_blocked(api.start(numbers[5]))  # still in the cool-down
    with runtime.sessions() as s:
        (block,) = s.scalars(select(FraudBlock)).all()
        assert (block.value, block.strikes) == ("+1201555", 1)
    clock.advance(3601)
    for n in numbers[6:10]:
        assert api.start(n).status_code == 201
    clock.advance(301)
    body = assert_blocked(api.start(numbers[10]))
    (d,) = decisions(runtime, body["verification_sid"])
    assert (d.inputs["strikes"], d.inputs["cooldown"]) == (2, 7200)


def test_conversion_guard_leaves_converting_prefixes_alone(api, runtime, clock, work):
    """A prefix whose sends are approved stays open."""
    from tests.conftest import delivered_code

    add_rule(api, "conversion_rate", CONVERSION)
    numbers = _prefix_numbers("+1201555", 6)
    _at_bucket_start(clock)
    for n in numbers[:4]:
        assert api.start(n).status_code == 201
    work()
    for n in numbers[:3]:
        assert api.check(delivered_code(runtime, n), to=n).json["status"] == "approved"
    clock.advance(301)
    assert api.start(numbers[4]).status_code == 201


def test_safe_list_bypasses_the_rules(api, runtime):
    """A safe-listed number (Twilio's shape) or prefix is never blocked by a rule; the bypass is
    recorded."""
    r = api.post("/v2/SafeList/Numbers", {"PhoneNumber": RU})
    assert r.status_code == 201
    assert r.json["phone_number"] == RU
    assert r.json["sid"].startswith("GN")
    assert api.get(f"/v2/SafeList/Numbers/{RU}").json["phone_number"] == RU
    started = api.start(RU)
    assert started.status_code == 201
    assert [d.action for d in decisions(runtime, started.json["sid"])] == ["bypass"]
    assert api.post("/v2/SafeList/Prefixes", {"Prefix": "+7916"}).status_code == 201
    assert api.start("+79161234599").status_code == 201
    assert api.delete(f"/v2/SafeList/Numbers/{RU}").status_code == 204
    assert api.get(f"/v2/SafeList/Numbers/{RU}").status_code == 404
    assert api.delete("/v2/SafeList/Prefixes/+7916").status_code == 204
    assert_blocked(api.start("+79161234598"), 60605)


def test_risk_check_disable_needs_the_service_to_allow_it(api, runtime):
    """RiskCheck=disable is ignored (and flagged) unless a risk_check rule allows it."""
    body = assert_blocked(api.start(RU, RiskCheck="disable"), 60605)
    assert [d.reason_code for d in decisions(runtime, body["verification_sid"])] == [
        "risk_check_not_allowed",
        "geo_blocked",
    ]
    add_rule(api, "risk_check", {"allow_disable": True}, ServiceSid=api.tenant.service_sid)
    r = api.start(RU, RiskCheck="disable")
    assert r.status_code == 201
    assert [d.reason_code for d in decisions(runtime, r.json["sid"])] == ["risk_check_disabled"]


def test_monitor_mode_records_and_blocks_nothing(api, runtime):
    """A rule in monitor mode records what it would have blocked, and lets the send through."""
    add_rule(api, "prefix_velocity", {"max": 1, "window": 600}, Mode="monitor")
    assert api.start("+12015550100").status_code == 201
    r = api.start("+12015554321")
    assert r.status_code == 201
    (d,) = decisions(runtime, r.json["sid"])
    assert (d.mode, d.action, d.reason_code) == ("monitor", "block", "prefix_velocity")
    listed = api.get(f"/v2/FraudDecisions?VerificationSid={r.json['sid']}").json["fraud_decisions"]
    assert listed[0]["reason"].startswith("2 different numbers in prefix +1201555")


def test_a_blocked_resend_leaves_the_pending_verification(api, runtime):
    """A resend blocked by a rule is recorded as a blocked attempt; the verification stays pending
    and the send does not count against MaxSendAttempts."""
    first = api.start("+12015550100")
    sid = first.json["sid"]
    add_rule(api, "geo_permissions", {"allow": ["CA"]})
    body = assert_blocked(api.start("+12015550100"), 60605)
    assert body["verification_sid"] == sid
    v = verification(runtime, sid)
    assert (v.status, v.send_attempts) == ("pending", 1)
    assert [a.status for a in attempts(runtime, sid)] == ["queued", "blocked"]


def test_a_conversion_block_survives_losing_redis(api, runtime, clock):
    """The cool-down is also in the database: a Redis that comes back empty (no persistence) does
    not lift it."""
    add_rule(api, "conversion_rate", CONVERSION)
    numbers = _prefix_numbers("+1201555", 7)
    _at_bucket_start(clock)
    for n in numbers[:4]:
        assert api.start(n).status_code == 201
    clock.advance(301)
    assert_blocked(api.start(numbers[4]))
    runtime.redis.flushdb()
    time.sleep(1.1)  # the next version check finds the counter gone and reloads from the database
    body = assert_blocked(api.start(numbers[5]))
    assert body["reason_code"] == "conversion_prefix_blocked"
