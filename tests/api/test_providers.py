"""/v2/Providers: CRUD, write-only credentials sealed at rest, validation naming the field, and the
YAML loader of the CLI."""

from __future__ import annotations

import itertools
import json

import pytest
import yaml
from sqlalchemy import select

from tests.conftest import ApiClient, make_tenant
from verify.cli import cli
from verify.models.delivery import Provider

SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="  # base64 of 21 bytes
TOKEN = "tok_" + "9" * 28


def create(api: ApiClient, **overrides) -> object:
    data = {
        "Type": "twilio",
        "FriendlyName": "Twilio US",
        "Channels": "sms,call",
        "Countries": "US,CA",
        "Priority": 5,
        "Config": json.dumps({"account_sid": "AC" + "a" * 32, "from": "+14155550100"}),
        "Credentials": json.dumps({"auth_token": TOKEN}),
        **overrides,
    }
    return api.post("/v2/Providers", data)


def test_create_shows_which_credentials_are_set_never_their_values(api, runtime):
    """The answer lists credential keys; no response and no column holds the token in clear."""
    r = create(api)
    assert r.status_code == 201, r.json
    body = r.json
    assert body["credentials_set"] == ["auth_token"]
    assert (body["type"], body["channels"], body["countries"], body["priority"]) == (
        "twilio",
        ["sms", "call"],
        ["US", "CA"],
        5,
    )
    assert body["callback_url"].endswith(f"/v2/Callbacks/{body['sid']}")
    assert TOKEN not in r.get_data(as_text=True)
    fetched = api.get(f"/v2/Providers/{body['sid']}")
    assert TOKEN not in fetched.get_data(as_text=True)
    with runtime.sessions() as s:
        row = s.get(Provider, body["sid"])
        assert TOKEN.encode() not in row.sealed_credentials
        assert runtime.sealer.open(row.sid, row.sealed_credentials) == json.dumps(
            {"auth_token": TOKEN}
        )


def test_list_update_delete(api):
    """Providers list in routing order; an update keeps unspecified fields; delete is 204 then 404."""
    low = create(api, FriendlyName="B", Priority=1).json
    high = create(api, FriendlyName="A", Priority=9).json
    assert [p["sid"] for p in api.get("/v2/Providers").json["providers"]] == [
        low["sid"],
        high["sid"],
    ]
    r = api.post(f"/v2/Providers/{high['sid']}", {"Priority": 0, "Enabled": "false"})
    assert (r.json["priority"], r.json["enabled"], r.json["credentials_set"]) == (
        0,
        False,
        ["auth_token"],
    )
    assert api.delete(f"/v2/Providers/{high['sid']}").status_code == 204
    assert api.get(f"/v2/Providers/{high['sid']}").status_code == 404


def test_whatsapp_templates_per_language_round_trip(api):
    """A Content API template per language is config: stored, shown back, and checked by key."""
    templates = {"es": "HX" + "e" * 32, "pt": "HX" + "b" * 32}
    config = {
        "account_sid": "AC" + "a" * 32,
        "from": "+14155550100",
        "whatsapp_content_sid": "HX" + "1" * 32,
        "whatsapp_content_sids": templates,
    }
    r = create(api, Channels="whatsapp", Config=json.dumps(config))
    assert r.status_code == 201, r.json
    assert api.get(f"/v2/Providers/{r.json['sid']}").json["config"] == config
    bad = {**config, "whatsapp_content_sids": {"klingon": "HX" + "e" * 32}}
    r = create(api, Channels="whatsapp", Config=json.dumps(bad))
    assert (r.status_code, r.json["code"]) == (400, 60200)
    assert "Config.whatsapp_content_sids" in r.json["message"]


def test_credentials_are_replaced_and_sealed_to_the_provider(api, runtime):
    """New credentials replace the old ones; a box copied to another provider does not open."""
    one = create(api, FriendlyName="One").json
    two = create(api, FriendlyName="Two").json
    api.post(f"/v2/Providers/{one['sid']}", {"Credentials": json.dumps({"auth_token": "new"})})
    with runtime.sessions() as s:
        a, b = s.get(Provider, one["sid"]), s.get(Provider, two["sid"])
        assert json.loads(runtime.sealer.open(a.sid, a.sealed_credentials)) == {"auth_token": "new"}
        try:
            runtime.sealer.open(b.sid, a.sealed_credentials)
        except LookupError:
            pass
        else:
            raise AssertionError("credentials opened under another provider's sid")


@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [
        ({"Type": "carrier-pigeon"}, "Type"),
        ({"Channels": "email"}, "Channels"),
        ({"Countries": "USA"}, "Countries"),
        ({"Priority": 5000}, "Priority"),
        ({"Config": json.dumps({"from": "+14155550100"})}, "Config.account_sid"),
        ({"Credentials": json.dumps({})}, "Credentials.auth_token"),
        ({"Config": "not json"}, "Config"),
        (
            {
                "Config": json.dumps(
                    {
                        "account_sid": "AC" + "0" * 32,
                        "from": "+14155550100",
                        "base_url": "http://[x",
                    }
                )
            },
            "Config.base_url",
        ),  # no URL can hold it: urlsplit refuses the bracket (this was a 500)
        (
            {
                "Config": json.dumps(
                    {
                        "account_sid": "AC" + "0" * 32,
                        "from": "+14155550100",
                        "base_url": "http://a:99999",
                    }
                )
            },
            "Config.base_url",
        ),
    ],
)
def test_invalid_settings_name_the_parameter(api, overrides, parameter):
    """Every invalid setting is 400 / 60200 naming the parameter (never quoting a secret)."""
    r = create(api, **overrides)
    assert (r.status_code, r.json["code"], r.json["parameter"]) == (400, 60200, parameter)


def test_another_accounts_provider_is_404(api, app, runtime):
    """Providers are scoped to the account."""
    sid = create(api).json["sid"]
    other = ApiClient(app, make_tenant(runtime, "Other"))
    assert other.get(f"/v2/Providers/{sid}").status_code == 404
    assert other.delete(f"/v2/Providers/{sid}").status_code == 404
    assert other.get("/v2/Providers").json["providers"] == []


def test_yaml_load_creates_updates_and_exports_without_credentials(app, api, runtime, tmp_path):
    """`verify providers load` upserts by name; `export` gives the file back without secrets."""
    document = {
        "account": api.tenant.account_sid,
        "providers": [
            {
                "friendly_name": "Gateway",
                "type": "http",
                "channels": ["sms", "whatsapp"],
                "priority": 3,
                "config": {"url": "https://gateway.example/send"},
                "credentials": {"secret": SECRET},
            }
        ],
    }
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(document))
    runner = app.test_cli_runner()
    result = runner.invoke(cli, ["providers", "load", str(path)])
    assert result.exit_code == 0, result.output
    [listed] = api.get("/v2/Providers").json["providers"]
    assert (listed["friendly_name"], listed["priority"], listed["credentials_set"]) == (
        "Gateway",
        3,
        ["secret"],
    )

    document["providers"][0]["priority"] = 7
    del document["providers"][0]["credentials"]  # kept as they are
    path.write_text(yaml.safe_dump(document))
    assert runner.invoke(cli, ["providers", "load", str(path)]).exit_code == 0
    [listed] = api.get("/v2/Providers").json["providers"]
    assert (listed["sid"], listed["priority"], listed["credentials_set"]) == (
        listed["sid"],
        7,
        ["secret"],
    )

    exported = runner.invoke(cli, ["providers", "export", api.tenant.account_sid])
    assert exported.exit_code == 0
    assert SECRET not in exported.output
    assert yaml.safe_load(exported.output)["providers"][0]["config"] == {
        "url": "https://gateway.example/send"
    }
    with runtime.sessions() as s:
        assert len(s.scalars(select(Provider)).all()) == 1


def test_yaml_load_refuses_an_invalid_file_and_changes_nothing(app, api, tmp_path):
    """A bad entry names the field, and nothing of the file is applied."""
    path = tmp_path / "providers.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "account": api.tenant.account_sid,
                "providers": [
                    {
                        "friendly_name": "Ok",
                        "type": "http",
                        "config": {"url": "https://x.example"},
                        "credentials": {"secret": SECRET},
                    },
                    {"friendly_name": "Bad", "type": "http", "config": {}},
                ],
            }
        )
    )
    result = app.test_cli_runner().invoke(cli, ["providers", "load", str(path)])
    assert result.exit_code != 0
    assert "Config.url" in result.output
    assert api.get("/v2/Providers").json["providers"] == []


@pytest.mark.parametrize(
    ("type_", "config", "parameter"),
    [
        ("http", {"url": "http://127.0.0.1:8080/send"}, "Config.url"),
        ("http", {"url": "http://169.254.169.254/latest"}, "Config.url"),
        (
            "twilio",
            {"account_sid": "AC" + "a" * 32, "from": "+14155550100", "base_url": "http://10.1.2.3"},
            "Config.base_url",
        ),
        (
            "vonage",
            {"api_key": "k", "from": "Acme", "sms_url": "http://[::1]:80"},
            "Config.sms_url",
        ),
        ("smtp", {"host": "10.0.0.25", "from_address": "codes@acme.example"}, "Config.host"),
    ],
)
def test_provider_urls_pass_the_ssrf_guard(api, type_, config, parameter):
    """A tenant's provider URL (or SMTP server) leading to a private, loopback or metadata address
    is refused."""
    credentials = {
        "http": {"secret": SECRET},
        "twilio": {"auth_token": TOKEN},
        "vonage": {"api_secret": "s"},
        "smtp": {},
    }[type_]
    r = create(
        api,
        Type=type_,
        Channels="email" if type_ == "smtp" else "sms",
        Config=json.dumps(config),
        Credentials=json.dumps(credentials),
    )
    assert (r.status_code, r.json["code"], r.json["parameter"]) == (400, 60200, parameter)
    assert "address" in r.json["detail"]


def test_the_operator_allowlist_admits_a_private_gateway(runtime, settings):
    """With VERIFY_WEBHOOK_ALLOW_NETWORKS covering it, a gateway on a private network is accepted."""
    from dataclasses import replace

    from verify.app import create_app

    allowed = replace(settings, webhook_allow_networks=("10.0.0.0/8",))
    app = create_app(allowed, runtime=replace(runtime, settings=allowed))
    api = ApiClient(app, make_tenant(runtime))
    r = create(
        api,
        Type="http",
        Channels="sms",
        Config=json.dumps({"url": "http://10.1.2.3/send"}),
        Credentials=json.dumps({"secret": SECRET}),
    )
    assert r.status_code == 201, r.json


VALID = {  # a channel, the config and the credentials of a provider of each type
    "console": ("sms", {}, {}),
    "smtp": ("email", {"host": "smtp.acme.example", "from_address": "codes@acme.example"}, {}),
    "twilio": ("sms", {"account_sid": "AC" + "a" * 32, "from": "+1415550100"}, {"auth_token": "t"}),
    "vonage": ("sms", {"api_key": "k", "from": "Acme"}, {"api_secret": "s"}),
    "http": ("sms", {"url": "https://gw.acme.example/send"}, {"secret": SECRET}),
}
ODD_VALUES = [
    "", " ", "http://[x", "http://a:99999", "https://", "x" * 5000, "\u202e", "+", "AC", "é",
    0, -1, 10**30, 1.5, float("inf"), float("nan"), True, None, [], {}, ["x"], {"es": 1},
    {"es": "HX" + "0" * 32, "zz": "HX" + "0" * 32},
]  # fmt: skip


def test_odd_values_in_every_provider_field_are_refused_by_name(api):
    """Every field of every provider type, given each odd value: created, or 400 naming a
    parameter; never a server error."""
    from verify.delivery.providers import PROVIDER_TYPES

    failed = []
    for type_, spec in PROVIDER_TYPES.items():
        channel, config, credentials = VALID[type_]
        assert create(api, Type=type_, FriendlyName=type_, Channels=channel,
                      Config=json.dumps(config), Credentials=json.dumps(credentials),
                      Countries="").status_code == 201, type_  # fmt: skip
        for section, fields in (("Config", spec.config), ("Credentials", spec.credentials)):
            for field, value in itertools.product(fields, ODD_VALUES):
                given = {"Config": dict(config), "Credentials": dict(credentials)}
                given[section][field.name] = value
                r = create(api, Type=type_, FriendlyName=f"{type_} odd", Channels=channel,
                           Countries="",
                           Config=json.dumps(given["Config"]),
                           Credentials=json.dumps(given["Credentials"]))  # fmt: skip
                ok = r.status_code == 201 or (r.status_code == 400 and r.json["parameter"])
                if not ok:
                    failed.append((type_, field.name, repr(value)[:30], r.status_code))
                if r.status_code == 201:
                    api.delete(f"/v2/Providers/{r.json['sid']}")
    assert not failed
