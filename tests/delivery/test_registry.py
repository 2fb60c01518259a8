"""The provider registry: type specs, config validation naming the field, building adapters."""

from pathlib import Path

import pytest

from verify.delivery.providers import PROVIDER_TYPES, build_provider, validate_config
from verify.delivery.providers._common import REASONS
from verify.delivery.providers.smtp import SmtpProvider
from verify.delivery.providers.vonage import VonageProvider
from verify.delivery.providers.webhook import WebhookProvider

SID = "AC" + "a" * 32
WHSEC = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="


def test_every_type_is_registered_with_its_channels():
    """console, smtp, twilio, vonage, http, each with the channels it carries."""
    assert {t: set(s.channels) for t, s in PROVIDER_TYPES.items()} == {
        "console": {"sms", "whatsapp", "call", "email"},
        "smtp": {"email"},
        "twilio": {"sms", "whatsapp", "call"},
        "vonage": {"sms", "call"},
        "http": {"sms", "whatsapp", "call", "email"},
    }


@pytest.mark.parametrize(
    ("type_", "config", "credentials", "problems"),
    [
        (
            "sms-gateway-9000",
            {},
            {},
            [("type", "must be one of console, http, smtp, twilio, vonage")],
        ),
        (
            "twilio",
            {},
            {},
            [("config.account_sid", "is required"), ("credentials.auth_token", "is required")],
        ),
        (
            "twilio",
            {"account_sid": "AC123"},
            {"auth_token": "t"},
            [("config.account_sid", "must be a AC sid (AC and 32 hex digits)")],
        ),
        (
            "twilio",
            {"account_sid": SID, "from": "0044"},
            {"auth_token": "t"},
            [("config.from", "must be an E.164 number (+ and 7-15 digits)")],
        ),
        (
            "twilio",
            {"account_sid": SID, "base_url": "ftp://x"},
            {"auth_token": "t"},
            [("config.base_url", "must be an http(s) URL")],
        ),
        (
            "twilio",
            {"account_sid": SID, "timeout": 0},
            {"auth_token": "t"},
            [("config.timeout", "must be a number of seconds above 0, at most 60")],
        ),
        (
            "twilio",
            {"account_sid": SID, "whatsapp_content_sid": "HX123"},
            {"auth_token": "t"},
            [("config.whatsapp_content_sid", "must be a HX sid (HX and 32 hex digits)")],
        ),
        (
            "twilio",
            {"account_sid": SID, "whatsapp_content_sids": "HX" + "1" * 32},
            {"auth_token": "t"},
            [
                (
                    "config.whatsapp_content_sids",
                    "must be an object from a language (en, es, fr, de, pt, it, nl, ar, he) "
                    "to a HX sid",
                )
            ],
        ),
        (
            "twilio",
            {"account_sid": SID, "whatsapp_content_sids": {"pt_BR": "HX" + "1" * 32}},
            {"auth_token": "t"},
            [
                (
                    "config.whatsapp_content_sids",
                    "has a key that is not a language Verify renders "
                    "(en, es, fr, de, pt, it, nl, ar, he)",
                )
            ],
        ),
        (
            "twilio",
            {"account_sid": SID, "whatsapp_content_sids": {"es": "MG" + "1" * 32}},
            {"auth_token": "t"},
            [
                (
                    "config.whatsapp_content_sids",
                    "must map each language to a HX sid (HX and 32 hex digits)",
                )
            ],
        ),
        (
            "twilio",
            {"account_sid": SID, "colour": "red"},
            {"auth_token": "t"},
            [("config.colour", "is not a setting of the twilio provider")],
        ),
        (
            "smtp",
            {"host": "mx", "from_address": "nope"},
            {},
            [("config.from_address", "must be an email address")],
        ),
        (
            "smtp",
            {"host": "mx", "from_address": "a@b.c", "port": "25"},
            {},
            [("config.port", "must be an integer from 1 to 65535")],
        ),
        (
            "smtp",
            {"host": "mx", "from_address": "a@b.c", "security": "ssl"},
            {},
            [("config.security", "must be one of starttls, tls, none")],
        ),
        (
            "smtp",
            {"host": "mx", "from_address": "a@b.c"},
            {"username": "u"},
            [("credentials.password", "username and password go together")],
        ),
        (
            "http",
            {"url": "https://gw.example/send"},
            {"secret": "hunter2"},
            [("credentials.secret", "must start with whsec_")],
        ),
        (
            "http",
            {"url": "https://gw.example/send"},
            {"secret": "whsec_!!"},
            [("credentials.secret", "must be whsec_ followed by base64")],
        ),
        ("console", {"echo": "yes"}, {}, [("config.echo", "must be true or false")]),
        ("http", {"url": "https://gw.example/send"}, {"secret": WHSEC}, []),
    ],
)
def test_validation_names_each_bad_field(type_, config, credentials, problems):
    """Each problem names its field, so the API can answer 60200 with the parameter."""
    assert validate_config(type_, config, credentials) == problems


def test_problems_never_quote_secret_values():
    """A bad secret is described, never echoed."""
    problems = validate_config(
        "http", {"url": "https://gw.example"}, {"secret": "whsec_s3cr3t-value"}
    )
    assert "s3cr3t" not in repr(problems)


@pytest.mark.parametrize(
    ("type_", "config", "credentials", "channels", "problems"),
    [
        (
            "twilio",
            {"account_sid": SID},
            {"auth_token": "t"},
            ["sms"],
            [("config.from", "from or messaging_service_sid is required for sms")],
        ),
        (
            "twilio",
            {"account_sid": SID, "from": "+15005550006"},
            {"auth_token": "t"},
            ["sms", "whatsapp", "call"],
            [],
        ),
        (
            "twilio",
            {"account_sid": SID, "from": "+15005550006"},
            {"auth_token": "t"},
            ["email"],
            [("channels", "the twilio provider cannot carry email")],
        ),
        (
            "vonage",
            {"api_key": "k", "from": "Acme"},
            {"api_secret": "s"},
            ["call"],
            [
                ("config.application_id", "application_id is required for call"),
                ("credentials.private_key", "private_key is required for call"),
            ],
        ),
    ],
)
def test_validation_per_channel(type_, config, credentials, channels, problems):
    """With the channels a provider will carry, what each channel needs is checked too."""
    assert validate_config(type_, config, credentials, channels=channels) == problems


def test_build_provider_makes_each_adapter_with_defaults():
    """Defaults fill what the config leaves out; the worker's timeout applies unless set."""
    smtp = build_provider("smtp", {"host": "mx", "from_address": "a@b.c"}, {}, timeout=4.0)
    assert isinstance(smtp, SmtpProvider)
    assert (smtp._port, smtp._security, smtp._timeout) == (587, "starttls", 4.0)
    vonage = build_provider(
        "vonage", {"api_key": "k", "timeout": 2}, {"api_secret": "s"}, timeout=4.0
    )
    assert isinstance(vonage, VonageProvider)
    assert vonage._timeout == 2.0
    http = build_provider("http", {"url": "https://gw.example"}, {"secret": WHSEC}, timeout=4.0)
    assert isinstance(http, WebhookProvider)
    assert {p.type for p in (smtp, vonage, http)} == {"smtp", "vonage", "http"}


def test_build_provider_refuses_invalid_config():
    """Building from an unchecked config is a programming error with the problems listed."""
    with pytest.raises(ValueError, match=r"config\.account_sid is required"):
        build_provider("twilio", {}, {"auth_token": "t"}, timeout=1)
    with pytest.raises(ValueError, match="outbox"):
        build_provider("console", {}, {}, timeout=1)


def test_every_reason_code_is_documented():
    """docs/delivery.md lists each normalized reason code."""
    doc = (Path(__file__).parents[2] / "docs" / "delivery.md").read_text()
    assert [r for r in REASONS if f"`{r}`" not in doc] == []


def test_every_provider_setting_is_documented():
    """docs/delivery.md names every config and credential key of every type."""
    doc = (Path(__file__).parents[2] / "docs" / "delivery.md").read_text()
    missing = [
        f"{spec.type}.{f.name}"
        for spec in PROVIDER_TYPES.values()
        for f in (*spec.config, *spec.credentials)
        if f"`{f.name}`" not in doc
    ]
    assert missing == []
