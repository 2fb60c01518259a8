"""Idempotency-Key on POST (IETF draft semantics): replay, 422 on reuse, 409 in flight, account scope."""

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from tests.conftest import ApiClient, make_tenant
from verify.app import create_app
from verify.domain.accounts import AccountService
from verify.idempotency import IdempotencyStore, StoredResponse, fingerprint
from verify.models import SendAttempt, Verification

FORM = "application/x-www-form-urlencoded"
KEY = "a3f1c6e2-5b7d-4e0a-9c8f-2d1e6b4a7c90"


def keyed(key: str = KEY) -> dict[str, dict[str, str]]:
    return {"headers": {"Idempotency-Key": key}}


def start(api: ApiClient, key: str = KEY, to: str = "+14155550123", **kwargs):
    """Start a verification with an Idempotency-Key (ApiClient.start puts extras in the body)."""
    return api.post(
        f"{api.base}/Verifications", {"To": to, "Channel": "sms"}, **keyed(key), **kwargs
    )


def check(api: ApiClient, code: str, key: str = KEY):
    return api.post(
        f"{api.base}/VerificationCheck", {"To": "+14155550123", "Code": code}, **keyed(key)
    )


def count(runtime, model) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def store(runtime) -> IdempotencyStore:
    limits = runtime.settings.limits
    return IdempotencyStore(
        runtime.redis, ttl=limits.idempotency_ttl, lock_ttl=limits.idempotency_lock_ttl
    )


def test_same_key_same_body_replays_the_stored_response(api):
    """A repeat with the same key and body gets the first response byte for byte, marked replayed."""
    first = start(api)
    again = start(api)
    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    assert again.content_type == first.content_type


def test_replay_makes_no_second_send_attempt(api, runtime):
    """A replayed start neither records another send attempt nor enqueues another job."""
    start(api)
    start(api)
    assert count(runtime, SendAttempt) == 1
    assert runtime.queue.count == 1
    api.start()  # the control: without the key, a repeat is a real resend
    assert count(runtime, SendAttempt) == 2


def test_replayed_check_does_not_count_another_attempt(api):
    """A replayed wrong check returns the stored result without spending another check attempt."""
    sid = api.start().json["sid"]
    wrong = check(api, "0000000000")
    check(api, "0000000000")
    fetched = api.get(f"{api.base}/Verifications/{sid}").json
    assert wrong.json["valid"] is False
    assert fetched["check_attempts"] == 1


@pytest.mark.parametrize(
    ("path", "data"),
    [
        pytest.param("/Verifications", {"To": "+14155550124", "Channel": "sms"}, id="other-body"),
        pytest.param("/VerificationCheck", {"To": "+14155550123", "Code": "1234"}, id="other-path"),
    ],
)
def test_same_key_other_request_is_422(api, runtime, path, data):
    """The same key with a different request is refused with 422, code 20422, and not executed."""
    start(api)
    r = api.post(api.base + path, data, **keyed())
    assert r.status_code == 422
    assert r.json["code"] == 20422
    assert r.mimetype == "application/problem+json"
    assert count(runtime, Verification) == 1


def test_key_is_scoped_to_the_account(app, api, runtime):
    """Another account using the same key on an identical request gets its own fresh result."""
    other = ApiClient(app, make_tenant(runtime, "Globex"))
    mine = api.post("/v2/Services", {"FriendlyName": "Shop"}, **keyed())
    theirs = other.post("/v2/Services", {"FriendlyName": "Shop"}, **keyed())
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json["account_sid"] == other.tenant.account_sid
    assert theirs.json["sid"] != mine.json["sid"]


def test_key_is_shared_by_the_credentials_of_one_account(api, runtime, tenant):
    """The scope is the account, not the credential: its API key replays what its token stored."""
    with runtime.sessions() as session:
        key, secret = AccountService(session, runtime.clock).create_api_key(
            tenant.account_sid, "deploy"
        )
    first = start(api)
    again = start(api, auth=(key.sid, secret))
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()


def _raw_start(api: ApiClient, body: str, key: str = KEY):
    return api.client.post(
        f"{api.base}/Verifications",
        data=body,
        content_type=FORM,
        headers={"Idempotency-Key": key},
        auth=api.tenant.auth,
    )


def test_same_key_while_the_first_is_in_flight_is_409(api, runtime, tenant):
    """While the first request holds the key, a repeat is refused with 409, code 20409."""
    body = "To=%2B14155550123&Channel=sms"
    fp = fingerprint("POST", f"{api.base}/Verifications", FORM, body.encode())
    assert store(runtime).begin(tenant.account_sid, KEY, fp) is None  # the first request's claim
    r = _raw_start(api, body)
    assert r.status_code == 409
    assert r.json["code"] == 20409
    assert count(runtime, Verification) == 0


def test_409_leaves_the_first_requests_claim_in_place(api, runtime, tenant):
    """Refusing the repeat does not release the key: the first request still finishes and is stored."""
    body = "To=%2B14155550123&Channel=sms"
    fp = fingerprint("POST", f"{api.base}/Verifications", FORM, body.encode())
    idem = store(runtime)
    idem.begin(tenant.account_sid, KEY, fp)
    assert _raw_start(api, body).status_code == 409
    assert _raw_start(api, body).status_code == 409
    idem.finish(tenant.account_sid, KEY, fp, StoredResponse(201, b'{"sid": "VE1"}', "x/y"))
    r = _raw_start(api, body)
    assert r.headers["Idempotent-Replayed"] == "true"
    assert r.get_data() == b'{"sid": "VE1"}'


@pytest.mark.parametrize("status", [409, 429, 500, 502, 503])
def test_responses_that_invite_retry_are_not_stored(runtime, tenant, status):
    """Finishing with 5xx, 409 or 429 releases the key, so a retry runs for real."""
    idem = store(runtime)
    idem.begin(tenant.account_sid, KEY, "fp")
    idem.finish(tenant.account_sid, KEY, "fp", StoredResponse(status, b"{}", "application/json"))
    assert idem.begin(tenant.account_sid, KEY, "fp") is None


def test_a_429_is_not_replayed(app, runtime):
    """A start refused with 429 is retried for real with the same key once sending is possible again."""
    api = ApiClient(app, make_tenant(runtime, "Acme", max_send_attempts=1))
    sid = api.start().json["sid"]
    refused = start(api)
    assert refused.status_code == 429
    assert refused.json["code"] == 60203
    api.post(f"{api.base}/Verifications/{sid}", {"Status": "canceled"})
    retried = start(api)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert retried.json["sid"] != sid


class _BrokenSealer:
    def seal(self, sid: str, code: str) -> bytes:
        raise RuntimeError("disk on fire")


def test_a_500_is_not_replayed(settings, runtime, api, tenant):
    """A start that failed with 500 is retried for real with the same key."""
    broken = ApiClient(
        create_app(settings, runtime=replace(runtime, sealer=_BrokenSealer())), tenant
    )
    failed = start(broken)
    assert failed.status_code == 500
    assert failed.json["code"] == 20500
    retried = start(api)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers


def test_a_final_client_error_is_replayed(api):
    """A 400 is a final answer: the same request with the same key gets it back, marked replayed."""
    first = start(api, to="not-a-number")
    again = start(api, to="not-a-number")
    assert first.status_code == again.status_code == 400
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()


@pytest.mark.parametrize(
    "key", ["k" * 256, "k" * 300, "", "tab\there"], ids=["256", "300", "empty", "tab"]
)
def test_invalid_key_is_400_naming_the_header(api, runtime, key):
    """A key that is empty, longer than 255 characters or not printable is a 400 60200 naming it."""
    r = start(api, key)
    assert r.status_code == 400
    assert r.json["code"] == 60200
    assert r.json["parameter"] == "Idempotency-Key"
    assert "Idempotency-Key" in r.json["message"]
    assert count(runtime, Verification) == 0


def test_key_of_255_characters_is_accepted(api):
    """The longest allowed key (255 characters) works like any other."""
    assert start(api, "k" * 255).status_code == 201
    assert start(api, "k" * 255).headers["Idempotent-Replayed"] == "true"


def test_services_create_honours_the_key(api):
    """Creating a service twice with the same key creates one service and replays the response."""
    first = api.post("/v2/Services", {"FriendlyName": "Shop"}, **keyed())
    again = api.post("/v2/Services", {"FriendlyName": "Shop"}, **keyed())
    assert first.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    names = [s["friendly_name"] for s in api.get("/v2/Services").json["services"]]
    assert names.count("Shop") == 1


def test_stored_responses_are_kept_at_least_24_hours(api, runtime):
    """The stored response outlives a day (the draft's minimum retention)."""
    start(api)
    [rkey] = runtime.redis.keys("verify:idem:*")
    assert runtime.redis.ttl(rkey) >= 24 * 3600 - 5
