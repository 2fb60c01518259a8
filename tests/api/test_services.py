"""/v2/Services: create, fetch, list, update, delete, and the extension settings."""

import pytest

SERVICES = "/v2/Services"
UNKNOWN = "VA" + "0" * 32


def create(api, **params):
    return api.post(SERVICES, {"FriendlyName": "Shop", **params})


def created(api, **params) -> dict:
    r = create(api, **params)
    assert r.status_code == 201, r.json
    return r.json


def post_json(api, path: str, body: dict):
    return api.client.post(path, json=body, auth=api.tenant.auth)


def assert_error(r, status: int, code: int, parameter: str | None = None) -> None:
    assert r.status_code == status, r.json
    assert r.json["code"] == code
    if parameter is not None:
        assert r.json["parameter"] == parameter


# -- create --------------------------------------------------------------------------------------


def test_create_with_defaults(api):
    """A service created with only FriendlyName gets the documented defaults."""
    body = created(api)
    assert body["sid"].startswith("VA")
    assert body["account_sid"] == api.tenant.account_sid
    assert body["friendly_name"] == "Shop"
    assert body["code_length"] == 6
    assert body["code_ttl"] == 600
    assert body["max_check_attempts"] == 5
    assert body["max_send_attempts"] == 5
    assert body["channels"] == ["sms", "call", "email", "whatsapp"]
    assert body["custom_code_enabled"] is False
    assert body["test_numbers"] == []
    assert body["url"].endswith(f"/v2/Services/{body['sid']}")


@pytest.mark.parametrize("name", [None, "", "   ", "x" * 65])
def test_friendly_name_is_required(api, name):
    """A create without a 1-64 character FriendlyName is 400 60200 naming FriendlyName."""
    data = {} if name is None else {"FriendlyName": name}
    assert_error(api.post(SERVICES, data), 400, 60200, "FriendlyName")


@pytest.mark.parametrize(
    ("parameter", "value", "ok"),
    [
        ("CodeLength", 3, False),
        ("CodeLength", 4, True),
        ("CodeLength", 10, True),
        ("CodeLength", 11, False),
        ("CodeTtl", 29, False),
        ("CodeTtl", 30, True),
        ("CodeTtl", 86_400, True),
        ("CodeTtl", 86_401, False),
        ("MaxCheckAttempts", 0, False),
        ("MaxCheckAttempts", 1, True),
        ("MaxCheckAttempts", 100, True),
        ("MaxCheckAttempts", 101, False),
        ("MaxSendAttempts", 0, False),
        ("MaxSendAttempts", 1, True),
        ("MaxSendAttempts", 20, True),
        ("MaxSendAttempts", 21, False),
        ("CodeLength", "six", False),
        ("CodeTtl", "1.5", False),
    ],
)
def test_numeric_ranges(api, parameter, value, ok):
    """Numeric settings are accepted at their bounds and refused (60200, named) outside them."""
    r = create(api, **{parameter: value})
    if ok:
        assert r.status_code == 201, r.json
    else:
        assert_error(r, 400, 60200, parameter)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("sms", ["sms"]),
        ("sms,email", ["sms", "email"]),
        (["call", "whatsapp"], ["call", "whatsapp"]),
        ("sms, sms", ["sms"]),
    ],
)
def test_channels(api, sent, stored):
    """Channels takes one comma-separated value or repeated parameters."""
    assert created(api, Channels=sent)["channels"] == stored


@pytest.mark.parametrize("channels", ["pigeon", "sms,fax", ","])
def test_unknown_channels_are_refused(api, channels):
    """Channels outside sms, call, email, whatsapp (or none at all) is 400 60200 naming Channels."""
    assert_error(create(api, Channels=channels), 400, 60200, "Channels")


@pytest.mark.parametrize(("sent", "stored"), [("true", True), ("false", False)])
def test_booleans_as_the_sdk_sends_them(api, sent, stored):
    """Booleans arrive as the strings "true" and "false", as the Twilio SDK sends them."""
    body = created(
        api, CustomCodeEnabled=sent, ManualApprovalEnabled=sent, DoNotShareWarningEnabled=sent
    )
    assert body["custom_code_enabled"] is stored
    assert body["manual_approval_enabled"] is stored
    assert body["do_not_share_warning_enabled"] is stored


def test_boolean_that_is_not_one_is_refused(api):
    """A boolean parameter with a value like "maybe" is 400 60200 naming it."""
    assert_error(create(api, CustomCodeEnabled="maybe"), 400, 60200, "CustomCodeEnabled")


def test_create_with_a_json_body(api):
    """A JSON body with the same parameter names (and real JSON types) creates a service."""
    body = {"FriendlyName": "Shop", "CodeLength": 8, "CustomCodeEnabled": True}
    r = post_json(api, SERVICES, body)
    assert r.status_code == 201, r.json
    assert r.json["code_length"] == 8
    assert r.json["custom_code_enabled"] is True


def test_json_body_takes_lists_and_objects(api):
    """In a JSON body Channels may be an array and TestNumbers an object."""
    body = {
        "FriendlyName": "Shop",
        "Channels": ["sms", "call"],
        "TestNumbers": {"+15005550006": "987654"},
    }
    r = post_json(api, SERVICES, body)
    assert r.status_code == 201, r.json
    assert r.json["channels"] == ["sms", "call"]
    assert r.json["test_numbers"] == ["+15005550006"]


# -- test numbers --------------------------------------------------------------------------------


def test_test_numbers_are_write_only(api):
    """TestNumbers given as a JSON string is stored; responses list destinations, never codes."""
    body = created(api, TestNumbers='{"+15005550006": "987654"}')
    assert body["test_numbers"] == ["+15005550006"]
    fetched = api.get(f"{SERVICES}/{body['sid']}")
    assert fetched.json["test_numbers"] == ["+15005550006"]
    assert "987654" not in fetched.get_data(as_text=True)


def test_test_numbers_set_through_the_api_approve(api):
    """A test number configured through the API is never queued and its fixed code approves."""
    sid = created(api, TestNumbers='{"+15005550006": "987654"}')["sid"]
    verifications = f"{SERVICES}/{sid}/Verifications"
    r = api.post(verifications, {"To": "+15005550006", "Channel": "sms"})
    assert r.json["send_code_attempts"][0]["status"] == "test"
    check = {"To": "+15005550006", "Code": "987654"}
    assert api.post(f"{SERVICES}/{sid}/VerificationCheck", check).json["status"] == "approved"


@pytest.mark.parametrize(
    "value",
    ["not json", "[]", '{"+15005550006": 123456}', '{"+15005550006": "12"}', '{"555": "123456"}'],
)
def test_bad_test_numbers_are_refused(api, value):
    """TestNumbers that is not a JSON object of destination to 4-10 digit code is 400 60200."""
    assert_error(create(api, TestNumbers=value), 400, 60200, "TestNumbers")


def test_test_numbers_are_replaced_on_update(api):
    """An update with TestNumbers replaces the whole list."""
    sid = created(api, TestNumbers='{"+15005550006": "987654"}')["sid"]
    r = api.post(f"{SERVICES}/{sid}", {"TestNumbers": '{"+15005550009": "111111"}'})
    assert r.json["test_numbers"] == ["+15005550009"]


# -- fetch, list, update, delete -----------------------------------------------------------------


def test_fetch(api):
    """GET a service returns what create returned."""
    body = created(api, CodeLength="7")
    r = api.get(f"{SERVICES}/{body['sid']}")
    assert r.status_code == 200
    assert r.json == body


def test_fetch_unknown_is_404(api):
    """GET of a service that does not exist is 404 20404."""
    assert_error(api.get(f"{SERVICES}/{UNKNOWN}"), 404, 20404)


def test_list_pages(api):
    """PageSize and Page walk the list; next_page_url is set until the last page."""
    for n in range(4):
        created(api, FriendlyName=f"Shop {n}")  # plus the tenant's own service: five
    first = api.get(f"{SERVICES}?PageSize=2")
    assert first.status_code == 200
    assert len(first.json["services"]) == 2
    assert first.json["meta"]["key"] == "services"
    assert first.json["meta"]["page_size"] == 2
    assert "Page=1" in first.json["meta"]["next_page_url"]
    last = api.get(f"{SERVICES}?PageSize=2&Page=2")
    assert len(last.json["services"]) == 1
    assert last.json["meta"]["next_page_url"] is None
    assert "Page=1" in last.json["meta"]["previous_page_url"]


def test_list_pages_do_not_overlap(api):
    """Every service appears on exactly one page."""
    sids = {created(api, FriendlyName=f"Shop {n}")["sid"] for n in range(4)}
    seen = []
    for page in range(3):
        seen += [s["sid"] for s in api.get(f"{SERVICES}?PageSize=2&Page={page}").json["services"]]
    assert len(seen) == len(set(seen)) == 5
    assert sids <= set(seen)


@pytest.mark.parametrize("size", ["0", "1001", "many"])
def test_bad_page_size_is_refused(api, size):
    """A PageSize outside 1-1000 is 400 60200 naming PageSize."""
    assert_error(api.get(f"{SERVICES}?PageSize={size}"), 400, 60200, "PageSize")


def test_update_changes_only_what_is_given(api):
    """An update sets the given fields and keeps the others."""
    body = created(api, CodeLength="8")
    r = api.post(f"{SERVICES}/{body['sid']}", {"FriendlyName": "Renamed", "CodeTtl": "120"})
    assert r.status_code == 200
    assert r.json["friendly_name"] == "Renamed"
    assert r.json["code_ttl"] == 120
    assert r.json["code_length"] == 8
    assert api.get(f"{SERVICES}/{body['sid']}").json["friendly_name"] == "Renamed"


def test_update_booleans_both_ways(api):
    """An update can turn a boolean on with "true" and back off with "false"."""
    sid = created(api)["sid"]
    on = api.post(f"{SERVICES}/{sid}", {"CustomCodeEnabled": "true"})
    assert on.json["custom_code_enabled"] is True
    off = api.post(f"{SERVICES}/{sid}", {"CustomCodeEnabled": "false"})
    assert off.json["custom_code_enabled"] is False


def test_update_validates_ranges(api):
    """An update outside a range is refused and changes nothing."""
    sid = created(api)["sid"]
    assert_error(api.post(f"{SERVICES}/{sid}", {"CodeLength": "12"}), 400, 60200, "CodeLength")
    assert api.get(f"{SERVICES}/{sid}").json["code_length"] == 6


def test_update_with_a_json_body(api):
    """An update also takes a JSON body."""
    sid = created(api)["sid"]
    r = post_json(api, f"{SERVICES}/{sid}", {"MaxSendAttempts": 2})
    assert r.status_code == 200, r.json
    assert r.json["max_send_attempts"] == 2


def test_update_unknown_is_404(api):
    """Updating a service that does not exist is 404 20404."""
    assert_error(api.post(f"{SERVICES}/{UNKNOWN}", {"FriendlyName": "X"}), 404, 20404)


def test_delete(api):
    """DELETE answers 204; the service is then 404, and so is deleting it again."""
    sid = created(api)["sid"]
    r = api.delete(f"{SERVICES}/{sid}")
    assert r.status_code == 204
    assert r.get_data() == b""
    assert_error(api.get(f"{SERVICES}/{sid}"), 404, 20404)
    assert_error(api.delete(f"{SERVICES}/{sid}"), 404, 20404)


def test_delete_takes_the_verifications_with_it(api):
    """Deleting a service with verifications works, and they are gone with it."""
    sid = created(api)["sid"]
    r = api.post(f"{SERVICES}/{sid}/Verifications", {"To": "+14155550123", "Channel": "sms"})
    verification = r.json["sid"]
    assert api.delete(f"{SERVICES}/{sid}").status_code == 204
    r = api.get(f"{SERVICES}/{sid}/Verifications/{verification}")
    assert_error(r, 404, 20404)


def test_a_change_made_elsewhere_reaches_the_start_path(api, runtime, clock):
    """Service snapshots are per process and short-lived: another process's change (here made
    behind this app's back) is seen once the snapshot is 5 s old, and a start racing the service's
    deletion answers 404 rather than failing."""
    from verify.domain.services import ServiceFields, ServiceRegistry

    assert api.start().status_code == 201  # the snapshot is now cached
    with runtime.sessions() as session:
        registry = ServiceRegistry(session, clock, runtime.sealer)  # no cache: "another process"
        registry.update(
            api.tenant.account_sid, api.tenant.service_sid, ServiceFields(channels=("email",))
        )
    assert api.start("+14155550124").status_code == 201  # within 5 s: the old snapshot
    runtime.services.forget(api.tenant.service_sid)  # what 5 s later does
    assert_error(api.start("+14155550125"), 400, 60223)

    assert api.start("a@example.com", "email").status_code == 201  # cached again
    with runtime.sessions() as session:
        ServiceRegistry(session, clock, runtime.sealer).delete(
            api.tenant.account_sid, api.tenant.service_sid
        )
    assert_error(api.start("b@example.com", "email"), 404, 20404)
