"""Twilio-shaped resource ids: a two-letter prefix and 32 lowercase hex digits."""

from __future__ import annotations

import re
import secrets

ACCOUNT = "AC"
API_KEY = "SK"
SERVICE = "VA"
VERIFICATION = "VE"
ATTEMPT = "VL"
EVENT = "EV"

_SHAPE = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def is_sid(value: str, prefix: str) -> bool:
    return value.startswith(prefix) and bool(_SHAPE.match(value))
