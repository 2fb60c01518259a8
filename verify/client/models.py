"""What the API returns, as frozen dataclasses.

Parsing is lenient: fields the client does not know are ignored (they stay in ``raw``), and a
missing field becomes ``None`` (or an empty list), so a newer server never breaks an older client.
Dates are timezone-aware ``datetime`` objects in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def _str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(data: dict[str, Any], key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def _date(data: dict[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _strings(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@dataclass(frozen=True)
class SendCodeAttempt:
    """One attempt to deliver the code (the first send or a resend)."""

    attempt_sid: str
    channel: str | None
    time: datetime | None
    status: str | None  # queued, sending, sent, failed, canceled, test
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SendCodeAttempt:
        return cls(
            attempt_sid=_str(data, "attempt_sid") or "",
            channel=_str(data, "channel"),
            time=_date(data, "time"),
            status=_str(data, "status"),
            raw=data,
        )


@dataclass(frozen=True)
class Verification:
    """A verification: one code for one destination, ``pending`` until it is approved, canceled,
    expires or runs out of check attempts (``max_attempts_reached``)."""

    sid: str
    service_sid: str
    account_sid: str
    to: str
    channel: str
    status: str
    valid: bool
    send_code_attempts: list[SendCodeAttempt]
    date_created: datetime | None
    date_updated: datetime | None
    expires_at: datetime | None
    check_attempts: int | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verification:
        attempts = data.get("send_code_attempts")
        return cls(
            sid=_str(data, "sid") or "",
            service_sid=_str(data, "service_sid") or "",
            account_sid=_str(data, "account_sid") or "",
            to=_str(data, "to") or "",
            channel=_str(data, "channel") or "",
            status=_str(data, "status") or "",
            valid=_bool(data, "valid") or False,
            send_code_attempts=[
                SendCodeAttempt.from_dict(a)
                for a in (attempts if isinstance(attempts, list) else [])
                if isinstance(a, dict)
            ],
            date_created=_date(data, "date_created"),
            date_updated=_date(data, "date_updated"),
            expires_at=_date(data, "expires_at"),
            check_attempts=_int(data, "check_attempts"),
            raw=data,
        )


@dataclass(frozen=True)
class VerificationCheck:
    """The result of checking a code: ``valid`` and ``status == "approved"`` when it was right.
    A wrong code is not an exception: ``valid`` is False and ``status`` stays ``pending``."""

    sid: str
    service_sid: str
    account_sid: str
    to: str
    channel: str
    status: str
    valid: bool
    date_created: datetime | None
    date_updated: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerificationCheck:
        return cls(
            sid=_str(data, "sid") or "",
            service_sid=_str(data, "service_sid") or "",
            account_sid=_str(data, "account_sid") or "",
            to=_str(data, "to") or "",
            channel=_str(data, "channel") or "",
            status=_str(data, "status") or "",
            valid=_bool(data, "valid") or False,
            date_created=_date(data, "date_created"),
            date_updated=_date(data, "date_updated"),
            raw=data,
        )


@dataclass(frozen=True)
class Service:
    """A Verify service: the settings its verifications follow. ``test_numbers`` lists the
    destinations that have a fixed code (the codes themselves are never returned)."""

    sid: str
    account_sid: str
    friendly_name: str
    code_length: int | None
    code_ttl: int | None
    max_check_attempts: int | None
    max_send_attempts: int | None
    channels: list[str]
    fallback_channels: list[str]
    channel_timeout: int | None
    custom_code_enabled: bool | None
    do_not_share_warning_enabled: bool | None
    manual_approval_enabled: bool | None
    default_locale: str | None
    test_numbers: list[str]
    date_created: datetime | None
    date_updated: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Service:
        return cls(
            sid=_str(data, "sid") or "",
            account_sid=_str(data, "account_sid") or "",
            friendly_name=_str(data, "friendly_name") or "",
            code_length=_int(data, "code_length"),
            code_ttl=_int(data, "code_ttl"),
            max_check_attempts=_int(data, "max_check_attempts"),
            max_send_attempts=_int(data, "max_send_attempts"),
            channels=_strings(data, "channels"),
            fallback_channels=_strings(data, "fallback_channels"),
            channel_timeout=_int(data, "channel_timeout"),
            custom_code_enabled=_bool(data, "custom_code_enabled"),
            do_not_share_warning_enabled=_bool(data, "do_not_share_warning_enabled"),
            manual_approval_enabled=_bool(data, "manual_approval_enabled"),
            default_locale=_str(data, "default_locale"),
            test_numbers=_strings(data, "test_numbers"),
            date_created=_date(data, "date_created"),
            date_updated=_date(data, "date_updated"),
            raw=data,
        )
