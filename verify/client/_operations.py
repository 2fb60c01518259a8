"""Every API operation as data: the request to send and how to read its answer. The sync and async
clients both run these, so the two cannot disagree on paths, parameters or parsing.

Every POST carries an Idempotency-Key (a random one unless the caller gives one), so every request
the client sends is safe to retry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypedDict, TypeVar
from urllib.parse import quote

from verify.client._http import Call
from verify.client.models import Service, Verification, VerificationCheck

T = TypeVar("T")


@dataclass(frozen=True)
class Operation(Generic[T]):
    call: Call
    parse: Callable[[Any], T]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next: Operation[Page[T]] | None


class Runner(Protocol):
    """How the sync client runs an operation."""

    def __call__(self, op: Operation[T], /) -> T: ...


class AsyncRunner(Protocol):
    """How the async client runs an operation."""

    def __call__(self, op: Operation[T], /) -> Awaitable[T]: ...


class ServiceSettings(TypedDict, total=False):
    """Service settings, as keyword arguments of ``services.create`` and ``services.update``."""

    code_length: int
    code_ttl: int
    max_check_attempts: int
    max_send_attempts: int
    channels: Sequence[str]
    fallback_channels: Sequence[str]
    channel_timeout: int
    custom_code_enabled: bool
    do_not_share_warning_enabled: bool
    manual_approval_enabled: bool
    default_locale: str
    test_numbers: Mapping[str, str]
    lookup_enabled: bool
    skip_sms_to_landlines: bool
    dtmf_input_required: bool
    tts_name: str
    psd2_enabled: bool


SERVICE_SETTINGS = frozenset(ServiceSettings.__optional_keys__)


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


def _seg(value: str) -> str:
    return quote(value, safe="")


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _wire(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return json.dumps(dict(value))
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(v) for v in value)
    return str(value)


def settings_form(settings: Mapping[str, object]) -> dict[str, str]:
    """snake_case keyword arguments to the API's PascalCase form parameters (None: left out)."""
    unknown = sorted(set(settings) - SERVICE_SETTINGS - {"friendly_name"})
    if unknown:
        raise TypeError(f"unknown service setting(s): {', '.join(unknown)}")
    return {_pascal(k): _wire(v) for k, v in settings.items() if v is not None}


def _one(cls: Callable[[dict[str, Any]], T]) -> Callable[[Any], T]:
    def parse(data: Any) -> T:
        return cls(data if isinstance(data, dict) else {})

    return parse


def _nothing(_: Any) -> None:
    return None


# -- services -------------------------------------------------------------------------------------


def create_service(friendly_name: str, settings: Mapping[str, object]) -> Operation[Service]:
    form = {"FriendlyName": friendly_name, **settings_form(settings)}
    call = Call("POST", "/v2/Services", form=form, idempotency_key=new_idempotency_key())
    return Operation(call, _one(Service.from_dict))


def fetch_service(sid: str) -> Operation[Service]:
    return Operation(Call("GET", f"/v2/Services/{_seg(sid)}"), _one(Service.from_dict))


def update_service(sid: str, settings: Mapping[str, object]) -> Operation[Service]:
    form = settings_form(settings)
    call = Call(
        "POST", f"/v2/Services/{_seg(sid)}", form=form, idempotency_key=new_idempotency_key()
    )
    return Operation(call, _one(Service.from_dict))


def delete_service(sid: str) -> Operation[None]:
    return Operation(Call("DELETE", f"/v2/Services/{_seg(sid)}"), _nothing)


def list_services(page_size: int) -> Operation[Page[Service]]:
    return _service_page(Call("GET", "/v2/Services", params={"PageSize": page_size}))


def _service_page(call: Call) -> Operation[Page[Service]]:
    def parse(data: Any) -> Page[Service]:
        data = data if isinstance(data, dict) else {}
        items = [Service.from_dict(s) for s in data.get("services") or [] if isinstance(s, dict)]
        meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
        next_url = meta.get("next_page_url")
        if not isinstance(next_url, str) or not next_url:
            return Page(items, None)
        return Page(items, _service_page(Call("GET", next_url)))

    return Operation(call, parse)


# -- verifications --------------------------------------------------------------------------------


def _verifications(service_sid: str) -> str:
    return f"/v2/Services/{_seg(service_sid)}/Verifications"


def start_verification(
    service_sid: str,
    to: str,
    channel: str,
    *,
    locale: str | None,
    custom_code: str | None,
    custom_friendly_name: str | None,
    device_ip: str | None,
    status_callback: str | None,
    rate_limits: Mapping[str, str] | None,
    risk_check: bool | None,
    idempotency_key: str | None,
) -> Operation[Verification]:
    optional = {
        "Locale": locale,
        "CustomCode": custom_code,
        "CustomFriendlyName": custom_friendly_name,
        "DeviceIp": device_ip,
        "StatusCallback": status_callback,
        "RateLimits": None if rate_limits is None else _wire(rate_limits),
        "RiskCheck": None if risk_check is None else ("enable" if risk_check else "disable"),
    }
    form = {"To": to, "Channel": channel, **{k: v for k, v in optional.items() if v is not None}}
    key = idempotency_key or new_idempotency_key()
    call = Call("POST", _verifications(service_sid), form=form, idempotency_key=key)
    return Operation(call, _one(Verification.from_dict))


def check_verification(
    service_sid: str, code: str, *, to: str | None, verification_sid: str | None
) -> Operation[VerificationCheck]:
    form = {"Code": code}
    if to is not None:
        form["To"] = to
    if verification_sid is not None:
        form["VerificationSid"] = verification_sid
    path = f"/v2/Services/{_seg(service_sid)}/VerificationCheck"
    call = Call("POST", path, form=form, idempotency_key=new_idempotency_key())
    return Operation(call, _one(VerificationCheck.from_dict))


def fetch_verification(service_sid: str, sid: str) -> Operation[Verification]:
    call = Call("GET", f"{_verifications(service_sid)}/{_seg(sid)}")
    return Operation(call, _one(Verification.from_dict))


def set_verification_status(service_sid: str, sid: str, status: str) -> Operation[Verification]:
    path = f"{_verifications(service_sid)}/{_seg(sid)}"
    call = Call("POST", path, form={"Status": status}, idempotency_key=new_idempotency_key())
    return Operation(call, _one(Verification.from_dict))
