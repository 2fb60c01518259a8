"""The error taxonomy: stable, unique codes and sane statuses."""

from verify import errors


def test_every_code_maps_to_one_status():
    """A code never means two different HTTP statuses."""
    seen: dict[int, int] = {}
    for cls in errors.all_error_classes():
        if cls is errors.HttpError:
            continue
        assert seen.setdefault(cls.code, cls.status) == cls.status, cls


def test_codes_are_twilio_codes_or_in_our_range():
    """Our own codes live in 68000-68999; all others are Twilio's."""
    for cls in errors.all_error_classes():
        assert 20000 <= cls.code < 70000, cls


def test_terminal_state_is_in_the_body():
    """A 404 for a finished verification names its state."""
    err = errors.VerificationNotPending("VE1", "approved")
    assert err.status == 404
    assert err.code == 20404
    assert err.extra["verification_status"] == "approved"


def test_invalid_parameter_names_the_parameter():
    """60200 carries the parameter in its detail and body."""
    err = errors.InvalidParameter("To", "not a phone number")
    assert "`To`" in err.detail
    assert err.extra["parameter"] == "To"
