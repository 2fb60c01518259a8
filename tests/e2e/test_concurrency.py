"""Concurrent checks and sends through the live HTTP server: state changes happen exactly once.

Each request runs on its own thread and connection; a Barrier releases them together.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import Tenant, delivered_code, make_tenant
from verify.models import CheckAttempt, SendAttempt, Verification
from verify.runtime import Runtime

TO = "+14155550123"
PARALLEL = 30

# Only these params of the session's ``backend`` fixture run here (SQLite serializes every writer,
# so the races below mostly cannot happen on it; the approval test runs there too as a regression).
POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
postgres_only = pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
both_backends = pytest.mark.parametrize("backend", ["sqlite", POSTGRES], indirect=True)


def in_parallel(n: int, request: Callable[[httpx.Client], httpx.Response]) -> list[httpx.Response]:
    """Run ``request`` on ``n`` threads at once, each with its own client (its own connection)."""
    barrier = threading.Barrier(n)

    def one(_: int) -> httpx.Response:
        with httpx.Client(timeout=60) as http:
            barrier.wait(timeout=30)
            return request(http)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


class Api:
    def __init__(self, base_url: str, tenant: Tenant) -> None:
        self.auth = tenant.auth
        self.service = f"{base_url}/v2/Services/{tenant.service_sid}"

    def start(self, http: httpx.Client) -> httpx.Response:
        data = {"To": TO, "Channel": "sms"}
        return http.post(f"{self.service}/Verifications", data=data, auth=self.auth)

    def check(self, code: str) -> Callable[[httpx.Client], httpx.Response]:
        def run(http: httpx.Client) -> httpx.Response:
            data = {"To": TO, "Code": code}
            return http.post(f"{self.service}/VerificationCheck", data=data, auth=self.auth)

        return run


def outcomes(responses: list[httpx.Response]) -> Counter[tuple[int, Any]]:
    """(status, Twilio code or verification status) for each response, counted."""
    assert all(r.status_code < 500 for r in responses), [r.text for r in responses]
    counts: Counter[tuple[int, Any]] = Counter()
    for r in responses:
        body = r.json()
        counts[(r.status_code, body["status"] if r.status_code == 200 else body["code"])] += 1
    return counts


def check_rows(runtime: Runtime, sid: str, outcome: str) -> int:
    """How many recorded checks of ``sid`` had ``outcome``."""
    with runtime.sessions() as session:
        query = select(func.count()).where(
            CheckAttempt.verification_sid == sid, CheckAttempt.outcome == outcome
        )
        return int(session.scalar(query) or 0)


def verification(runtime: Runtime, sid: str) -> Verification:
    with runtime.sessions() as session:
        v = session.get(Verification, sid)
        assert v is not None
        return v


@both_backends
def test_parallel_right_codes_approve_exactly_once(
    live_server: str, tenant: Tenant, runtime: Runtime, work: Callable[[], None]
) -> None:
    """Of 30 simultaneous checks with the right code, one approves; the rest see it approved."""
    api = Api(live_server, tenant)
    with httpx.Client() as http:
        started = api.start(http)
    assert started.status_code == 201, started.text
    work()
    code = delivered_code(runtime, TO)

    responses = in_parallel(PARALLEL, api.check(code))

    counts = outcomes(responses)
    assert counts[(200, "approved")] == 1, counts
    for r in responses:
        if r.status_code == 404:
            assert r.json()["code"] == 20404
            assert r.json()["verification_status"] == "approved"
        elif r.status_code == 429:
            assert r.json()["code"] == 60202
        else:
            assert (r.status_code, r.json()["valid"]) == (200, True)
    v = verification(runtime, started.json()["sid"])
    assert v.status == "approved"
    assert check_rows(runtime, v.sid, "approved") == 1


@postgres_only
def test_parallel_wrong_codes_count_exactly_max_attempts(
    live_server: str, runtime: Runtime, work: Callable[[], None]
) -> None:
    """30 simultaneous wrong checks with max_check_attempts=5 count exactly 5; the rest are 60202."""
    tenant = make_tenant(runtime, "Wrong", max_check_attempts=5)
    api = Api(live_server, tenant)
    with httpx.Client() as http:
        started = api.start(http)
    assert started.status_code == 201, started.text
    work()
    code = delivered_code(runtime, TO)
    wrong = "0" * len(code) if code != "0" * len(code) else "1" * len(code)

    responses = in_parallel(PARALLEL, api.check(wrong))

    counts = outcomes(responses)
    # The first four wrong checks answer "pending"; the fifth ends the verification with a 429.
    assert counts == Counter({(200, "pending"): 4, (429, 60202): PARALLEL - 4}), counts
    assert all(r.json()["valid"] is False for r in responses if r.status_code == 200)
    v = verification(runtime, started.json()["sid"])
    assert v.check_attempts == 5
    assert v.status == "max_attempts_reached"
    assert check_rows(runtime, v.sid, "wrong_code") == 5


@postgres_only
def test_parallel_starts_share_one_verification(live_server: str, runtime: Runtime) -> None:
    """20 simultaneous starts for one To make one verification, capped at max_send_attempts."""
    tenant = make_tenant(runtime, "Sends", max_send_attempts=5)
    api = Api(live_server, tenant)

    responses = in_parallel(20, api.start)

    assert all(r.status_code < 500 for r in responses), [r.text for r in responses]
    created = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(created) == 5, [r.text for r in responses]
    assert {r.json()["sid"] for r in created} == {created[0].json()["sid"]}
    assert all((r.status_code, r.json()["code"]) == (429, 60203) for r in refused)

    with runtime.sessions() as session:
        rows = session.scalars(
            select(Verification).where(Verification.service_sid == tenant.service_sid)
        ).all()
        assert [v.sid for v in rows] == [created[0].json()["sid"]]
        assert rows[0].send_attempts == 5
        sends = session.scalar(
            select(func.count()).where(SendAttempt.verification_sid == rows[0].sid)
        )
    assert sends == 5
