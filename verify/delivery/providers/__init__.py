"""The provider registry: which adapter types exist, what each one needs, and how to build one.

``PROVIDER_TYPES`` describes every type (channels, config keys, credential keys) for the API, the YAML
loader and the docs; ``validate_config`` names each field that is wrong; ``build_provider`` makes the
adapter. Config is public (shown by the API); credentials are secrets (write-only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from verify.delivery import templates
from verify.delivery.console import DevOutbox, stdout
from verify.delivery.providers import twilio as twilio_adapter
from verify.delivery.providers import vonage as vonage_adapter
from verify.delivery.providers.base import Provider
from verify.delivery.providers.console import ConsoleProvider
from verify.delivery.providers.guard import GuardedTransport, check_urls
from verify.delivery.providers.smtp import SECURITY, SmtpProvider
from verify.delivery.providers.twilio import TwilioProvider
from verify.delivery.providers.vonage import VonageProvider
from verify.delivery.providers.webhook import WebhookProvider, secret_key
from verify.events.ssrf import Network

ALL_CHANNELS = frozenset({"sms", "whatsapp", "call", "email"})


@dataclass(frozen=True)
class Field:
    name: str
    # str | int | float | bool | url | email | phone | choice | whsec | sid:<prefix> |
    # sids_by_language:<prefix> (an object: a language Verify renders -> a sid)
    kind: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ProviderSpec:
    type: str
    channels: frozenset[str]
    config: tuple[Field, ...]
    credentials: tuple[Field, ...]
    # Extra rules per channel: the fields (config or credentials) at least one of which must be set.
    needs: Mapping[str, tuple[tuple[str, ...], ...]]
    # Its adapter can look a message up (StatusLookup): lost receipts are recovered.
    status_lookup: bool = False

    def field(self, name: str) -> Field | None:
        return next((f for f in (*self.config, *self.credentials) if f.name == name), None)


TIMEOUT = Field("timeout", "float", description="seconds per provider call (default: the worker's)")

PROVIDER_TYPES: dict[str, ProviderSpec] = {
    "console": ProviderSpec(
        type="console",
        channels=ALL_CHANNELS,
        config=(
            Field("echo", "bool", default=False, description="also print to the worker's stdout"),
        ),
        credentials=(),
        needs={},
    ),
    "smtp": ProviderSpec(
        type="smtp",
        channels=frozenset({"email"}),
        config=(
            Field("host", "str", required=True),
            Field("port", "int", default=587),
            Field("security", "choice", default="starttls", choices=SECURITY),
            Field("from_address", "email", required=True),
            Field("from_name", "str"),
            TIMEOUT,
        ),
        credentials=(Field("username", "str"), Field("password", "str")),
        needs={},
    ),
    "twilio": ProviderSpec(
        type="twilio",
        channels=frozenset({"sms", "whatsapp", "call"}),
        config=(
            Field("account_sid", "sid:AC", required=True),
            Field(
                "from", "phone", description="sender number (SMS, and WhatsApp/voice by default)"
            ),
            Field("messaging_service_sid", "sid:MG", description="SMS sender pool instead of from"),
            Field("whatsapp_from", "phone"),
            Field("voice_from", "phone"),
            Field("voice", "str", description="TTS voice, e.g. Polly.Joanna"),
            Field(
                "whatsapp_content_sid",
                "sid:HX",
                description="approved WhatsApp authentication template (Content API) for the code",
            ),
            Field(
                "whatsapp_content_sids",
                "sids_by_language:HX",
                description='templates per language, e.g. {"es": "HX…"}; others use the one above',
            ),
            Field("base_url", "url", default=twilio_adapter.DEFAULT_BASE_URL),
            TIMEOUT,
        ),
        credentials=(Field("auth_token", "str", required=True),),
        needs={
            "sms": (("from", "messaging_service_sid"),),
            "whatsapp": (("whatsapp_from", "from"),),
            "call": (("voice_from", "from"),),
        },
        status_lookup=True,
    ),
    "vonage": ProviderSpec(
        type="vonage",
        channels=frozenset({"sms", "call"}),
        config=(
            Field("api_key", "str", required=True),
            Field("from", "str", description="sender number or alphanumeric sender id"),
            Field("voice_from", "phone"),
            Field("application_id", "str", description="Voice API application (voice only)"),
            Field("sms_url", "url", default=vonage_adapter.DEFAULT_SMS_URL),
            Field("api_url", "url", default=vonage_adapter.DEFAULT_API_URL),
            TIMEOUT,
        ),
        credentials=(
            Field("api_secret", "str", required=True),
            Field("private_key", "str", description="PEM RSA key of the application (voice)"),
            Field("signature_secret", "str", description="verifies delivery receipts"),
        ),
        needs={
            "sms": (("from",),),
            "call": (("application_id",), ("private_key",), ("voice_from", "from")),
        },
    ),
    "http": ProviderSpec(
        type="http",
        channels=ALL_CHANNELS,
        config=(Field("url", "url", required=True), TIMEOUT),
        credentials=(Field("secret", "whsec", required=True),),
        needs={},
    ),
}


# The types whose adapters can look a message up (ReceiptService.reconcile).
STATUS_LOOKUP_TYPES = tuple(t for t, spec in PROVIDER_TYPES.items() if spec.status_lookup)


def validate_config(
    type: str,
    config: Mapping[str, Any],
    credentials: Mapping[str, Any],
    *,
    channels: Iterable[str] | None = None,
    allow: Sequence[Network] | None = None,
) -> list[tuple[str, str]]:
    """Every problem as ``(field, problem)``; fields are ``config.<key>`` or ``credentials.<key>``
    (``type`` and ``channels`` for those). Empty means valid. Values are never quoted back.
    With ``allow`` (the operator's allowlist, maybe empty), URLs must also pass the SSRF guard."""
    spec = PROVIDER_TYPES.get(type)
    if spec is None:
        return [("type", f"must be one of {', '.join(sorted(PROVIDER_TYPES))}")]
    problems: list[tuple[str, str]] = []
    for section, fields, given in (
        ("config", spec.config, config),
        ("credentials", spec.credentials, credentials),
    ):
        known = {f.name: f for f in fields}
        for key in given:
            if key not in known:
                problems.append((f"{section}.{key}", f"is not a setting of the {type} provider"))
        for f in fields:
            value = given.get(f.name)
            if value is None or value == "":
                if f.required:
                    problems.append((f"{section}.{f.name}", "is required"))
                continue
            problem = _check(f, value)
            if problem:
                problems.append((f"{section}.{f.name}", problem))
    if type == "smtp" and bool(credentials.get("username")) != bool(credentials.get("password")):
        problems.append(("credentials.password", "username and password go together"))
    if channels is not None:
        problems.extend(_check_channels(spec, set(channels), {**config, **credentials}))
    if allow is not None and not problems:
        problems.extend(check_urls(type, config, allow))
    return problems


def _check_channels(
    spec: ProviderSpec, channels: set[str], given: Mapping[str, Any]
) -> list[tuple[str, str]]:
    unsupported = sorted(channels - spec.channels)
    if unsupported:
        return [("channels", f"the {spec.type} provider cannot carry {', '.join(unsupported)}")]
    problems = []
    for channel in sorted(channels):
        for alternatives in spec.needs.get(channel, ()):
            if not any(given.get(name) for name in alternatives):
                first = spec.field(alternatives[0])
                section = "credentials" if first and first in spec.credentials else "config"
                either = " or ".join(alternatives)
                problems.append(
                    (f"{section}.{alternatives[0]}", f"{either} is required for {channel}")
                )
    return problems


def _check(f: Field, value: Any) -> str | None:
    kind = f.kind
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536
        return None if ok else "must be an integer from 1 to 65535"
    if kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 60
        return None if ok else "must be a number of seconds above 0, at most 60"
    if kind.startswith("sids_by_language:"):
        return _check_sids_by_language(kind.partition(":")[2], value)
    if not isinstance(value, str):
        return "must be a string"
    if kind == "choice" and value not in f.choices:
        return f"must be one of {', '.join(f.choices)}"
    if kind == "url" and not _is_http_url(value):
        return "must be an http(s) URL"
    if kind == "email" and (value.count("@") != 1 or not all(value.split("@"))):
        return "must be an email address"
    if kind == "phone" and not (
        value.startswith("+") and value[1:].isdigit() and 8 <= len(value) <= 16
    ):
        return "must be an E.164 number (+ and 7-15 digits)"
    if kind.startswith("sid:") and not _is_sid(kind[4:], value):
        return f"must be a {kind[4:]} sid ({kind[4:]} and 32 hex digits)"
    if kind == "whsec":
        try:
            secret_key(value)
        except ValueError as exc:
            return str(exc)
    return None


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        port = parts.port  # read for its check: a port out of range or not a number is refused
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port != 0


def _is_sid(prefix: str, value: str) -> bool:
    body = value[len(prefix) :]
    return (
        value.startswith(prefix)
        and len(body) == 32
        and all(c in "0123456789abcdef" for c in body.lower())
    )


def _check_sids_by_language(prefix: str, value: Any) -> str | None:
    languages = ", ".join(templates.LOCALES)
    if not isinstance(value, Mapping) or not value:
        return f"must be an object from a language ({languages}) to a {prefix} sid"
    for language, sid in value.items():
        if language not in templates.LOCALES:
            return f"has a key that is not a language Verify renders ({languages})"
        if not isinstance(sid, str) or not _is_sid(prefix, sid):
            return f"must map each language to a {prefix} sid ({prefix} and 32 hex digits)"
    return None


def build_provider(
    type: str,
    config: Mapping[str, Any],
    credentials: Mapping[str, Any],
    *,
    timeout: float,
    outbox: DevOutbox | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Provider:
    """The adapter for a validated configuration (ValueError if it is not valid). ``timeout`` is the
    default when the config sets none; ``transport`` lets the caller route HTTP (tests, SSRF pinning)."""
    problems = validate_config(type, config, credentials)
    if problems:
        raise ValueError("; ".join(f"{field} {problem}" for field, problem in problems))
    spec = PROVIDER_TYPES[type]
    settings = {f.name: f.default for f in (*spec.config, *spec.credentials)}
    settings.update({k: v for k, v in {**config, **credentials}.items() if v is not None})
    seconds = float(settings.pop("timeout", None) or timeout)
    return _BUILDERS[type](settings, seconds, outbox, transport)


def _console(
    s: dict[str, Any], timeout: float, outbox: DevOutbox | None, t: httpx.BaseTransport | None
) -> Provider:
    if outbox is None:
        raise ValueError("the console provider needs the dev outbox")
    return ConsoleProvider(outbox, stdout() if s["echo"] else None)


def _smtp(
    s: dict[str, Any], timeout: float, outbox: DevOutbox | None, t: httpx.BaseTransport | None
) -> Provider:
    return SmtpProvider(
        host=s["host"],
        port=s["port"],
        security=s["security"],
        from_address=s["from_address"],
        from_name=s["from_name"],
        username=s["username"],
        password=s["password"],
        timeout=timeout,
        # The process's guarded transport also judges the hosts adapters connect to themselves.
        guard=t.address_for if isinstance(t, GuardedTransport) else None,
    )


def _twilio(
    s: dict[str, Any], timeout: float, outbox: DevOutbox | None, t: httpx.BaseTransport | None
) -> Provider:
    return TwilioProvider(
        account_sid=s["account_sid"],
        auth_token=s["auth_token"],
        from_number=s["from"],
        messaging_service_sid=s["messaging_service_sid"],
        whatsapp_from=s["whatsapp_from"],
        voice_from=s["voice_from"],
        voice=s["voice"],
        whatsapp_content_sid=s["whatsapp_content_sid"],
        whatsapp_content_sids=s["whatsapp_content_sids"],
        base_url=s["base_url"],
        timeout=timeout,
        transport=t,
    )


def _vonage(
    s: dict[str, Any], timeout: float, outbox: DevOutbox | None, t: httpx.BaseTransport | None
) -> Provider:
    return VonageProvider(
        api_key=s["api_key"],
        api_secret=s["api_secret"],
        from_=s["from"],
        voice_from=s["voice_from"],
        application_id=s["application_id"],
        private_key=s["private_key"],
        signature_secret=s["signature_secret"],
        sms_url=s["sms_url"],
        api_url=s["api_url"],
        timeout=timeout,
        transport=t,
    )


def _http(
    s: dict[str, Any], timeout: float, outbox: DevOutbox | None, t: httpx.BaseTransport | None
) -> Provider:
    return WebhookProvider(url=s["url"], secret=s["secret"], timeout=timeout, transport=t)


_BUILDERS: dict[
    str,
    Callable[[dict[str, Any], float, DevOutbox | None, httpx.BaseTransport | None], Provider],
] = {
    "console": _console,
    "smtp": _smtp,
    "twilio": _twilio,
    "vonage": _vonage,
    "http": _http,
}

__all__ = [
    "PROVIDER_TYPES",
    "STATUS_LOOKUP_TYPES",
    "Field",
    "GuardedTransport",
    "ProviderSpec",
    "build_provider",
    "validate_config",
]
