"""/v2/Services/{ServiceSid}/Webhooks: Twilio's shape, the secret shown once, validation, tenancy,
secret rotation, and the service's StatusCallback secrets."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import ApiClient, make_tenant
from tests.webhooks.conftest import Receiver
from verify.domain.clock import FrozenClock
from verify.models.webhooks import WebhookSecret
from verify.runtime import Runtime


def create(api: ApiClient, url: str, **extra: Any) -> Any:
    data = {"FriendlyName": "Acme hooks", "EventTypes": ["verification.*", "fraud.blocked"]}
    return api.post(f"{api.base}/Webhooks", {**data, "WebhookUrl": url, **extra})


def test_create_answers_twilios_fields_and_the_secret_once(
    api: ApiClient, receiver: Receiver
) -> None:
    """201 with Twilio's webhook fields and a whsec_ secret; fetching it never shows the secret."""
    r = create(api, receiver.url)
    assert r.status_code == 201
    body = r.get_json()
    assert body["sid"].startswith("YW")
    assert len(body["sid"]) == 34
    assert body["secret"].startswith("whsec_")
    assert body["event_types"] == ["verification.*", "fraud.blocked"]
    assert (body["webhook_url"], body["webhook_method"]) == (receiver.url, "POST")
    assert (body["status"], body["version"], body["signature_mode"]) == (
        "enabled",
        "v2",
        "standard",
    )
    assert body["url"].endswith(f"/v2/Services/{api.tenant.service_sid}/Webhooks/{body['sid']}")

    fetched = api.get(f"{api.base}/Webhooks/{body['sid']}").get_json()
    assert "secret" not in fetched
    assert fetched["friendly_name"] == "Acme hooks"
    listed = api.get(f"{api.base}/Webhooks").get_json()
    assert [w["sid"] for w in listed["webhooks"]] == [body["sid"]]
    assert all("secret" not in w for w in listed["webhooks"])


def test_the_secret_is_sealed_at_rest(api: ApiClient, receiver: Receiver, runtime: Runtime) -> None:
    secret = create(api, receiver.url).get_json()["secret"]
    with runtime.sessions() as session:
        (row,) = session.scalars(select(WebhookSecret)).all()
    assert secret.encode() not in row.sealed
    assert runtime.sealer.open(row.sid, row.sealed) == secret


@pytest.mark.parametrize(
    ("field", "value", "parameter"),
    [
        ("EventTypes", "verification.aproved", "EventTypes"),
        ("EventTypes", "billing.*", "EventTypes"),
        ("WebhookUrl", "ftp://example.com/", "WebhookUrl"),
        ("WebhookUrl", "http://127.0.0.2:9/x", "WebhookUrl"),
        ("Status", "paused", "Status"),
        ("Version", "v3", "Version"),
        ("SignatureMode", "hmac", "SignatureMode"),
        ("FriendlyName", "", "FriendlyName"),
    ],
)
def test_bad_values_are_60200_naming_the_parameter(
    api: ApiClient, receiver: Receiver, field: str, value: str, parameter: str
) -> None:
    r = create(api, receiver.url, **{field: value})
    assert r.status_code == 400
    assert (r.get_json()["code"], r.get_json()["parameter"]) == (60200, parameter)


@pytest.mark.parametrize("missing", ["FriendlyName", "EventTypes", "WebhookUrl"])
def test_required_parameters(api: ApiClient, receiver: Receiver, missing: str) -> None:
    data = {"FriendlyName": "x", "EventTypes": "*", "WebhookUrl": receiver.url}
    del data[missing]
    r = api.post(f"{api.base}/Webhooks", data)
    assert (r.status_code, r.get_json()["parameter"]) == (400, missing)


def test_update_and_delete(api: ApiClient, receiver: Receiver) -> None:
    sid = create(api, receiver.url).get_json()["sid"]
    r = api.post(f"{api.base}/Webhooks/{sid}", {"Status": "disabled", "EventTypes": "*"})
    assert r.status_code == 200
    assert (r.get_json()["status"], r.get_json()["event_types"]) == ("disabled", ["*"])
    assert api.delete(f"{api.base}/Webhooks/{sid}").status_code == 204
    assert api.get(f"{api.base}/Webhooks/{sid}").status_code == 404


def test_another_tenants_webhook_is_404(
    api: ApiClient, receiver: Receiver, runtime: Runtime, app: Any
) -> None:
    sid = create(api, receiver.url).get_json()["sid"]
    other = ApiClient(app, make_tenant(runtime, "Other"))
    for path in (f"{api.base}/Webhooks/{sid}", f"{other.base}/Webhooks/{sid}"):
        assert other.get(path).status_code == 404
    assert other.get(f"{api.base}/WebhookDeliveries").status_code == 404
    assert other.post(f"{api.base}/Webhooks/{sid}/Secrets").status_code == 404


def test_rotation_keeps_the_old_secret_for_its_grace_period_only(
    api: ApiClient, receiver: Receiver, clock: FrozenClock
) -> None:
    sid = create(api, receiver.url).get_json()["sid"]
    path = f"{api.base}/Webhooks/{sid}/Secrets"
    r = api.post(path, {"GracePeriod": "60"})
    assert r.status_code == 201
    new = r.get_json()
    listed = api.get(path).get_json()["secrets"]
    assert next(s["sid"] for s in listed) == new["sid"]
    assert len(listed) == 2
    assert listed[1]["expires_at"] is not None
    assert all("secret" not in s for s in listed)
    clock.advance(61)
    assert [s["sid"] for s in api.get(path).get_json()["secrets"]] == [new["sid"]]


def test_revoking_ends_a_rotation_but_never_removes_the_last_secret(
    api: ApiClient, receiver: Receiver
) -> None:
    sid = create(api, receiver.url).get_json()["sid"]
    path = f"{api.base}/Webhooks/{sid}/Secrets"
    old = api.get(path).get_json()["secrets"][0]["sid"]
    new = api.post(path).get_json()["sid"]
    assert api.delete(f"{path}/{old}").status_code == 204
    r = api.delete(f"{path}/{new}")
    assert (r.status_code, r.get_json()["code"]) == (400, 60200)
    assert api.delete(f"{path}/{old}").status_code == 404


@pytest.mark.parametrize("grace", ["-1", "604801"])
def test_grace_period_bounds(api: ApiClient, receiver: Receiver, grace: str) -> None:
    sid = create(api, receiver.url).get_json()["sid"]
    r = api.post(f"{api.base}/Webhooks/{sid}/Secrets", {"GracePeriod": grace})
    assert (r.status_code, r.get_json()["parameter"]) == (400, "GracePeriod")


def test_callback_secrets_belong_to_the_service(api: ApiClient) -> None:
    r = api.post(f"{api.base}/CallbackSecrets")
    assert r.status_code == 201
    assert r.get_json()["owner_sid"] == api.tenant.service_sid
    assert r.get_json()["secret"].startswith("whsec_")
    assert len(api.get(f"{api.base}/CallbackSecrets").get_json()["secrets"]) == 1


def test_unknown_delivery_and_bad_status_filter(api: ApiClient) -> None:
    assert api.get(f"{api.base}/WebhookDeliveries/WD{'0' * 32}").status_code == 404
    assert api.post(f"{api.base}/WebhookDeliveries/WD{'0' * 32}/Replay").status_code == 404
    r = api.get(f"{api.base}/WebhookDeliveries?Status=lost")
    assert (r.status_code, r.get_json()["parameter"]) == (400, "Status")
