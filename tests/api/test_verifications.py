"""Starting, resending, fetching, cancelling and approving verifications (the lifecycle contract)."""

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from tests.conftest import ApiClient, code_in, delivered_code, make_tenant
from verify.delivery.console import outbox_for

TO = "+14155550123"
PREMIUM_UK = "+449098790000"


def api_for(app, runtime, **service) -> ApiClient:
    """A client for a fresh tenant whose service has ``service`` settings."""
    return ApiClient(app, make_tenant(runtime, "Other", **service))


def start_sid(api: ApiClient, to: str = TO, channel: str = "sms", **extra) -> str:
    r = api.start(to, channel, **extra)
    assert r.status_code == 201, r.json
    return r.json["sid"]


def fetch(api: ApiClient, sid: str):
    return api.get(f"{api.base}/Verifications/{sid}")


def set_status(api: ApiClient, sid: str, status: str):
    return api.post(f"{api.base}/Verifications/{sid}", {"Status": status})


def codes_sent_to(runtime, to: str = TO) -> list[str]:
    return [code_in(e["body"]) for e in outbox_for(runtime).read(200) if e["to"] == to]


def assert_error(r, status: int, code: int, parameter: str | None = None) -> None:
    assert r.status_code == status, r.json
    assert r.json["code"] == code
    if parameter is not None:
        assert r.json["parameter"] == parameter


@pytest.fixture
def reach(api, clock, work, runtime):
    """Start a verification for TO and drive it into ``state``; returns its sid."""

    def drive(state: str) -> str:
        sid = start_sid(api)
        if state == "approved":
            work()
            assert api.check(delivered_code(runtime)).json["status"] == "approved"
        elif state == "canceled":
            assert set_status(api, sid, "canceled").status_code == 200
        elif state == "expired":
            clock.advance(600)
        elif state == "max_attempts_reached":
            for _ in range(5):
                api.check("0000000")
        assert fetch(api, sid).json["status"] == state
        return sid

    return drive


# -- create --------------------------------------------------------------------------------------


def test_create_is_pending_with_one_queued_attempt(api, runtime):
    """Create answers 201 pending with one send attempt, queued for the worker, not sent inline."""
    r = api.start()
    assert r.status_code == 201
    assert r.json["status"] == "pending"
    assert r.json["valid"] is False
    assert r.json["to"] == TO
    assert r.json["sid"].startswith("VE")
    [attempt] = r.json["send_code_attempts"]
    assert attempt["channel"] == "sms"
    assert attempt["status"] == "queued"
    assert runtime.queue.count == 1
    assert codes_sent_to(runtime) == []


def test_worker_sends_the_queued_attempt(api, work, runtime):
    """Once the worker has run, the attempt reads as sent and the outbox holds a 6-digit code."""
    sid = start_sid(api)
    work()
    [attempt] = fetch(api, sid).json["send_code_attempts"]
    assert attempt["status"] == "sent"
    [code] = codes_sent_to(runtime)
    assert code.isdigit()
    assert len(code) == 6


def test_code_length_comes_from_the_service(app, runtime, work):
    """A service with CodeLength 8 sends 8-digit codes."""
    api = api_for(app, runtime, code_length=8)
    start_sid(api)
    work()
    assert len(delivered_code(runtime)) == 8


def test_create_again_while_pending_resends_the_same_verification(api, clock, work, runtime):
    """A second create for the same To returns the same sid with one more attempt on the new channel."""
    first = start_sid(api)
    clock.advance(30)  # attempts are listed by time; the frozen clock would tie them
    r = api.start(TO, "call")
    assert r.status_code == 201
    assert r.json["sid"] == first
    assert r.json["channel"] == "call"
    assert [a["channel"] for a in r.json["send_code_attempts"]] == ["sms", "call"]
    work()
    first_code, second_code = codes_sent_to(runtime)
    assert first_code == second_code


def test_other_destinations_get_their_own_verification(api):
    """A create for a different To starts a different verification."""
    assert start_sid(api, TO) != start_sid(api, "+14155550124")


def test_sixth_send_is_refused_with_retry_after(api):
    """After five sends of one verification the sixth is 429 60203 with a Retry-After header."""
    for _ in range(5):
        start_sid(api)
    r = api.start()
    assert_error(r, 429, 60203)
    assert int(r.headers["Retry-After"]) > 0


@pytest.mark.parametrize("cap", [1, 3])
def test_max_send_attempts_is_per_service(app, runtime, cap):
    """MaxSendAttempts on the service sets how many sends one verification gets."""
    api = api_for(app, runtime, max_send_attempts=cap)
    for _ in range(cap):
        start_sid(api)
    assert_error(api.start(), 429, 60203)


# -- fetch and expiry ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "status"), [(0, "pending"), (599, "pending"), (600, "expired"), (3600, "expired")]
)
def test_fetch_shows_the_true_status_without_a_sweep(api, clock, elapsed, status):
    """GET shows expired as soon as code_ttl (600 s by default) has passed, before any sweep."""
    sid = start_sid(api)
    clock.advance(elapsed)
    r = fetch(api, sid)
    assert r.status_code == 200
    assert r.json["status"] == status


def test_code_ttl_is_per_service(app, runtime, clock):
    """A service with CodeTtl 60 expires its verifications after a minute."""
    api = api_for(app, runtime, code_ttl=60)
    sid = start_sid(api)
    clock.advance(60)
    assert fetch(api, sid).json["status"] == "expired"


def test_create_after_expiry_starts_a_new_verification(api, clock):
    """Once the pending one has expired, a create for the same To makes a new sid."""
    first = start_sid(api)
    clock.advance(601)
    second = start_sid(api)
    assert second != first
    assert fetch(api, first).json["status"] == "expired"
    assert fetch(api, second).json["status"] == "pending"


def test_create_after_a_terminal_state_starts_a_new_verification(api, reach):
    """After approval, a create for the same To is a new verification with one attempt."""
    first = reach("approved")
    r = api.start()
    assert r.json["sid"] != first
    assert len(r.json["send_code_attempts"]) == 1


def test_fetch_unknown_verification_is_404(api):
    """GET of a sid that does not exist is 404 20404."""
    assert_error(fetch(api, "VE" + "0" * 32), 404, 20404)


# -- cancel and approve --------------------------------------------------------------------------


def test_cancel_a_pending_verification(api):
    """Status=canceled moves a pending verification to canceled, and fetch agrees."""
    sid = start_sid(api)
    r = set_status(api, sid, "canceled")
    assert r.status_code == 200
    assert r.json["status"] == "canceled"
    assert fetch(api, sid).json["status"] == "canceled"


def test_approve_by_api_needs_manual_approval(api):
    """Status=approved is 400 60204 on a service without manual approval."""
    sid = start_sid(api)
    assert_error(set_status(api, sid, "approved"), 400, 60204)
    assert fetch(api, sid).json["status"] == "pending"


def test_approve_by_api_with_manual_approval(app, runtime):
    """With manual_approval_enabled, Status=approved approves the verification."""
    api = api_for(app, runtime, manual_approval_enabled=True)
    sid = start_sid(api)
    r = set_status(api, sid, "approved")
    assert r.status_code == 200
    assert r.json["status"] == "approved"
    assert r.json["valid"] is True


@pytest.mark.parametrize("state", ["approved", "canceled", "expired", "max_attempts_reached"])
def test_cancel_a_finished_verification_names_its_state(api, reach, state):
    """Cancelling a verification that is no longer pending is 404 20404 naming the state."""
    sid = reach(state)
    r = set_status(api, sid, "canceled")
    assert_error(r, 404, 20404)
    assert r.json["verification_status"] == state
    assert r.json["verification_sid"] == sid


@pytest.mark.parametrize("status", ["pending", "expired", "Canceled", "bogus", ""])
def test_bad_status_is_rejected(api, status):
    """A Status other than canceled or approved is 400 60200 naming Status."""
    sid = start_sid(api)
    assert_error(set_status(api, sid, status), 400, 60200, "Status")


def test_missing_status_is_rejected(api):
    """An update without Status is 400 60200 naming Status."""
    sid = start_sid(api)
    assert_error(api.post(f"{api.base}/Verifications/{sid}", {}), 400, 60200, "Status")


# -- channels and destinations -------------------------------------------------------------------


def test_disabled_channel_is_refused(app, runtime):
    """A channel the service does not enable is 400 60223."""
    api = api_for(app, runtime, channels=("sms",))
    assert_error(api.start(TO, "call"), 400, 60223)


@pytest.mark.parametrize("channel", ["pigeon", "SMS", "sna", ""])
def test_unknown_channel_is_refused(api, channel):
    """A channel that does not exist is 400 60200 naming Channel."""
    assert_error(api.start(TO, channel), 400, 60200, "Channel")


@pytest.mark.parametrize("missing", ["To", "Channel"])
def test_missing_required_parameter(api, missing):
    """A create without To or Channel is 400 60200 naming it."""
    data = {"To": TO, "Channel": "sms"}
    del data[missing]
    assert_error(api.post(f"{api.base}/Verifications", data), 400, 60200, missing)


def test_email_channel_normalizes_the_domain(api, work, runtime):
    """An email verification keeps the local part and lower-cases the domain."""
    r = api.start("Alice@Example.COM", "email")
    assert r.status_code == 201
    assert r.json["to"] == "Alice@example.com"
    assert r.json["channel"] == "email"
    work()
    assert codes_sent_to(runtime, "Alice@example.com")


@pytest.mark.parametrize(
    ("to", "channel"),
    [
        ("4155550123", "sms"),  # not E.164
        ("+1415", "sms"),
        ("+1 call me", "call"),
        ("+19995550123", "sms"),  # no such area code
        ("alice@example.com", "sms"),
        ("+14155550123", "email"),
        ("not an email", "email"),
    ],
)
def test_invalid_destination_is_refused(api, to, channel):
    """A To that is not valid for the channel is 400 60200 naming To."""
    assert_error(api.start(to, channel), 400, 60200, "To")


def test_premium_rate_number_is_refused(api):
    """A premium-rate number (UK 09xx) is 400 60200 naming To; nothing is queued."""
    number = phonenumbers.parse(PREMIUM_UK)
    assert phonenumbers.number_type(number) == PhoneNumberType.PREMIUM_RATE
    r = api.start(PREMIUM_UK)
    assert_error(r, 400, 60200, "To")
    assert "premium" in r.json["detail"]


def test_plus_sent_unencoded_in_a_form_body(api):
    """A form body where the "+" of To arrived as a space still starts the verification for +1..."""
    r = api.post(
        f"{api.base}/Verifications",
        "To=+14155550123&Channel=sms",
        content_type="application/x-www-form-urlencoded",
    )
    assert r.status_code == 201, r.json
    assert r.json["to"] == TO


def test_json_body_is_accepted(api):
    """A JSON body with Twilio's parameter names starts a verification like a form body."""
    body = {"To": TO, "Channel": "sms"}
    r = api.client.post(f"{api.base}/Verifications", json=body, auth=api.tenant.auth)
    assert r.status_code == 201, r.json
    assert r.json["to"] == TO


# -- custom codes and test numbers ---------------------------------------------------------------


def test_custom_code_needs_the_service_to_allow_it(api, runtime):
    """CustomCode on a service without custom_code_enabled is 400 60204, and nothing is queued."""
    assert_error(api.start(CustomCode="4321"), 400, 60204)
    assert runtime.queue.count == 0


def test_custom_code_approves(app, runtime, work):
    """With custom_code_enabled, the given CustomCode is the one sent and the one that approves."""
    api = api_for(app, runtime, custom_code_enabled=True)
    start_sid(api, CustomCode="4321")
    work()
    assert delivered_code(runtime) == "4321"
    r = api.check("4321")
    assert r.json["status"] == "approved"


@pytest.mark.parametrize("code", ["12", "abcd", "12345678901"])
def test_malformed_custom_code_is_refused(app, runtime, code):
    """A CustomCode that is not 4-10 digits is 400 60200 naming CustomCode."""
    api = api_for(app, runtime, custom_code_enabled=True)
    assert_error(api.start(CustomCode=code), 400, 60200, "CustomCode")


TEST_NUMBER = "+15005550006"


@pytest.fixture
def sandbox(app, runtime) -> ApiClient:
    return api_for(app, runtime, test_numbers={TEST_NUMBER: "123456"})


def test_test_number_is_never_sent(sandbox, runtime, work):
    """A test number's attempt has status test, nothing is enqueued, and the worker sends nothing."""
    r = sandbox.start(TEST_NUMBER)
    assert r.status_code == 201
    [attempt] = r.json["send_code_attempts"]
    assert attempt["status"] == "test"
    assert runtime.queue.count == 0
    work()
    assert outbox_for(runtime).read(200) == []


def test_test_number_fixed_code_approves(sandbox):
    """The fixed code of a test number approves its verification."""
    start_sid(sandbox, TEST_NUMBER)
    r = sandbox.check("123456", to=TEST_NUMBER)
    assert r.status_code == 200
    assert r.json["status"] == "approved"
    assert r.json["valid"] is True


def test_other_numbers_on_a_sandbox_service_are_sent(sandbox, runtime):
    """Numbers that are not test numbers are queued as usual on the same service."""
    r = sandbox.start(TO)
    assert r.json["send_code_attempts"][0]["status"] == "queued"
    assert runtime.queue.count == 1
