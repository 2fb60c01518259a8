"""Tenancy: every lookup is scoped to the authenticated account; another tenant's object is a 404."""

import pytest

from tests.conftest import ApiClient, make_tenant
from verify.domain import sids
from verify.domain.accounts import AccountService


@pytest.fixture
def intruder(app, runtime) -> ApiClient:
    """Tenant B, with its own account and service."""
    return ApiClient(app, make_tenant(runtime, "Globex"))


@pytest.fixture
def victim_sid(api) -> str:
    """A pending verification of tenant A (``api``)."""
    r = api.start()
    assert r.status_code == 201
    return str(r.json["sid"])


def assert_not_found(r) -> None:
    assert r.status_code == 404, r.json
    assert r.json["code"] == 20404


@pytest.mark.parametrize(
    ("method", "data"),
    [
        pytest.param("get", None, id="fetch"),
        pytest.param("post", {"FriendlyName": "Mine now"}, id="update"),
        pytest.param("delete", None, id="delete"),
    ],
)
def test_other_tenants_service_is_404(api, intruder, method, data):
    """Fetching, updating or deleting another account's service is a 404 20404, and changes nothing."""
    path = f"/v2/Services/{api.tenant.service_sid}"
    kwargs = {"data": data} if data else {}
    assert_not_found(getattr(intruder, method)(path, **kwargs))
    assert api.get(path).json["friendly_name"] == "Acme Login"


def test_other_tenants_service_looks_like_a_missing_one(api, intruder):
    """The 404 for another account's service is the 404 for a sid that does not exist."""
    missing = sids.new_sid(sids.SERVICE)
    theirs = intruder.get(f"/v2/Services/{api.tenant.service_sid}")
    nothing = intruder.get(f"/v2/Services/{missing}")
    assert (
        theirs.json["message"].replace(api.tenant.service_sid, missing) == nothing.json["message"]
    )
    assert theirs.json.keys() == nothing.json.keys()


def test_starting_on_other_tenants_service_is_404(api, intruder, runtime):
    """Starting a verification on another account's service is a 404 and enqueues nothing."""
    r = intruder.post(
        f"/v2/Services/{api.tenant.service_sid}/Verifications",
        {"To": "+14155550123", "Channel": "sms"},
    )
    assert_not_found(r)
    assert runtime.queue.count == 0


@pytest.mark.parametrize("through", ["own_service", "victims_service"])
def test_other_tenants_verification_cannot_be_fetched(api, intruder, victim_sid, through):
    """Fetching another account's verification, through either service path, is a 404."""
    service = intruder.tenant.service_sid if through == "own_service" else api.tenant.service_sid
    assert_not_found(intruder.get(f"/v2/Services/{service}/Verifications/{victim_sid}"))


@pytest.mark.parametrize("through", ["own_service", "victims_service"])
def test_other_tenants_verification_cannot_be_canceled(api, intruder, victim_sid, through):
    """Canceling another account's verification is a 404 and it stays pending."""
    service = intruder.tenant.service_sid if through == "own_service" else api.tenant.service_sid
    r = intruder.post(f"/v2/Services/{service}/Verifications/{victim_sid}", {"Status": "canceled"})
    assert_not_found(r)
    assert api.get(f"{api.base}/Verifications/{victim_sid}").json["status"] == "pending"


@pytest.mark.parametrize("through", ["own_service", "victims_service"])
def test_other_tenants_verification_cannot_be_checked(api, intruder, victim_sid, through):
    """Checking another account's verification by VerificationSid is a 404 and spends no attempt."""
    service = intruder.tenant.service_sid if through == "own_service" else api.tenant.service_sid
    r = intruder.post(
        f"/v2/Services/{service}/VerificationCheck",
        {"VerificationSid": victim_sid, "Code": "123456"},
    )
    assert_not_found(r)
    fetched = api.get(f"{api.base}/Verifications/{victim_sid}").json
    assert fetched["status"] == "pending"
    assert fetched["check_attempts"] == 0


def test_services_list_shows_only_own_services(api, intruder):
    """Each account's services list holds its own services and nobody else's."""
    api.post("/v2/Services", {"FriendlyName": "Acme Signup"})
    mine = {s["sid"] for s in api.get("/v2/Services").json["services"]}
    theirs = {s["sid"] for s in intruder.get("/v2/Services").json["services"]}
    assert api.tenant.service_sid in mine
    assert len(mine) == 2
    assert theirs == {intruder.tenant.service_sid}


def test_api_key_authenticates_as_its_account(api, runtime, tenant):
    """An API key's sid and secret act for the account that owns the key."""
    with runtime.sessions() as session:
        key, secret = AccountService(session, runtime.clock).create_api_key(
            tenant.account_sid, "deploy"
        )
    r = api.post(
        f"{api.base}/Verifications",
        {"To": "+14155550123", "Channel": "sms"},
        auth=(key.sid, secret),
    )
    assert r.status_code == 201
    assert r.json["account_sid"] == tenant.account_sid
    listed = api.get("/v2/Services", auth=(key.sid, secret)).json["services"]
    assert [s["sid"] for s in listed] == [tenant.service_sid]


def test_api_key_cannot_reach_another_account(api, intruder, runtime):
    """An API key of account B is scoped to B like B's own token: A's service is a 404."""
    with runtime.sessions() as session:
        key, secret = AccountService(session, runtime.clock).create_api_key(
            intruder.tenant.account_sid, "deploy"
        )
    assert_not_found(api.get(f"/v2/Services/{api.tenant.service_sid}", auth=(key.sid, secret)))


@pytest.mark.parametrize(
    "credentials",
    ["account_wrong_token", "api_key_wrong_secret", "other_accounts_token", "unknown_sid"],
)
def test_wrong_secret_is_401(api, intruder, runtime, tenant, credentials):
    """A real sid with a wrong secret (or another account's secret) is a 401 20003."""
    with runtime.sessions() as session:
        key, _ = AccountService(session, runtime.clock).create_api_key(tenant.account_sid, "ci")
    auth = {
        "account_wrong_token": (tenant.account_sid, "0" * 64),
        "api_key_wrong_secret": (key.sid, "0" * 64),
        "other_accounts_token": (tenant.account_sid, intruder.tenant.auth_token),
        "unknown_sid": (sids.new_sid(sids.ACCOUNT), tenant.auth_token),
    }[credentials]
    r = api.get("/v2/Services", auth=auth)
    assert r.status_code == 401
    assert r.json["code"] == 20003
    assert r.headers["WWW-Authenticate"].startswith("Basic")
