"""Circuit breakers in Redis: open on consecutive failures or a failure rate, one probe, close."""

from __future__ import annotations

import pytest

from verify.delivery.circuit import CircuitBreakers, Decision, Policy

T0 = 1_800_000_000.0


@pytest.fixture
def breakers(runtime) -> CircuitBreakers:
    return CircuitBreakers(
        runtime.redis,
        Policy(failures=3, failure_rate=50, min_volume=10, window=60, cooldown=30, probe_lease=10),
    )


def test_consecutive_failures_open_the_circuit(breakers):
    """Three failures in a row open it; a success in between starts the count over."""
    for ok in (False, False, True, False, False):
        breakers.record("PV1", ok, T0)
    assert breakers.admit("PV1", T0).decision is Decision.CLOSED
    assert breakers.record("PV1", False, T0) == "open"
    admission = breakers.admit("PV1", T0 + 1)
    assert (admission.decision, admission.retry_in) == (Decision.OPEN, 29.0)


def test_a_failure_rate_opens_the_circuit(breakers):
    """Half of at least ten calls in the window failing opens it, without three in a row."""
    for i in range(10):
        state = breakers.record("PV1", i % 2 == 0, T0 + i)
    assert state == "open"


def test_one_probe_after_the_cool_down(breakers):
    """After the cool-down exactly one caller gets the probe; success closes the circuit."""
    for _ in range(3):
        breakers.record("PV1", False, T0)
    assert breakers.admit("PV1", T0 + 30).decision is Decision.PROBE
    assert breakers.admit("PV1", T0 + 31).decision is Decision.OPEN  # the probe is out
    breakers.record("PV1", True, T0 + 32)
    assert breakers.admit("PV1", T0 + 33).decision is Decision.CLOSED


def test_a_failed_probe_opens_it_again(breakers):
    """A failed probe restarts the cool-down."""
    for _ in range(3):
        breakers.record("PV1", False, T0)
    assert breakers.admit("PV1", T0 + 30).decision is Decision.PROBE
    assert breakers.record("PV1", False, T0 + 31) == "open"
    assert breakers.admit("PV1", T0 + 40).decision is Decision.OPEN
    assert breakers.admit("PV1", T0 + 61).decision is Decision.PROBE


def test_a_lost_probe_is_given_to_another_worker(breakers):
    """A probe whose worker died (no result within its lease) is handed out again."""
    for _ in range(3):
        breakers.record("PV1", False, T0)
    assert breakers.admit("PV1", T0 + 30).decision is Decision.PROBE
    assert breakers.admit("PV1", T0 + 41).decision is Decision.PROBE


def test_breakers_are_per_provider(breakers):
    """One provider's failures do not open another's circuit."""
    for _ in range(3):
        breakers.record("PV1", False, T0)
    assert breakers.admit("PV2", T0).decision is Decision.CLOSED


def test_another_workers_open_breaker_is_seen_within_fresh_seconds(breakers, runtime):
    """Admission is local (no Redis call) for `fresh` seconds after this worker saw the breaker
    closed; a breaker another worker opened meanwhile is honoured once that view is stale."""
    other = CircuitBreakers(runtime.redis, Policy(failures=3, cooldown=30))
    breakers.record("PV1", True, T0)
    for _ in range(3):
        other.record("PV1", False, T0)
    assert breakers.admit("PV1", T0 + 0.5).decision is Decision.CLOSED  # still its fresh view
    assert breakers.admit("PV1", T0 + 1.5).decision is Decision.OPEN


def test_operators_see_and_close_every_country_of_a_provider(breakers):
    """A provider's breakers are listed by name, only those with a history; a reset closes them
    all, another provider's untouched."""
    for _ in range(3):
        breakers.record("PV1:FR", False, T0)
    breakers.record("PV1:US", True, T0)
    breakers.record("PV2:FR", False, T0)
    states = breakers.states("PV1")
    assert sorted(states) == ["PV1:FR", "PV1:US"]
    assert (states["PV1:FR"]["state"], states["PV1:US"].get("state", "closed")) == (
        "open",
        "closed",
    )
    assert breakers.admit("PV1:FR", T0 + 1).decision is Decision.OPEN
    assert breakers.admit("PV1:US", T0 + 1).decision is Decision.CLOSED

    breakers.reset("PV1")
    assert breakers.states("PV1") == {}
    assert breakers.admit("PV1:FR", T0 + 2).decision is Decision.CLOSED
    assert list(breakers.states("PV2")) == ["PV2:FR"]
