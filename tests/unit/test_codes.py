"""Codes: generation, the peppered argon2 digest, and the sealed copy for workers."""

import secrets
from collections import Counter

import pytest

from verify.domain.codes import CodeHasher, CodeSealer, generate_code, is_valid_code

PARAMS = {"time_cost": 1, "memory_cost_kib": 64, "parallelism": 1}


def hasher(*peppers: bytes) -> CodeHasher:
    return CodeHasher(peppers or (secrets.token_bytes(32),), **PARAMS)


@pytest.mark.parametrize("length", [4, 6, 10])
def test_generated_codes_have_the_requested_length_of_digits(length):
    """A code is exactly `length` ASCII digits."""
    code = generate_code(length)
    assert len(code) == length
    assert code.isdigit()


@pytest.mark.parametrize("length", [3, 11])
def test_code_length_outside_4_to_10_is_refused(length):
    """Lengths outside Twilio's 4-10 range raise."""
    with pytest.raises(ValueError, match="4-10"):
        generate_code(length)


def test_digits_are_roughly_uniform():
    """Every digit appears with about the same frequency (no modulo bias)."""
    counts = Counter("".join(generate_code(10) for _ in range(5000)))
    assert set(counts) == set("0123456789")
    assert max(counts.values()) / min(counts.values()) < 1.2


def test_every_position_takes_every_digit():
    """Codes are zero-padded: a leading 0 is as likely as any other leading digit."""
    codes = [generate_code(4) for _ in range(5000)]
    for position in range(4):
        counts = Counter(code[position] for code in codes)
        assert set(counts) == set("0123456789")
        assert 380 < min(counts.values()) <= max(counts.values()) < 620  # 500 each, > 5 sigma


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("1234", True),
        ("0123456789", True),
        ("123", False),
        ("12345678901", False),
        ("12a4", False),
        ("١٢٣٤", False),
    ],
)
def test_is_valid_code(code, valid):
    """Only 4-10 ASCII digits are acceptable codes."""
    assert is_valid_code(code) is valid


def test_hash_verifies_the_right_code_only():
    """The digest verifies the code it was made from, for that sid only."""
    h = hasher()
    stored = h.hash("VE" + "a" * 32, "123456")
    assert h.verify("VE" + "a" * 32, "123456", stored)
    assert not h.verify("VE" + "a" * 32, "123457", stored)
    assert not h.verify("VE" + "b" * 32, "123456", stored)


def test_digest_does_not_contain_the_code_and_is_salted():
    """Two digests of the same code differ, and neither contains it."""
    h = hasher()
    one, two = h.hash("VEx", "987654"), h.hash("VEx", "987654")
    assert one != two
    assert "987654" not in one
    assert one.startswith("$argon2id$")


def test_rotated_pepper_still_verifies_old_digests():
    """After a new pepper is prepended, digests made with the old one still verify."""
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    stored = hasher(old).hash("VEx", "111111")
    assert hasher(new, old).verify("VEx", "111111", stored)
    assert not hasher(new).verify("VEx", "111111", stored)


def test_digests_made_with_other_argon2_parameters_still_verify():
    """A digest carries its own cost parameters: after VERIFY_ARGON2_* change (the default memory
    went from 1024 to 256 KiB), codes hashed before still verify, and only with the right code."""
    pepper = secrets.token_bytes(32)
    before = CodeHasher([pepper], time_cost=1, memory_cost_kib=1024, parallelism=1)
    after = CodeHasher([pepper], time_cost=1, memory_cost_kib=256, parallelism=1)
    stored = before.hash("VEx", "246810")
    assert "m=1024," in stored
    assert after.verify("VEx", "246810", stored)
    assert not after.verify("VEx", "246811", stored)


def test_garbage_digest_is_a_mismatch_not_an_error():
    """A corrupt stored value makes verify return False."""
    assert not hasher().verify("VEx", "111111", "not-a-hash")


def test_sealed_code_opens_only_for_its_sid():
    """A sealed code opens with its sid and fails for any other."""
    sealer = CodeSealer([secrets.token_bytes(32)])
    box = sealer.seal("VE1", "424242")
    assert b"424242" not in box
    assert sealer.open("VE1", box) == "424242"
    with pytest.raises(LookupError):
        sealer.open("VE2", box)


def test_sealer_key_rotation():
    """Boxes sealed with an old key open while that key is still configured, and not after."""
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    box = CodeSealer([old]).seal("VE1", "4242")
    assert CodeSealer([new, old]).open("VE1", box) == "4242"
    with pytest.raises(LookupError):
        CodeSealer([new]).open("VE1", box)
