"""Message text for a code. Locales and per-channel templates arrive with the delivery pipeline."""

from __future__ import annotations

from dataclasses import dataclass

DO_NOT_SHARE = "Don't share this code with anyone; we will never ask you for it."


@dataclass(frozen=True)
class Message:
    to: str
    channel: str
    body: str
    verification_sid: str
    attempt_sid: str


def render_body(friendly_name: str, code: str, *, do_not_share_warning: bool) -> str:
    body = f"Your {friendly_name} verification code is: {code}"
    if do_not_share_warning:
        body = f"{body}. {DO_NOT_SHARE}"
    return body
