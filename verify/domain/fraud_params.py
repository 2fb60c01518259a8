"""Fraud-rule parameters: what each rule type accepts, checked and normalized (defaults filled in,
lists sorted), with a clear error naming the parameter otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import phonenumbers

from verify.domain.destinations import PHONE_CHANNELS
from verify.domain.ratelimits import KEYS, MAX_INTERVAL
from verify.errors import InvalidParameter

REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)


def normalize(type_: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a rule of ``type_`` (one of ``CHECKS``) with the defaults filled in."""
    out: dict[str, Any] = {}
    CHECKS[type_](params, out)
    unknown = sorted(set(params) - set(out) - {"prefix_digits"})
    if unknown:
        raise InvalidParameter("Params", f"unknown parameter(s) for {type_}: {', '.join(unknown)}")
    return out


def _int(
    p: Mapping[str, Any], out: dict[str, Any], name: str, default: int, lo: int, hi: int
) -> None:
    value = p.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidParameter("Params", f"{name} must be an integer between {lo} and {hi}")
    out[name] = value


def _float(p: Mapping[str, Any], out: dict[str, Any], name: str, default: float) -> None:
    value = p.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidParameter("Params", f"{name} must be a number between 0 and 1")
    out[name] = float(value)


def _choice(
    p: Mapping[str, Any], out: dict[str, Any], name: str, default: str, options: Iterable[str]
) -> None:
    value = p.get(name, default)
    options = tuple(options)
    if value not in options:
        raise InvalidParameter("Params", f"{name} must be one of {', '.join(options)}")
    out[name] = value


def _list(
    p: Mapping[str, Any],
    out: dict[str, Any],
    name: str,
    options: Iterable[str],
    default: Iterable[str] = (),
) -> None:
    value = p.get(name, list(default))
    allowed = set(options)
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str) and v in allowed for v in value
    ):
        raise InvalidParameter("Params", f"{name} must be a list of: {', '.join(sorted(allowed))}")
    out[name] = sorted(dict.fromkeys(value))


def _params_geo(p: Mapping[str, Any], out: dict[str, Any]) -> None:
    seen: set[str] = set()
    for action in ("allow", "block", "monitor"):
        value = p.get(action, [])
        if not isinstance(value, list | tuple):
            raise InvalidParameter("Params", f"{action} must be a list of ISO country codes")
        codes = [str(c).upper() for c in value]
        unknown = [c for c in codes if c not in REGIONS]
        if unknown:
            raise InvalidParameter("Params", f"unknown country code(s): {', '.join(unknown)}")
        twice = seen.intersection(codes)
        if twice:
            raise InvalidParameter("Params", f"{', '.join(sorted(twice))} listed twice")
        seen.update(codes)
        out[action] = sorted(set(codes))
    _choice(p, out, "default", "block", ("allow", "block", "monitor"))


def _params_number_type(p: Mapping[str, Any], out: dict[str, Any]) -> None:
    refusable = (
        "premium_rate",
        "shared_cost",
        "uan",
        "pager",
        "voicemail",
        "voip",
        "toll_free",
        "personal_number",
    )
    _list(p, out, "refuse", refusable, ("premium_rate", "shared_cost", "uan", "pager", "voicemail"))
    _list(p, out, "refuse_landline_for", PHONE_CHANNELS, ("sms", "whatsapp"))
    _choice(p, out, "voip", "flag", ("allow", "flag", "refuse"))


def _params_prefix_velocity(p: Mapping[str, Any], out: dict[str, Any]) -> None:
    _int(p, out, "prefix_digits", 4, 1, 8)
    _int(p, out, "max", 5, 1, 1_000_000)
    _int(p, out, "window", 900, 1, MAX_INTERVAL)


def _params_sequential(p: Mapping[str, Any], out: dict[str, Any]) -> None:
    _int(p, out, "block_digits", 2, 1, 6)
    _int(p, out, "max_numbers", 4, 1, 10_000)
    _int(p, out, "window", 900, 1, MAX_INTERVAL)


def _params_ip(p: Mapping[str, Any], out: dict[str, Any]) -> None:
    _int(p, out, "max_destinations", 10, 1, 100_000)
    _int(p, out, "max_countries", 3, 1, 300)
    _int(p, out, "window", 3_600, 1, MAX_INTERVAL)


def _params_conversion(p: Mapping[str, Any], out: dict[str, Any]) -> None:
    _choice(p, out, "dimension", "prefix", ("prefix", "country"))
    _int(p, out, "prefix_digits", 4, 1, 8)
    _int(p, out, "window", 3_600, 60, MAX_INTERVAL)
    _int(p, out, "buckets", 12, 2, 120)
    _int(p, out, "min_sample", 20, 1, 1_000_000)
    _float(p, out, "min_rate", 0.2)
    _int(p, out, "cooldown", 43_200, 60, MAX_INTERVAL)
    _int(p, out, "escalation", 2, 1, 10)
    _int(p, out, "max_cooldown", 604_800, 60, 10 * MAX_INTERVAL)


def _params_risk_check(p: Mapping[str, Any], out: dict[str, Any]) -> None:
    value = p.get("allow_disable", False)
    if not isinstance(value, bool):
        raise InvalidParameter("Params", "allow_disable must be true or false")
    out["allow_disable"] = value


def _params_rate_limit(p: Mapping[str, Any], out: dict[str, Any]) -> None:
    _choice(p, out, "key", "", [k for k in KEYS if k not in ("global", "destination_global")])
    _int(p, out, "max", 0, 1, 10_000_000)
    _int(p, out, "interval", 0, 1, MAX_INTERVAL)
    if out["key"] == "prefix":
        _int(p, out, "prefix_digits", 3, 1, 8)


CHECKS: dict[str, Callable[[Mapping[str, Any], dict[str, Any]], None]] = {
    "rate_limit": _params_rate_limit,
    "geo_permissions": _params_geo,
    "number_type": _params_number_type,
    "prefix_velocity": _params_prefix_velocity,
    "sequential_burst": _params_sequential,
    "ip_velocity": _params_ip,
    "conversion_rate": _params_conversion,
    "risk_check": _params_risk_check,
}
