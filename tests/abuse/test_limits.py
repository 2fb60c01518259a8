"""Send limits: each key, per-service configuration, headers, Retry-After, Twilio's RateLimits and
Buckets, failing closed, concurrency and a Redis restart."""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests import servers
from tests.abuse.conftest import SPREAD, add_rule
from tests.conftest import ApiClient, Tenant, make_tenant
from verify.abuse import AbuseControls
from verify.app import create_app
from verify.domain.destinations import parse_phone
from verify.domain.ratelimits import Limit
from verify.domain.sends import SendContext, StartRequest
from verify.errors import TooManyConcurrentRequests, TooManyRequests
from verify.runtime import Runtime, build_runtime

TO = "+14155550123"


def canceled_start(api: ApiClient, to: str = TO, **extra: str) -> object:
    """One send to ``to`` in a verification of its own (canceled at once), so that only the
    destination limit counts, not the per-verification send cap."""
    r = api.start(to, **extra)
    if r.status_code == 201:
        api.post(f"{api.base}/Verifications/{r.json['sid']}", {"Status": "canceled"})
    return r


def test_a_number_gets_five_sends_per_ten_minutes(api, clock):
    """The sixth send to one number within ten minutes is 429 60203 with Retry-After and RateLimit
    headers; a send fits again once the bucket has refilled by one."""
    for n in range(5):
        r = canceled_start(api)
        assert r.status_code == 201
        assert r.headers["RateLimit-Remaining"] == str(4 - n)
    r = canceled_start(api)
    assert (r.status_code, r.json["code"]) == (429, 60203)
    assert r.json["limit"] == "destination"
    assert r.headers["Retry-After"] == "120"
    assert r.headers["RateLimit-Limit"] == "5"
    assert r.headers["RateLimit-Remaining"] == "0"
    assert r.headers["RateLimit-Reset"] == "120"
    assert "5;w=600" in r.headers["RateLimit-Policy"]
    clock.advance(119)
    assert canceled_start(api).status_code == 429
    clock.advance(1)
    assert canceled_start(api).status_code == 201


def test_a_number_gets_ten_sends_a_day(api, clock):
    """The daily bucket holds after the ten-minute one has refilled."""
    for _ in range(5):
        assert canceled_start(api).status_code == 201
    clock.advance(600)
    for _ in range(5):
        assert canceled_start(api).status_code == 201
    clock.advance(600)
    r = canceled_start(api)
    assert (r.status_code, r.json["code"]) == (429, 60203)
    assert "10/86400s" in r.json["message"]
    assert int(r.headers["Retry-After"]) > 3600


def test_a_refused_send_writes_nothing(api, runtime):
    """Over a limit, no verification, attempt or event is written."""
    from sqlalchemy import func, select

    from verify.models import Event, Verification

    for _ in range(5):
        canceled_start(api)
    with runtime.sessions() as s:
        before = (
            s.scalar(select(func.count()).select_from(Verification)),
            s.scalar(select(func.count()).select_from(Event)),
        )
    assert canceled_start(api).status_code == 429
    with runtime.sessions() as s:
        after = (
            s.scalar(select(func.count()).select_from(Verification)),
            s.scalar(select(func.count()).select_from(Event)),
        )
    assert after == before


def test_limits_are_configurable_per_service(app, runtime, api):
    """A service-scoped rate_limit rule replaces the default for its key on that service only."""
    svc2 = api.post("/v2/Services", {"FriendlyName": "Second"}).json["sid"]
    add_rule(
        api,
        "rate_limit",
        {"key": "destination", "max": 2, "interval": 600},
        ServiceSid=api.tenant.service_sid,
    )
    assert canceled_start(api).status_code == 201
    assert canceled_start(api).status_code == 201
    r = canceled_start(api)
    assert (r.status_code, r.json["code"]) == (429, 60203)
    assert r.json["policy"] == "2;w=600"
    second = ApiClient(app, replace(api.tenant, service_sid=svc2))
    for _ in range(5):
        assert canceled_start(second).status_code == 201
    assert canceled_start(second).status_code == 429


@pytest.mark.parametrize(
    ("key", "extra", "numbers"),
    [
        ("prefix", {}, ["+12015550100", "+12015550355", "+12015550610"]),
        ("country", {}, SPREAD[:3]),
        ("ip", {"DeviceIp": "198.51.100.7"}, SPREAD[:3]),
        ("api_key", {}, SPREAD[:3]),
        ("account", {}, SPREAD[:3]),
        ("service", {}, SPREAD[:3]),
    ],
)
def test_each_key_is_counted(api, key, extra, numbers):
    """With a limit of 2 on one key, the third send sharing that key is 429 20429."""
    params = {"key": key, "max": 2, "interval": 3600}
    if key == "prefix":
        params["prefix_digits"] = 3
    add_rule(api, "rate_limit", params)
    assert canceled_start(api, numbers[0], **extra).status_code == 201
    assert canceled_start(api, numbers[1], **extra).status_code == 201
    r = canceled_start(api, numbers[2], **extra)
    assert (r.status_code, r.json["code"]) == (429, 20429), r.json
    assert r.json["limit"] == key
    assert int(r.headers["Retry-After"]) == 1800


def test_other_ips_are_not_limited_by_one_ip(api):
    """The ip key counts each client address on its own."""
    add_rule(api, "rate_limit", {"key": "ip", "max": 1, "interval": 3600})
    assert canceled_start(api, SPREAD[0], DeviceIp="198.51.100.7").status_code == 201
    assert canceled_start(api, SPREAD[1], DeviceIp="198.51.100.7").status_code == 429
    assert canceled_start(api, SPREAD[2], DeviceIp="198.51.100.8").status_code == 201


def _controls(runtime: Runtime, *limits: Limit) -> AbuseControls:
    return AbuseControls(runtime.sessions, runtime.redis, runtime.clock, limits)


def _ctx(tenant: Tenant, to: str, account: str | None = None) -> SendContext:
    dest = parse_phone(to)
    return SendContext(
        account or tenant.account_sid,
        tenant.service_sid,
        dest,
        "sms",
        StartRequest(to=to, channel="sms"),
        None,
    )


def test_one_number_across_accounts_is_60212(runtime, tenant):
    """destination_global counts a number across every account: over it, 429 60212."""
    other = make_tenant(runtime, "Other")
    controls = _controls(runtime, Limit("destination_global", 2, 3600))
    controls.evaluate(_ctx(tenant, TO))
    controls.evaluate(_ctx(other, TO))
    verdict = controls.evaluate(_ctx(tenant, TO))
    assert isinstance(verdict.refusal, TooManyConcurrentRequests)
    assert verdict.refusal.code == 60212


def test_the_global_limit_counts_every_send(runtime, tenant):
    """global counts all sends of all accounts (VERIFY_GLOBAL_SENDS_PER_MINUTE)."""
    other = make_tenant(runtime, "Other")
    controls = _controls(runtime, Limit("global", 2, 60))
    assert controls.evaluate(_ctx(tenant, SPREAD[0])).refusal is None
    assert controls.evaluate(_ctx(other, SPREAD[1])).refusal is None
    refusal = controls.evaluate(_ctx(tenant, SPREAD[2])).refusal
    assert isinstance(refusal, TooManyRequests)
    assert refusal.code == 20429


def test_a_refusal_charges_no_other_key(runtime, tenant):
    """A send refused by one counter takes no allowance from the others."""
    controls = _controls(runtime, Limit("account", 3, 3600), Limit("destination", 1, 3600))
    assert controls.evaluate(_ctx(tenant, TO)).refusal is None
    for _ in range(5):
        assert controls.evaluate(_ctx(tenant, TO)).refusal is not None
    assert controls.evaluate(_ctx(tenant, SPREAD[0])).refusal is None
    assert controls.evaluate(_ctx(tenant, SPREAD[1])).refusal is None
    assert controls.evaluate(_ctx(tenant, SPREAD[2])).refusal is not None


# -- Twilio's RateLimits and Buckets ------------------------------------------------------------------


def _rate_limit(api: ApiClient, name: str = "end_user_id") -> str:
    r = api.post(f"{api.base}/RateLimits", {"UniqueName": name, "Description": "per user"})
    assert r.status_code == 201, r.json
    return str(r.json["sid"])


def test_tenant_rate_limits_apply_from_the_create_request(api):
    """A bucket of 2 per hour: the third start with the same RateLimits value is 429 20429."""
    rk = _rate_limit(api)
    b = api.post(f"{api.base}/RateLimits/{rk}/Buckets", {"Max": 2, "Interval": 3600})
    assert b.status_code == 201
    assert b.json["sid"].startswith("BL")
    assert b.json["rate_limit_sid"] == rk
    user = {"RateLimits": json.dumps({"end_user_id": "u-1"})}
    assert canceled_start(api, SPREAD[0], **user).status_code == 201
    assert canceled_start(api, SPREAD[1], **user).status_code == 201
    r = canceled_start(api, SPREAD[2], **user)
    assert (r.status_code, r.json["code"]) == (429, 20429)
    assert "end_user_id" in r.json["message"]
    other = {"RateLimits": json.dumps({"end_user_id": "u-2"})}
    assert canceled_start(api, SPREAD[3], **other).status_code == 201


def test_an_unknown_rate_limit_name_is_60200(api):
    """RateLimits naming no rate limit of the service is refused, not silently ignored."""
    r = api.start(SPREAD[0], RateLimits=json.dumps({"nope": "1"}))
    assert (r.status_code, r.json["code"], r.json["parameter"]) == (400, 60200, "RateLimits")


def test_rate_limit_and_bucket_validation(api):
    """Twilio's codes: 60209 bad UniqueName, 60208 duplicate, 60211 duplicate interval, 60210 too
    many buckets; a bucket can be fetched, updated, listed and deleted."""
    bad = api.post(f"{api.base}/RateLimits", {"UniqueName": "has space"})
    assert (bad.status_code, bad.json["code"]) == (400, 60209)
    rk = _rate_limit(api)
    dup = api.post(f"{api.base}/RateLimits", {"UniqueName": "end_user_id"})
    assert (dup.status_code, dup.json["code"]) == (400, 60208)
    base = f"{api.base}/RateLimits/{rk}/Buckets"
    first = api.post(base, {"Max": 5, "Interval": 60}).json
    assert api.post(base, {"Max": 9, "Interval": 60}).json["code"] == 60211
    for interval in (120, 180, 240, 300):
        assert api.post(base, {"Max": 5, "Interval": interval}).status_code == 201
    assert api.post(base, {"Max": 5, "Interval": 360}).json["code"] == 60210
    updated = api.post(f"{base}/{first['sid']}", {"Max": 7})
    assert updated.json["max"] == 7
    assert len(api.get(base).json["buckets"]) == 5
    assert api.delete(f"{base}/{first['sid']}").status_code == 204
    assert api.get(f"{base}/{first['sid']}").status_code == 404
    assert api.post(base, {"Max": 0, "Interval": 60}).json["code"] == 60200
    listed = api.get(f"{api.base}/RateLimits").json["rate_limits"]
    assert [r["unique_name"] for r in listed] == ["end_user_id"]


# -- failing closed --------------------------------------------------------------------------------


@pytest.fixture
def dead_redis_app(settings, runtime, clock):
    """The same database, and a Redis URL nothing listens on."""
    dead = replace(settings, redis_url=f"redis://127.0.0.1:{servers.free_port()}/0")
    rt = build_runtime(dead, clock=clock)
    yield create_app(dead, runtime=rt)
    rt.close()


def test_sends_fail_closed_without_redis(dead_redis_app, tenant, runtime):
    """Redis down: a start is 503 68601 and nothing is written."""
    from sqlalchemy import func, select

    from verify.models import Verification

    api = ApiClient(dead_redis_app, tenant)
    r = api.start()
    assert (r.status_code, r.json["code"]) == (503, 68601)
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Verification)) == 0


def test_checks_work_without_redis(api, runtime, dead_redis_app, tenant):
    """A verification started while Redis was up is checked and approved while it is down."""
    sid = api.start().json["sid"]
    from verify.models import Verification

    with runtime.sessions() as s:
        v = s.get(Verification, sid)
        code = runtime.sealer.open(sid, v.sealed_code)
    down = ApiClient(dead_redis_app, tenant)
    r = down.check(code)
    assert r.status_code == 200
    assert r.json["status"] == "approved"


# -- concurrency -----------------------------------------------------------------------------------


def test_limits_hold_under_parallel_requests(live_server, api):
    """40 simultaneous starts from one device IP with a limit of 10: exactly 10 get through."""
    add_rule(api, "rate_limit", {"key": "ip", "max": 10, "interval": 3600})
    numbers = [
        f"+1{npa}5550{n:03d}" for npa, n in zip(range(201, 300), range(100, 999, 7), strict=False)
    ]
    numbers = [n for n in numbers if _valid(n)][:40]
    assert len(numbers) == 40

    def start(to: str) -> int:
        r = httpx.post(
            f"{live_server}/v2/Services/{api.tenant.service_sid}/Verifications",
            data={"To": to, "Channel": "sms", "DeviceIp": "203.0.113.9", "RiskCheck": "enable"},
            auth=api.tenant.auth,
            timeout=60,
        )
        return r.status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(start, numbers))
    assert statuses.count(201) == 10, statuses
    assert statuses.count(429) == 30, statuses


def _valid(number: str) -> bool:
    try:
        parse_phone(number)
    except Exception:
        return False
    return True


# -- a Redis restart -------------------------------------------------------------------------------


@pytest.fixture
def persistent_redis(tmp_path: Path):
    """A redis-server with an append-only file (fsync always), restartable on the same data."""
    binary = shutil.which("redis-server")
    assert binary is not None
    port = servers.free_port()
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(tmp_path),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        import redis as redis_lib

        servers._wait(lambda: redis_lib.Redis(port=port).ping(), process, "redis-server")
        processes.append(process)

    def stop() -> None:
        process = processes.pop()
        process.terminate()
        process.wait(10)

    start()
    yield f"redis://127.0.0.1:{port}/0", start, stop
    while processes:
        stop()


def test_limits_survive_a_redis_restart(settings, runtime, clock, tenant, persistent_redis):
    """With Redis persisting (appendonly), an exhausted limit is still exhausted after a restart:
    no fresh allowance, no flood."""
    url, start, stop = persistent_redis
    on_disk = replace(settings, redis_url=url)
    rt = build_runtime(on_disk, clock=clock)
    api = ApiClient(create_app(on_disk, runtime=rt), tenant)
    try:
        for _ in range(5):
            assert canceled_start(api).status_code == 201
        stop()
        assert api.start().json["code"] == 68601  # down: closed, not open
        start()
        r = canceled_start(api)
        assert (r.status_code, r.json["code"]) == (429, 60203)
    finally:
        rt.close()


def test_blocked_sends_take_no_allowance_from_cost_limits(api):
    """Sends a rule blocked cost nothing: they do not use up the account's limit."""
    add_rule(api, "rate_limit", {"key": "account", "max": 2, "interval": 3600})
    for n in range(4):
        r = canceled_start(api, f"+7916123456{n}")
        assert (r.status_code, r.json["code"]) == (403, 60605)
    assert canceled_start(api, SPREAD[0]).status_code == 201
    assert canceled_start(api, SPREAD[1]).status_code == 201
    assert canceled_start(api, SPREAD[2]).status_code == 429


@pytest.fixture
def proxied_api(settings, runtime, clock, tenant):
    """The app behind one trusted reverse proxy (VERIFY_TRUSTED_PROXIES=1)."""
    behind = replace(settings, trusted_proxies=1)
    rt = build_runtime(behind, clock=clock)
    yield ApiClient(create_app(behind, runtime=rt), tenant)
    rt.close()


def test_a_spoofed_forwarded_for_does_not_reset_the_ip_limit(proxied_api):
    """Behind one proxy the client is the last X-Forwarded-For entry; what the client wrote to the
    left of it changes nothing."""
    api = proxied_api
    add_rule(api, "rate_limit", {"key": "ip", "max": 1, "interval": 3600})

    def start(to: str, forwarded: str) -> int:
        r = api.post(
            f"{api.base}/Verifications",
            {"To": to, "Channel": "sms"},
            headers={"X-Forwarded-For": forwarded},
        )
        return int(r.status_code)

    assert start(SPREAD[0], "9.9.9.9, 203.0.113.5") == 201
    assert start(SPREAD[1], "8.8.8.8, 203.0.113.5") == 429
    assert start(SPREAD[2], "203.0.113.5") == 429
    assert start(SPREAD[3], "9.9.9.9, 203.0.113.6") == 201


def test_without_trusted_proxies_forwarded_for_is_ignored(api):
    """With no trusted proxy configured, X-Forwarded-For is the client's to write: the peer counts."""
    add_rule(api, "rate_limit", {"key": "ip", "max": 1, "interval": 3600})
    first = api.post(
        f"{api.base}/Verifications",
        {"To": SPREAD[0], "Channel": "sms"},
        headers={"X-Forwarded-For": "203.0.113.5"},
    )
    assert first.status_code == 201
    second = api.post(
        f"{api.base}/Verifications",
        {"To": SPREAD[1], "Channel": "sms"},
        headers={"X-Forwarded-For": "203.0.113.6"},
    )
    assert second.status_code == 429
