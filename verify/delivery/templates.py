"""Message text per channel and locale: which language to speak, and the words for each channel.

The words live in ``verify/delivery/locales/<tag>.toml`` (one file per language, read once, lazily).
Every ``lead`` sentence ends with a colon and the code follows it, on the first line of the text, so
phone autofill finds it. Right-to-left locales isolate the service name and the code (Unicode FSI/LRI
... PDI) so a Latin name or a run of digits never reorders the sentence around it.
"""

from __future__ import annotations

import html
import math
import re
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Protocol

from verify.delivery.providers.base import OutboundMessage


class Renderer(Protocol):
    """``render`` as the sender calls it: with the locale already resolved."""

    def __call__(
        self,
        channel: str,
        locale: str,
        *,
        friendly_name: str,
        code: str,
        do_not_share_warning: bool,
        dtmf_required: bool,
        to: str,
        verification_sid: str,
        attempt_sid: str,
        status_callback: str | None = None,
        voice_continue_url: str | None = None,
    ) -> OutboundMessage: ...


LocaleResolver = Callable[[str | None, str | None, str | None], str]

CHANNELS = ("sms", "whatsapp", "call", "email")
LOCALES = ("en", "es", "fr", "de", "pt", "it", "nl", "ar", "he")
DEFAULT_LOCALE = "en"

# ISO 3166-1 alpha-2 -> the language most people there read. Countries split between languages we
# have (Belgium, Switzerland, Canada, Luxembourg) get their majority language or none (English).
_COUNTRIES = {
    "es": "ES MX AR CO CL PE VE EC GT CU BO DO HN PY SV NI CR PA UY PR GQ",
    "pt": "BR PT AO MZ CV GW ST TL",
    "fr": "FR MC SN CI ML BF NE TG BJ GN CD CG GA CM MG HT CF TD DJ KM BI RE GP MQ GF YT PM NC PF WF BL MF",
    "de": "DE AT LI CH",
    "it": "IT SM VA",
    "nl": "NL SR BE AW CW SX",
    "ar": "SA EG AE QA KW BH OM YE IQ JO LB SY PS LY TN DZ MA SD MR",
    "he": "IL",
}
COUNTRY_LANGUAGE = {
    country: lang for lang, codes in _COUNTRIES.items() for country in codes.split()
}

FSI, LRI, PDI = "\u2068", "\u2066", "\u2069"  # first-strong isolate, left-to-right isolate, pop
_TAG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")
_RTL_CLASSES = {"R", "AL"}


@dataclass(frozen=True)
class Catalog:
    """The words of one locale."""

    tag: str
    language: str
    direction: str  # ltr | rtl
    voice: str  # BCP 47 tag for text-to-speech
    lead: str
    warning: str
    call_press: str
    call_lead: str
    call_again: str
    email_subject: str
    email_ignore: str

    @property
    def rtl(self) -> bool:
        return self.direction == "rtl"


@cache
def catalog(locale: str) -> Catalog:
    if locale not in LOCALES:
        raise KeyError(f"no templates for locale {locale!r}")
    raw = tomllib.loads(
        resources.files("verify.delivery").joinpath("locales", f"{locale}.toml").read_text("utf-8")
    )
    return Catalog(
        tag=locale,
        language=raw["language"],
        direction=raw["direction"],
        voice=raw["voice"],
        lead=raw["lead"],
        warning=raw["warning"],
        call_press=raw["call"]["press"],
        call_lead=raw["call"]["lead"],
        call_again=raw["call"]["again"],
        email_subject=raw["email"]["subject"],
        email_ignore=raw["email"]["ignore"],
    )


def resolve_locale(requested: str | None, service_default: str | None, country: str | None) -> str:
    """The request's ``Locale``, else the service default, else the destination country's language,
    else English. ``es-MX`` / ``pt_BR`` fall back to their language; an unknown tag goes to the next rule.
    """
    for candidate in (requested, service_default):
        found = _supported(candidate)
        if found:
            return found
    if country:
        language = COUNTRY_LANGUAGE.get(country.strip().upper())
        if language in LOCALES:
            return language
    return DEFAULT_LOCALE


def _supported(tag: str | None) -> str | None:
    if not tag:
        return None
    normalized = tag.strip().replace("_", "-").lower()
    if not _TAG.fullmatch(normalized):
        return None
    if normalized in LOCALES:
        return normalized
    language = normalized.split("-", 1)[0]
    return language if language in LOCALES else None


def render(
    channel: str,
    locale: str,
    *,
    friendly_name: str,
    code: str,
    do_not_share_warning: bool,
    dtmf_required: bool,
    to: str,
    verification_sid: str,
    attempt_sid: str,
    status_callback: str | None = None,
    voice_continue_url: str | None = None,
) -> OutboundMessage:
    """The message for one send attempt. An unsupported locale falls back as ``resolve_locale`` does.
    ``voice_continue_url`` (calls with DTMF) is where the provider fetches the script after the key."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    words = catalog(resolve_locale(locale, None, None))
    name = clean_name(friendly_name)
    base = OutboundMessage(
        to=to,
        channel=channel,
        locale=words.tag,
        text="",
        verification_sid=verification_sid,
        attempt_sid=attempt_sid,
        status_callback=status_callback,
        code=code,
    )
    if channel == "call":
        return replace(
            base,
            text=_call_text(words, name, code, do_not_share_warning, dtmf_required),
            speech=_speech(words, name, code, do_not_share_warning, dtmf_required),
            dtmf_required=dtmf_required,
            voice_continue_url=voice_continue_url if dtmf_required else None,
        )
    shown_name, shown_code = _display(words, name), _display_code(words, code)
    lead = words.lead.replace("{name}", shown_name)
    if channel == "sms":
        text = f"{lead} {shown_code}"
        if do_not_share_warning:
            text = f"{text}. {words.warning}"
        return replace(base, text=text)
    if channel == "whatsapp":
        text = f"{lead} *{shown_code}*"
        if do_not_share_warning:
            text = f"{text}\n\n{words.warning}"
        return replace(base, text=text)
    return replace(
        base,
        text=_email_text(words, lead, shown_code, do_not_share_warning),
        subject=words.email_subject.replace("{name}", shown_name),
        html=_email_html(words, name, code, do_not_share_warning),
    )


def clean_name(friendly_name: str) -> str:
    """The tenant's name on one line: control characters dropped, whitespace runs collapsed."""
    visible = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in friendly_name
    )
    return " ".join(visible.split())


def _display(words: Catalog, name: str) -> str:
    # Isolate only where it changes something: in RTL text, or an RTL name in LTR text. Plain Latin
    # names in LTR locales stay as typed, so English SMS keeps to GSM-7.
    if words.rtl or _has_rtl(name):
        return f"{FSI}{name}{PDI}"
    return name


def _display_code(words: Catalog, code: str) -> str:
    return f"{LRI}{code}{PDI}" if words.rtl else code


def _has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(c) in _RTL_CLASSES for c in text)


def _digits(code: str, words: Catalog) -> str:
    separator = "، " if words.tag == "ar" else ", "
    return separator.join(code)


def _speech(
    words: Catalog, name: str, code: str, warning: bool, dtmf_required: bool
) -> tuple[str, ...]:
    """Segments spoken in order with a pause between each: digits one by one, the code twice."""
    script: list[str] = []
    if dtmf_required:
        script.append(words.call_press.replace("{name}", name))
    script.append(words.call_lead.replace("{name}", name))
    script.extend(code)
    script.append(words.call_again)
    script.extend(code)
    if warning:
        script.append(words.warning)
    return tuple(script)


def _call_text(words: Catalog, name: str, code: str, warning: bool, dtmf_required: bool) -> str:
    lines = []
    if dtmf_required:
        lines.append(words.call_press.replace("{name}", name))
    lines.append(f"{words.call_lead.replace('{name}', name)} {_digits(code, words)}.")
    lines.append(f"{words.call_again} {_digits(code, words)}.")
    if warning:
        lines.append(words.warning)
    return "\n".join(lines)


def _email_text(words: Catalog, lead: str, shown_code: str, warning: bool) -> str:
    parts = [f"{lead} {shown_code}"]
    if warning:
        parts.append(words.warning)
    parts.append(words.email_ignore)
    return "\n\n".join(parts) + "\n"


def _email_html(words: Catalog, name: str, code: str, warning: bool) -> str:
    # The name is tenant input: escaped, and in <bdi> so its direction cannot spill into the sentence.
    shown = f"<bdi>{html.escape(name)}</bdi>"
    lead = shown.join(html.escape(part) for part in words.lead.split("{name}"))
    subject = shown.join(html.escape(part) for part in words.email_subject.split("{name}"))
    paragraphs = [
        f"<p>{lead}</p>",
        '<p dir="ltr" style="font-size:28px;font-weight:bold;letter-spacing:4px;'
        f'font-family:monospace">{html.escape(code)}</p>',
    ]
    if warning:
        paragraphs.append(f"<p>{html.escape(words.warning)}</p>")
    paragraphs.append(f'<p style="color:#666666">{html.escape(words.email_ignore)}</p>')
    body = "\n".join(paragraphs)
    return (
        f'<!DOCTYPE html>\n<html lang="{words.tag}" dir="{words.direction}">\n'
        f'<head><meta charset="utf-8"><title>{subject}</title></head>\n'
        f'<body style="font-family:sans-serif">\n{body}\n</body>\n</html>\n'
    )


# -- SMS segments ------------------------------------------------------------------------------------

_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")  # two septets each


def is_gsm7(text: str) -> bool:
    return all(c in _GSM7 or c in _GSM7_EXTENDED for c in text)


def sms_segments(text: str) -> tuple[str, int]:
    """(encoding, segments) for an SMS body: GSM-7 (160/153 septets) or UCS-2 (70/67 units)."""
    if is_gsm7(text):
        size = sum(2 if c in _GSM7_EXTENDED else 1 for c in text)
        return "gsm7", 1 if size <= 160 else math.ceil(size / 153)
    units = len(text.encode("utf-16-le")) // 2
    return "ucs2", 1 if units <= 70 else math.ceil(units / 67)
