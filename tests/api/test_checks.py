"""VerificationCheck: right and wrong codes, attempt caps, terminal states, expiry, failure budget."""

from dataclasses import replace

import pytest

from tests.conftest import ApiClient, delivered_code, make_tenant
from verify.app import create_app
from verify.domain.clock import FrozenClock
from verify.runtime import build_runtime

TO = "+14155550123"
WRONG = "0000000"  # seven digits: never equal to a six-digit code


def api_for(app, runtime, **service) -> ApiClient:
    """A client for a fresh tenant whose service has ``service`` settings."""
    return ApiClient(app, make_tenant(runtime, "Other", **service))


def start_sid(api: ApiClient, to: str = TO, channel: str = "sms") -> str:
    r = api.start(to, channel)
    assert r.status_code == 201, r.json
    return r.json["sid"]


def status_of(api: ApiClient, sid: str) -> str:
    return api.get(f"{api.base}/Verifications/{sid}").json["status"]


def assert_error(r, status: int, code: int, parameter: str | None = None) -> None:
    assert r.status_code == status, r.json
    assert r.json["code"] == code
    if parameter is not None:
        assert r.json["parameter"] == parameter


@pytest.fixture
def code(api, work, runtime) -> str:
    """Start a verification for TO, deliver it, and return its code."""
    start_sid(api)
    work()
    return delivered_code(runtime)


# -- right and wrong codes -----------------------------------------------------------------------


def test_right_code_approves(api, code):
    """The delivered code gives 200, status approved, valid true."""
    r = api.check(code)
    assert r.status_code == 200
    assert r.json["status"] == "approved"
    assert r.json["valid"] is True
    assert r.json["to"] == TO


def test_wrong_code_is_not_an_error(api, code):
    """A wrong code gives 200, status still pending, valid false."""
    r = api.check(WRONG)
    assert r.status_code == 200
    assert r.json["status"] == "pending"
    assert r.json["valid"] is False


def test_right_code_after_wrong_ones_still_approves(api, code):
    """Wrong codes below the cap do not stop the right one from approving."""
    for _ in range(4):
        api.check(WRONG)
    assert api.check(code).json["status"] == "approved"


def test_fifth_wrong_check_reaches_max_attempts(api, code):
    """Four wrong checks are 200 pending; the fifth is 429 60202 and the status max_attempts_reached."""
    for _ in range(4):
        assert api.check(WRONG).json["status"] == "pending"
    r = api.check(WRONG)
    assert_error(r, 429, 60202)
    assert "Retry-After" in r.headers
    assert status_of(api, r.json["verification_sid"]) == "max_attempts_reached"


@pytest.mark.parametrize("later", ["right", "wrong"])
def test_checks_after_max_attempts_are_refused(api, code, later):
    """Once max_attempts_reached, every later check, even with the right code, is 429 60202."""
    for _ in range(5):
        api.check(WRONG)
    assert_error(api.check(code if later == "right" else WRONG), 429, 60202)


@pytest.mark.parametrize("cap", [1, 3])
def test_max_check_attempts_is_per_service(app, runtime, cap):
    """MaxCheckAttempts on the service sets how many wrong checks end the verification."""
    api = api_for(app, runtime, max_check_attempts=cap)
    sid = start_sid(api)
    for _ in range(cap - 1):
        assert api.check(WRONG).status_code == 200
    assert_error(api.check(WRONG), 429, 60202)
    assert status_of(api, sid) == "max_attempts_reached"


def test_a_resend_keeps_the_check_count(api, code):
    """Resending does not give a verification fresh check attempts."""
    for _ in range(4):
        api.check(WRONG)
    start_sid(api)
    assert_error(api.check(WRONG), 429, 60202)


# -- terminal states -----------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["approved", "canceled", "expired"])
def test_check_after_a_terminal_state_names_it(api, code, clock, state):
    """A check on an approved, canceled or expired verification is 404 20404 naming the state."""
    sid = api.check(WRONG).json["sid"]
    if state == "approved":
        api.check(code)
    elif state == "canceled":
        api.post(f"{api.base}/Verifications/{sid}", {"Status": "canceled"})
    else:
        clock.advance(600)
    r = api.check(code)
    assert_error(r, 404, 20404)
    assert r.json["verification_status"] == state
    assert r.json["verification_sid"] == sid


def test_expiry_is_enforced_at_check_time(api, code, clock):
    """Past code_ttl the right code is refused (404 expired), without any sweep having run."""
    clock.advance(601)
    r = api.check(code)
    assert_error(r, 404, 20404)
    assert r.json["verification_status"] == "expired"


def test_right_code_just_before_expiry_approves(api, code, clock):
    """One second before code_ttl the code still approves."""
    clock.advance(599)
    assert api.check(code).json["status"] == "approved"


def test_check_without_any_verification_is_404(api):
    """A check for a To that never had a verification is 404 20404."""
    assert_error(api.check("123456"), 404, 20404)


# -- addressing the check ------------------------------------------------------------------------


def test_check_by_verification_sid(api, code):
    """A check can name the verification by VerificationSid instead of To."""
    sid = api.check(WRONG).json["sid"]
    r = api.check(code, to=None, VerificationSid=sid)
    assert r.status_code == 200
    assert r.json["status"] == "approved"
    assert r.json["sid"] == sid


def test_check_by_unknown_verification_sid_is_404(api):
    """A VerificationSid that does not exist is 404 20404."""
    assert_error(api.check("123456", to=None, VerificationSid="VE" + "0" * 32), 404, 20404)


def test_check_with_neither_to_nor_sid(api):
    """A check with neither To nor VerificationSid is 400 60221."""
    assert_error(api.check("123456", to=None), 400, 60221)


def test_check_without_code_names_code(api):
    """A check with no Code is 400 60200 naming Code."""
    r = api.post(f"{api.base}/VerificationCheck", {"To": TO})
    assert_error(r, 400, 60200, "Code")


@pytest.mark.parametrize("bad", ["12", "abcdef", "12345678901"])
def test_malformed_code_names_code(api, code, bad):
    """A Code that is not 4-10 digits is 400 60200 naming Code."""
    assert_error(api.check(bad), 400, 60200, "Code")


def test_check_with_plus_sent_unencoded(api, code):
    """A form body where the "+" of To arrived as a space still finds the verification."""
    r = api.post(
        f"{api.base}/VerificationCheck",
        f"To=+14155550123&Code={code}",
        content_type="application/x-www-form-urlencoded",
    )
    assert r.status_code == 200, r.json
    assert r.json["status"] == "approved"


def test_check_by_email_ignores_domain_case(api, work, runtime):
    """An email verification is found by To whatever the case of its domain."""
    start_sid(api, "alice@example.com", "email")
    work()
    code = delivered_code(runtime, "alice@example.com")
    assert api.check(code, to="alice@EXAMPLE.com").json["status"] == "approved"


# -- the per-destination failure budget ----------------------------------------------------------

BUDGET = 3


@pytest.fixture
def budget_api(settings, runtime, clock, tenant):
    """A client on an app whose per-destination failure budget is BUDGET."""
    limits = replace(settings.limits, destination_failure_budget=BUDGET)
    small = replace(settings, limits=limits)
    rt = build_runtime(small, clock=clock)  # the `runtime` fixture has migrated and cleaned
    yield ApiClient(create_app(small, runtime=rt), tenant)
    rt.close()


def fresh_verification(api: ApiClient, clock: FrozenClock) -> str:
    """Cancel the pending verification for TO (if any) and start a new one, a few minutes later
    (one number takes at most five sends in ten minutes)."""
    clock.advance(150)
    r = api.start()
    api.post(f"{api.base}/Verifications/{r.json['sid']}", {"Status": "canceled"})
    clock.advance(150)
    return start_sid(api)


def test_failure_budget_spans_verifications(budget_api, work, runtime, clock):
    """Failed checks across verifications of one number exhaust the budget: even a fresh one is 429."""
    fresh_verification(budget_api, clock)
    budget_api.check(WRONG)
    budget_api.check(WRONG)
    fresh_verification(budget_api, clock)
    budget_api.check(WRONG)
    fresh_verification(budget_api, clock)
    work()
    r = budget_api.check(delivered_code(runtime))
    assert_error(r, 429, 60202)
    assert int(r.headers["Retry-After"]) > 0


def test_failure_budget_is_per_destination(budget_api):
    """Failures on one number do not count against another."""
    start_sid(budget_api)
    for _ in range(BUDGET):
        budget_api.check(WRONG)
    assert_error(budget_api.check(WRONG), 429, 60202)
    start_sid(budget_api, "+14155550124")
    assert budget_api.check(WRONG, to="+14155550124").status_code == 200


def test_approval_resets_the_failure_budget(budget_api, work, runtime):
    """An approval clears the destination's failure streak."""
    start_sid(budget_api)
    for _ in range(BUDGET - 1):
        budget_api.check(WRONG)
    work()
    assert budget_api.check(delivered_code(runtime)).json["status"] == "approved"
    start_sid(budget_api)
    for _ in range(BUDGET - 1):
        assert budget_api.check(WRONG).status_code == 200
    work()
    assert budget_api.check(delivered_code(runtime)).json["status"] == "approved"
