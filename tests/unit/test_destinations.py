"""Destinations: E.164 normalization, email validation, refused number types, masking."""

import pytest

from verify.domain.destinations import mask, parse_any, parse_destination
from verify.errors import InvalidParameter


@pytest.mark.parametrize(
    ("raw", "e164", "country"),
    [
        ("+14155550123", "+14155550123", "US"),
        ("+44 7400 123456", "+447400123456", "GB"),
        ("+33 6 12 34 56 78", "+33612345678", "FR"),
        (" 14155550123", "+14155550123", "US"),  # "+" decoded as a space in a form body
    ],
)
def test_phone_numbers_normalize_to_e164(raw, e164, country):
    """Numbers are stored in E.164 with their country."""
    d = parse_destination(raw, "sms")
    assert (d.value, d.kind, d.country) == (e164, "phone", country)


@pytest.mark.parametrize(
    "raw", ["4155550123", "+1415", "+999123456789", "hello", "+1 415 555 01234567"]
)
def test_invalid_phone_numbers_are_refused_naming_the_parameter(raw):
    """Numbers that are not valid E.164 give 60200 naming To."""
    with pytest.raises(InvalidParameter) as info:
        parse_destination(raw, "sms")
    assert info.value.code == 60200
    assert info.value.parameter == "To"


@pytest.mark.parametrize("raw", ["+14150000000", "+4410", "+33123"])
def test_numbers_that_parse_but_exist_nowhere_are_refused(raw):
    """Well-formed numbers outside every numbering plan are refused as invalid."""
    with pytest.raises(InvalidParameter, match="not a valid phone number"):
        parse_destination(raw, "sms")


def test_premium_rate_numbers_are_refused():
    """A premium-rate number never receives a code."""
    with pytest.raises(InvalidParameter, match="premium-rate"):
        parse_destination("+449098790000", "sms")


def test_email_is_validated_and_its_domain_lowercased():
    """Emails keep their local part and get a lower-case domain."""
    d = parse_destination("Alice.Smith@Example.COM", "email")
    assert (d.value, d.kind) == ("Alice.Smith@example.com", "email")


@pytest.mark.parametrize("raw", ["no-at-sign", "a@", "@b.com", "a b@c.com"])
def test_invalid_emails_are_refused(raw):
    """Malformed addresses give 60200."""
    with pytest.raises(InvalidParameter):
        parse_destination(raw, "email")


def test_a_phone_channel_refuses_an_email_address():
    """sms to an email address is an invalid To, not a silent failure."""
    with pytest.raises(InvalidParameter):
        parse_destination("a@example.com", "sms")


def test_parse_any_picks_the_kind():
    """A check by To accepts either kind."""
    assert parse_any("a@Example.com").kind == "email"
    assert parse_any("+14155550123").kind == "phone"


@pytest.mark.parametrize(
    ("value", "masked"),
    [("+14155550123", "+14*****0123"), ("alice@example.com", "a***@example.com")],
)
def test_mask_keeps_only_what_identifies(value, masked):
    """Masked forms keep the last digits or the first letter and the domain."""
    assert mask(value) == masked
