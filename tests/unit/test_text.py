"""What can be stored, and reading JSON and YAML that cannot be read whole."""

import re

import pytest

from verify.domain import text


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("plain", None),
        ({"k": ["v", 1, None, {"deep": "ok"}]}, None),
        ("a\x00b", text.UNSTORABLE),
        ({"k\ud800": 1}, text.UNSTORABLE),
        ([[["\x00"]]], text.UNSTORABLE),
        ([], None),
    ],
)
def test_refusal_names_the_problem(value, problem):
    assert text.refusal(value) == problem


def nest(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_depth_is_bounded_without_recursion():
    assert text.refusal(nest(text.MAX_DEPTH)) is None
    assert text.refusal(nest(text.MAX_DEPTH + 1)) == text.TOO_DEEP
    assert text.refusal(nest(50_000)) == text.TOO_DEEP  # far past Python's recursion limit


def test_shared_values_count_as_often_as_they_are_used():
    """What a YAML alias does: stored, each use is a copy."""
    shared = ["x"] * 10
    for _ in range(5):
        shared = [shared] * 10
    assert text.refusal(shared) == text.TOO_LARGE  # 10**6 values, refused after 10**5


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("{x", "is not valid JSON (Expecting property name"),
        ("[" * 5000 + "]" * 5000, text.TOO_DEEP),
        ("9" * 5000, text.TOO_LONG_NUMBER),
        (b'"\xff"', "is not UTF-8 text"),
    ],
)
def test_json_that_cannot_be_read_whole_is_a_value_error(raw, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        text.load_json(raw)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("a: [b\nc: d", "is not valid YAML (line 2, column 2"),
        ("[" * 5000 + "]" * 5000, text.TOO_DEEP),
        ("a: " + "9" * 5000, text.TOO_LONG_NUMBER),
    ],
)
def test_yaml_that_cannot_be_read_whole_is_a_value_error(raw, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        text.load_yaml(raw)


def test_yaml_errors_do_not_quote_the_line():
    with pytest.raises(ValueError, match=r"^is not valid YAML") as caught:
        text.load_yaml("password: s3cret: [")
    assert "s3cret" not in str(caught.value)
