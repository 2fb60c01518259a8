"""Destinations: phone numbers normalized to E.164, email addresses validated, and their masked forms."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneNumberType

from verify.errors import InvalidParameter

CHANNELS = ("sms", "call", "email", "whatsapp")
PHONE_CHANNELS = frozenset({"sms", "call", "whatsapp"})

# Number types no verification code is ever sent to: they cost the sender money or reach no person.
REFUSED_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "premium-rate",
    PhoneNumberType.SHARED_COST: "shared-cost",
    PhoneNumberType.UAN: "universal access (UAN)",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.VOICEMAIL: "voicemail",
}


# Every phone number type by name (the abuse controls' number-type policy speaks these names).
NUMBER_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
}


@dataclass(frozen=True)
class Destination:
    value: str  # E.164 number or normalized email address
    kind: str  # "phone" | "email"
    country: str | None = None  # ISO 3166 alpha-2 for phones
    number_type: str | None = None  # a NUMBER_TYPES name for a parsed phone number

    @property
    def masked(self) -> str:
        return mask(self.value)


def mask(value: str) -> str:
    """Keep what an operator needs to recognise a destination and nothing more."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return value[:3] + "*" * max(len(value) - 7, 1) + value[-4:]


def parse_phone(raw: str, parameter: str = "To") -> Destination:
    text = raw.strip()
    if raw[:1] == " " and text.isdigit():
        # An unencoded "+" in a form body arrives as a space (curl -d To=+1...): take it as meant.
        text = "+" + text
    if not text.startswith("+"):
        raise InvalidParameter(
            parameter, "phone numbers must be in E.164 format, e.g. +14155550123"
        )
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise InvalidParameter(parameter, "not a phone number") from None
    # number_type is UNKNOWN exactly when is_valid_number is false (the same region and pattern
    # lookups, which is_valid_number would make once more).
    type_ = phonenumbers.number_type(number)
    if type_ == PhoneNumberType.UNKNOWN:
        raise InvalidParameter(parameter, "not a valid phone number")
    refused = REFUSED_TYPES.get(type_)
    if refused:
        raise InvalidParameter(parameter, f"{refused} numbers cannot receive verification codes")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(number)
    return Destination(e164, "phone", region, NUMBER_TYPES.get(type_, "unknown"))


def parse_email(raw: str, parameter: str = "To") -> Destination:
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidParameter(parameter, f"not a valid email address ({exc})") from None
    local, _, domain = result.normalized.rpartition("@")
    return Destination(f"{local}@{domain.lower()}", "email")


def parse_destination(raw: str, channel: str, parameter: str = "To") -> Destination:
    """Normalize ``raw`` for ``channel``; the channel decides whether a phone or an email is wanted."""
    if channel == "email":
        return parse_email(raw, parameter)
    return parse_phone(raw, parameter)


def parse_any(raw: str, parameter: str = "To") -> Destination:
    """Normalize a destination given without a channel (a check by ``To``)."""
    return parse_email(raw, parameter) if "@" in raw else parse_phone(raw, parameter)
