"""Message templates: every channel in every locale, locale resolution, RTL, escaping, voice, warning."""

import unicodedata

import pytest

from tests.conftest import code_in
from tests.delivery.conftest import message
from verify.delivery import templates
from verify.delivery.templates import (
    CHANNELS,
    FSI,
    LOCALES,
    LRI,
    PDI,
    catalog,
    render,
    resolve_locale,
    sms_segments,
)

GRID = [(locale, channel) for locale in LOCALES for channel in CHANNELS]


@pytest.mark.parametrize(("locale", "channel"), GRID)
def test_every_locale_and_channel_renders_the_code_and_the_name(locale, channel):
    """Each template carries the code (after the colon), the service name and its locale."""
    m = message(channel, locale, code="907153", do_not_share_warning=True)
    assert m.locale == locale
    assert m.channel == channel
    assert code_in(m.text) == "907153"
    assert "Acme Login" in m.text
    if channel == "email":
        assert "Acme Login" in (m.subject or "")
        assert "907153" in (m.html or "")
        assert "907153" not in (m.subject or "")


@pytest.mark.parametrize("locale", LOCALES)
def test_locale_files_use_only_the_name_placeholder_and_end_leads_with_a_colon(locale):
    """Translators' strings: only ``{name}``, and the code always follows a colon."""
    words = catalog(locale)
    for text in (words.lead, words.call_lead, words.call_again, words.warning, words.email_subject):
        assert "{" not in text.replace("{name}", "")
    for lead in (words.lead, words.call_lead, words.call_again):
        assert lead.endswith(":")
    assert ":" not in words.warning
    assert not any(c.isdigit() for c in words.warning)
    assert words.direction in ("ltr", "rtl")


def test_english_sms_keeps_the_established_wording():
    """The English SMS is the one the rest of the suite and Twilio users know."""
    assert message().text == "Your Acme Login verification code is: 123456"
    assert message(do_not_share_warning=True).text == (
        "Your Acme Login verification code is: 123456. "
        "Don't share this code with anyone; we will never ask you for it."
    )


@pytest.mark.parametrize(
    ("requested", "default", "country", "expected"),
    [
        ("fr", "de", "MX", "fr"),  # the Locale parameter first
        (None, "de", "MX", "de"),  # then the service default
        (None, None, "MX", "es"),  # then the destination's country
        (None, None, "BR", "pt"),
        (None, None, "SA", "ar"),
        (None, None, "eg", "ar"),
        (None, None, "IL", "he"),
        (None, None, "US", "en"),
        (None, None, None, "en"),  # then English
        ("es-MX", None, None, "es"),  # region falls back to the language
        ("pt_BR", None, None, "pt"),
        ("PT-br", None, None, "pt"),
        ("zh-CN", "de", None, "de"),  # unknown language: next rule
        ("xx", None, "FR", "fr"),
        ("!!", None, "DE", "de"),  # malformed: next rule
        ("", "", "", "en"),
    ],
)
def test_locale_resolution_order(requested, default, country, expected):
    """Locale parameter, else service default, else country language, else English."""
    assert resolve_locale(requested, default, country) == expected


def test_render_falls_back_for_an_unsupported_locale():
    """A locale we have no words for renders in English rather than failing the send."""
    assert message(locale="sw").locale == "en"
    assert message(locale="es-AR").locale == "es"


def test_unknown_channel_is_refused():
    """A channel without templates is a programming error, not a silent English SMS."""
    with pytest.raises(ValueError, match="channel"):
        render(
            "fax",
            "en",
            friendly_name="A",
            code="1",
            do_not_share_warning=False,
            dtmf_required=False,
            to="+1",
            verification_sid="VE",
            attempt_sid="VL",
        )


@pytest.mark.parametrize("locale", ["ar", "he"])
@pytest.mark.parametrize("channel", ["sms", "whatsapp", "email"])
def test_rtl_text_isolates_the_name_and_keeps_the_code_left_to_right(locale, channel):
    """In RTL text the Latin name is first-strong isolated and the digits left-to-right isolated."""
    m = message(channel, locale)
    assert f"{FSI}Acme Login{PDI}" in m.text
    assert f"{LRI}123456{PDI}" in m.text
    first = next(c for c in m.text if unicodedata.bidirectional(c) in ("L", "R", "AL"))
    assert unicodedata.bidirectional(first) in ("R", "AL")  # the paragraph reads right-to-left
    if channel == "email":
        assert 'dir="rtl"' in (m.html or "")


def test_rtl_email_html_declares_direction_and_isolates_the_name():
    """The HTML part says lang/dir and wraps the name in <bdi>, the code in an LTR block."""
    html = message("email", "ar").html or ""
    assert '<html lang="ar" dir="rtl">' in html
    assert "<bdi>Acme Login</bdi>" in html
    assert '<p dir="ltr"' in html


def test_ltr_text_isolates_only_a_right_to_left_name():
    """A Hebrew service name in an English SMS is isolated; a Latin one is left as typed (GSM-7)."""
    assert FSI not in message().text
    hebrew = message(friendly_name="בנק הפועלים").text
    assert f"{FSI}בנק הפועלים{PDI}" in hebrew
    assert code_in(hebrew) == "123456"


def test_email_html_escapes_the_friendly_name():
    """The tenant's name cannot inject markup into the HTML part."""
    m = message("email", friendly_name='<script>alert("x")</script> & Co')
    assert "<script>" not in (m.html or "")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in (m.html or "")
    assert '<script>alert("x")</script> & Co' in m.text  # plain text stays plain


def test_friendly_name_cannot_break_lines_or_headers():
    """Control characters and newlines in the name collapse to spaces (subject header, SMS line)."""
    m = message("email", friendly_name="Acme\r\nBcc: victim@example.com\x07")
    assert not any(c in (m.subject or "") for c in "\r\n")
    assert m.subject == "Your Acme Bcc: victim@example.com verification code"


@pytest.mark.parametrize("channel", CHANNELS)
def test_warning_is_appended_only_when_enabled(channel):
    """DoNotShareWarningEnabled adds the localized warning; without it there is none."""
    warning = catalog("de").warning
    assert warning in message(channel, "de", do_not_share_warning=True).text
    assert warning not in message(channel, "de").text


def test_voice_reads_the_digits_one_by_one_twice():
    """The call script: lead, each digit as its own segment, again, each digit; text spells them."""
    m = message("call", code="4071")
    words = catalog("en")
    assert m.speech == (
        "Hello. Your Acme Login verification code is:",
        "4",
        "0",
        "7",
        "1",
        words.call_again,
        "4",
        "0",
        "7",
        "1",
    )
    assert m.text.count("4, 0, 7, 1.") == 2
    assert not m.dtmf_required


def test_voice_with_dtmf_asks_for_a_key_first():
    """With DtmfInputRequired the first segment asks to press a key; the code follows it."""
    m = message("call", "es", dtmf_required=True, do_not_share_warning=True)
    assert m.dtmf_required
    assert (
        m.speech[0]
        == "Pulsa cualquier tecla para escuchar tu código de verificación de Acme Login."
    )
    assert m.speech[1].startswith("Hola.")
    assert m.speech[-1] == catalog("es").warning
    assert m.text.startswith(m.speech[0])


def test_voice_has_no_bidi_controls():
    """Text-to-speech gets plain text, even in RTL locales."""
    m = message("call", "ar")
    assert not any(c in "".join(m.speech) + m.text for c in (FSI, LRI, PDI))


def test_non_call_channels_ignore_dtmf():
    """DTMF only means something on a call."""
    assert not message("sms", dtmf_required=True).dtmf_required


@pytest.mark.parametrize("locale", LOCALES)
def test_sms_fits_one_segment_without_the_warning(locale):
    """With a 20-character service name every SMS is a single segment (GSM-7 or UCS-2)."""
    text = message("sms", locale, friendly_name="Northwind Traders 1", code="12345678").text
    assert sms_segments(text)[1] == 1


@pytest.mark.parametrize("locale", LOCALES)
def test_sms_with_warning_fits_in_at_most_two_segments(locale):
    """The warning costs at most one more segment; GSM-7 locales keep a single one."""
    encoding, segments = sms_segments(message("sms", locale, do_not_share_warning=True).text)
    assert segments == 1 if encoding == "gsm7" else segments <= 2


def test_latin_locales_stay_in_gsm7():
    """English, French, German, Italian and Dutch SMS use the cheap alphabet."""
    for locale in ("en", "fr", "de", "it", "nl"):
        assert sms_segments(message("sms", locale, do_not_share_warning=True).text)[0] == "gsm7"


def test_segment_counting():
    """GSM-7 160/153 septets with extension characters counted twice; UCS-2 70/67."""
    assert sms_segments("a" * 160) == ("gsm7", 1)
    assert sms_segments("a" * 161) == ("gsm7", 2)
    assert sms_segments("€" * 80) == ("gsm7", 1)
    assert sms_segments("€" * 81) == ("gsm7", 2)
    assert sms_segments("ó" * 70) == ("ucs2", 1)
    assert sms_segments("ó" * 71) == ("ucs2", 2)


def test_every_locale_file_is_listed():
    """LOCALES and the files under verify/delivery/locales agree."""
    from importlib import resources

    files = {
        p.name.removesuffix(".toml")
        for p in resources.files("verify.delivery").joinpath("locales").iterdir()
        if p.name.endswith(".toml")
    }
    assert files == set(LOCALES)
    assert {"en", "es", "fr", "de", "pt"} <= files
    assert any(catalog(loc).rtl for loc in files)
    assert templates.COUNTRY_LANGUAGE["MX"] == "es"
