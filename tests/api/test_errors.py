"""The one error body: Twilio's fields plus RFC 9457's detail, as application/problem+json."""

import pytest

from verify.domain.accounts import AccountService

NO_SUCH_VERIFICATION = "VE" + "0" * 32
NO_SUCH_SERVICE = "VA" + "0" * 32


def assert_problem(r, status: int, code: int) -> dict:
    """``r`` is an error with Twilio's fields, as problem+json, never with both type and title."""
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.mimetype == "application/problem+json"
    body = r.get_json(force=True)
    assert body["code"] == code
    assert body["status"] == status
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["more_info"].startswith("http")
    assert body["more_info"].endswith(f"/errors/{code}")
    assert not {"type", "title"} <= body.keys()
    return body


def send(api, method: str, path: str, **kwargs):
    kwargs.setdefault("auth", api.tenant.auth)
    return api.client.open(path.format(base=api.base), method=method, **kwargs)


FORM_TO_BAD = {"data": {"To": "nobody", "Channel": "sms"}}
TEXT = {"data": "FriendlyName=Shop", "content_type": "text/plain"}
JSON_BROKEN = {"data": '{"To": ', "content_type": "application/json"}
JSON_ARRAY = {"data": "[1, 2]", "content_type": "application/json"}
TOO_LARGE = {"data": {"FriendlyName": "x" * 70_000}}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        pytest.param("GET", "/nope", {}, 404, 20404, id="unknown-path"),
        pytest.param("GET", "{base}/Nope", {}, 404, 20404, id="unknown-path-under-v2"),
        pytest.param("PUT", "/v2/Services", {}, 405, 20004, id="wrong-method"),
        pytest.param("GET", "{base}/VerificationCheck", {}, 405, 20004, id="wrong-method-check"),
        pytest.param("POST", "/v2/Services", TEXT, 415, 68415, id="text-plain-body"),
        pytest.param("POST", "{base}/Verifications", JSON_BROKEN, 400, 68400, id="malformed-json"),
        pytest.param("POST", "{base}/Verifications", JSON_ARRAY, 400, 68400, id="json-not-object"),
        pytest.param("POST", "/v2/Services", TOO_LARGE, 413, 68413, id="body-too-large"),
        pytest.param("POST", "{base}/Verifications", FORM_TO_BAD, 400, 60200, id="bad-parameter"),
        pytest.param(
            "POST",
            "{base}/VerificationCheck",
            {"data": {"Code": "1234"}},
            400,
            60221,
            id="no-target",
        ),
        pytest.param(
            "GET",
            f"{{base}}/Verifications/{NO_SUCH_VERIFICATION}",
            {},
            404,
            20404,
            id="no-such-verification",
        ),
        pytest.param(
            "GET", f"/v2/Services/{NO_SUCH_SERVICE}", {}, 404, 20404, id="no-such-service"
        ),
    ],
)
def test_every_error_has_the_problem_body(api, method, path, kwargs, status, code):
    """Each kind of error, Flask-level or ours, has the same body and content type."""
    assert_problem(send(api, method, path, **kwargs), status, code)


def test_wrong_method_lists_the_allowed_ones(api):
    """A 405 says which methods the resource takes (the Allow header RFC 9110 requires)."""
    r = send(api, "PUT", "{base}/Verifications/VE00000000000000000000000000000000")
    assert_problem(r, 405, 20004)
    assert set(r.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert "PUT" not in r.headers["Allow"]


def test_invalid_parameter_names_the_parameter(api):
    """A 60200 names the parameter and lists per-field errors."""
    body = assert_problem(send(api, "POST", "{base}/Verifications", **FORM_TO_BAD), 400, 60200)
    assert body["parameter"] == "To"
    assert "To" in body["detail"]


def test_too_many_requests_has_retry_after(api):
    """A 429 carries Retry-After alongside the problem body."""
    for _ in range(5):
        api.start()
    r = api.start()
    assert_problem(r, 429, 60203)
    assert int(r.headers["Retry-After"]) >= 1


def test_more_info_links_the_error_reference(api):
    """more_info points to a page that describes the same code."""
    body = assert_problem(send(api, "GET", "/nope"), 404, 20404)
    path = body["more_info"].split("://", 1)[1].split("/", 1)[1]
    r = api.client.get(f"/{path}")
    assert r.status_code == 200
    assert r.json["code"] == 20404


# -- authentication ------------------------------------------------------------------------------


@pytest.fixture
def api_key(runtime, tenant) -> tuple[str, str]:
    with runtime.sessions() as session:
        key, secret = AccountService(session, runtime.clock).create_api_key(
            tenant.account_sid, "CI"
        )
    return key.sid, secret


def test_api_key_authenticates(api, api_key):
    """ApiKeySid:Secret works as Basic credentials for the key's account."""
    r = send(api, "GET", "/v2/Services", auth=api_key)
    assert r.status_code == 200
    assert [s["sid"] for s in r.json["services"]] == [api.tenant.service_sid]


@pytest.mark.parametrize(
    "credentials",
    ["missing", "wrong-token", "unknown-account", "not-a-sid", "wrong-key-secret", "bearer"],
)
def test_bad_credentials_are_401(api, api_key, credentials):
    """Missing or wrong credentials are 401 20003 with a WWW-Authenticate challenge."""
    account = api.tenant.account_sid
    auth, headers = {
        "missing": (None, {}),
        "wrong-token": ((account, "0" * 64), {}),
        "unknown-account": (("AC" + "0" * 32, api.tenant.auth_token), {}),
        "not-a-sid": (("admin", "admin"), {}),
        "wrong-key-secret": ((api_key[0], "0" * 64), {}),
        "bearer": (None, {"Authorization": f"Bearer {api.tenant.auth_token}"}),
    }[credentials]
    r = api.client.get("/v2/Services", auth=auth, headers=headers)
    assert_problem(r, 401, 20003)
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_credentials_are_checked_before_the_resource(api):
    """Without credentials, even a service that does not exist answers 401, not 404."""
    r = api.client.get(f"/v2/Services/{NO_SUCH_SERVICE}")
    assert_problem(r, 401, 20003)


# -- unexpected errors ---------------------------------------------------------------------------


def test_unexpected_error_hides_its_text(app):
    """An unhandled exception is 500 20500 and the body says nothing of the exception."""

    def explode():
        raise RuntimeError("secret-detail")

    app.add_url_rule("/explode", "explode", explode)
    r = app.test_client().get("/explode")
    assert_problem(r, 500, 20500)
    text = r.get_data(as_text=True)
    assert "secret-detail" not in text
    assert "RuntimeError" not in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "parameter"),
    [
        pytest.param(
            "POST",
            "/v2/Services",
            {"data": {"FriendlyName": "Shop\x00"}},
            "FriendlyName",
            id="form",
        ),
        pytest.param(
            "POST",
            "/v2/Services",
            {"data": {"Friendly\x00Name": "x"}},
            "Friendly\\x00Name",
            id="form-name",
        ),
        pytest.param(
            "GET",
            "/v2/Attempts",
            {"query_string": {"VerificationSid": "VE\x00"}},
            "VerificationSid",
            id="query",
        ),
        pytest.param(
            "POST",
            "{base}/Verifications",
            {"json": {"To": "+14155550123", "Channel": "sms", "Amount": "1\x00"}},
            "Amount",
            id="json",
        ),
        pytest.param(
            "POST",
            "/v2/Providers",
            {"json": {"Type": "console", "FriendlyName": "c", "Config": {"x": ["a\x00"]}}},
            "Config",
            id="json-nested",
        ),
        pytest.param(
            "POST",
            "/v2/Services",
            {"json": {"FriendlyName": "Shop \ud800"}},  # an unpaired surrogate: no UTF-8 for it
            "FriendlyName",
            id="json-surrogate",
        ),
        pytest.param(
            "POST",
            "/v2/Services",
            {"data": {"FriendlyName": "x", "TestNumbers": '{"+14155550100": "12\\u00003456"}'}},
            "TestNumbers",
            id="json-in-form",
        ),
    ],
)
def test_unstorable_characters_are_refused_by_name(api, method, path, kwargs, parameter):
    """No database stores a NUL character (PostgreSQL) or an unpaired surrogate (any UTF-8): a
    parameter holding one is 60200, named, and nothing reaches the database (these were 500s)."""
    body = assert_problem(send(api, method, path, **kwargs), 400, 60200)
    assert body["parameter"] == parameter


def test_nul_in_a_path_or_credential_finds_nothing(api):
    """A NUL in a path is a resource that cannot exist (404); in Basic credentials, a credential
    that cannot exist (401)."""
    assert_problem(send(api, "GET", "/v2/Services/VA\x00"), 404, 20404)
    bad_user = (api.tenant.account_sid + "\x00", api.tenant.auth_token)
    assert_problem(send(api, "GET", "/v2/Services", auth=bad_user), 401, 20003)


DEEP = "[" * 3_000 + "]" * 3_000  # past the parser's recursion limit
NESTED = '{"a":' * 900 + "1" + "}" * 900  # parsed, but nested deeper than any setting needs
HUGE_INT = '{"a": ' + "9" * 5000 + "}"  # past the digits Python converts


def as_json(**params: str) -> dict:
    body = ", ".join(f'"{k}": {v}' for k, v in params.items())
    return {"data": "{" + body + "}", "content_type": "application/json"}


@pytest.mark.parametrize(
    ("kwargs", "code", "parameter"),
    [
        pytest.param(
            as_json(Type='"console"', FriendlyName='"c"', Config=DEEP), 68400, None, id="body-deep"
        ),
        pytest.param(
            as_json(Type='"console"', FriendlyName='"c"', Config=HUGE_INT),
            68400,
            None,
            id="body-int",
        ),
        pytest.param(
            as_json(Type='"console"', FriendlyName='"c"', Config=NESTED),
            60200,
            "Config",
            id="body-nested",
        ),
        pytest.param(
            {"data": {"Type": "console", "FriendlyName": "c", "Config": DEEP}},
            60200,
            "Config",
            id="deep",
        ),
        pytest.param(
            {"data": {"Type": "console", "FriendlyName": "c", "Config": HUGE_INT}},
            60200,
            "Config",
            id="int",
        ),
        pytest.param(
            {"data": {"Type": "console", "FriendlyName": "c", "Config": NESTED}},
            60200,
            "Config",
            id="nested",
        ),
    ],
)
def test_json_too_deep_or_too_large_is_refused(api, kwargs, code, parameter):
    """JSON nested deeper than any setting needs, or with a number past what Python reads, is the
    client's error (these were 500s)."""
    body = assert_problem(send(api, "POST", "/v2/Providers", **kwargs), 400, code)
    assert body.get("parameter") == parameter
