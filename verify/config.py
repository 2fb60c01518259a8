"""Settings: parsed once, strictly, from ``VERIFY_*`` environment variables into frozen objects.

This is the only module that reads the environment. Everything else receives a ``Settings``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("production", "development", "test")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Argon2Settings:
    """argon2id cost parameters for stored codes (see docs/security.md for how they were chosen)."""

    time_cost: int = 1
    memory_cost_kib: int = 256
    parallelism: int = 1


# A numeric setting that takes 0 to turn its feature off; every other one must be positive.
ZERO_TURNS_OFF = {"zero_turns_off": True}


@dataclass(frozen=True)
class Limits:
    """Numeric limits that are not per-service settings."""

    destination_failure_budget: int = 100
    destination_failure_window: int = 86_400
    idempotency_ttl: int = 86_400
    idempotency_lock_ttl: int = 60
    sweep_interval: int = 30
    redrive_after: int = 30
    dev_outbox_ttl: int = 3_600
    dev_outbox_size: int = 200
    # Delivery (docs/delivery.md): provider call timeout, retries of one provider, circuit breakers.
    provider_timeout: int = 10
    delivery_max_tries: int = 3
    delivery_retry_base: int = 2
    delivery_retry_cap: int = 60
    circuit_failures: int = 5
    circuit_failure_rate: int = 50
    circuit_min_volume: int = 20
    circuit_window: int = 60
    circuit_cooldown: int = 30
    # New sends of one account per 10 seconds that go straight onto the delivery queue; the rest
    # wait in its overflow queue, taken only when the main one is empty (docs/delivery.md). 0: off.
    delivery_fair_share: int = field(default=100, metadata=ZERO_TURNS_OFF)
    # Seconds after which a message a provider accepted without a final receipt is looked up at
    # the provider, and between lookups for an hour while it has none (providers that can:
    # docs/delivery.md); 0 never looks.
    reconcile_after: int = field(default=600, metadata=ZERO_TURNS_OFF)
    # Webhooks (docs/webhooks.md): relay period, tries per delivery, backoff, per-endpoint
    # concurrency, HTTP timeout (seconds).
    relay_interval: int = 1
    webhook_max_attempts: int = 12
    webhook_backoff_base: int = 10
    webhook_backoff_cap: int = 3_600
    webhook_concurrency: int = 4
    webhook_timeout: int = 5
    # Retention (verify/retention.py), in days; 0 keeps everything of that kind.
    # ended deliveries and their attempt logs
    webhook_retention_days: int = field(default=30, metadata=ZERO_TURNS_OFF)
    # published outbox events no delivery refers to
    event_retention_days: int = field(default=90, metadata=ZERO_TURNS_OFF)
    # ended verifications with their attempts and checks
    verification_retention_days: int = field(default=90, metadata=ZERO_TURNS_OFF)
    # Abuse controls (docs/abuse.md): every send of every account, per minute.
    global_sends_per_minute: int = 60_000


@dataclass(frozen=True)
class Settings:
    env: str = "production"
    data_dir: Path = Path("var")
    database_url: str | None = None
    redis_url: str | None = None
    queue_name: str = "verify"
    # Secrets: tuples so that rotation is a matter of prepending a new value.
    code_peppers: tuple[bytes, ...] = ()
    code_keys: tuple[bytes, ...] = ()
    secret_key: bytes = b""
    operator_token: str = ""
    argon2: Argon2Settings = field(default_factory=Argon2Settings)
    limits: Limits = field(default_factory=Limits)
    log_level: str = "INFO"
    # Where providers reach this server (delivery receipts); "" = no status callbacks are requested.
    public_url: str = ""
    # Networks webhooks may reach although the SSRF guard refuses them (docs/webhooks.md).
    webhook_allow_networks: tuple[str, ...] = ()
    # /metrics without the operator token (docs/observability.md).
    metrics_public: bool = False
    # Reverse proxies in front of the web tier: the client address is this many hops from the
    # right of X-Forwarded-For (0: the peer address; docs/abuse.md).
    trusted_proxies: int = 0

    @property
    def is_development(self) -> bool:
        return self.env != "production"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'verify.db').resolve()}"

    @property
    def embedded_redis_path(self) -> Path:
        return (self.data_dir / "redis.db").resolve()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, require_secrets: bool = True
    ) -> Settings:
        """Parse settings from ``environ`` (default ``os.environ``); raise SettingsError on bad input.

        ``require_secrets=False`` is for ``verify dev``, which fills them in from its data directory.
        """
        env = os.environ if environ is None else environ
        known = {f"VERIFY_{name}" for name in _KNOWN}
        unknown = sorted(k for k in env if k.startswith("VERIFY_") and k not in known)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")

        mode = env.get("VERIFY_ENV", "production")
        if mode not in ENVIRONMENTS:
            raise SettingsError(
                f"VERIFY_ENV must be one of {', '.join(ENVIRONMENTS)}, got {mode!r}"
            )

        settings = cls(
            env=mode,
            data_dir=Path(env.get("VERIFY_DATA_DIR", "var")),
            database_url=env.get("VERIFY_DATABASE_URL") or None,
            redis_url=env.get("VERIFY_REDIS_URL") or None,
            queue_name=env.get("VERIFY_QUEUE_NAME", "verify"),
            code_peppers=_secret_list(env, "VERIFY_CODE_PEPPERS"),
            code_keys=_secret_list(env, "VERIFY_CODE_KEYS", exact=32),
            secret_key=_secret(env, "VERIFY_SECRET_KEY"),
            operator_token=env.get("VERIFY_OPERATOR_TOKEN", ""),
            argon2=_parse_group(Argon2Settings, env, "VERIFY_ARGON2_"),
            limits=_parse_group(Limits, env, "VERIFY_"),
            log_level=env.get("VERIFY_LOG_LEVEL", "INFO").upper(),
            public_url=_public_url(env.get("VERIFY_PUBLIC_URL", "")),
            webhook_allow_networks=_networks(env.get("VERIFY_WEBHOOK_ALLOW_NETWORKS", "")),
            metrics_public=_flag(env, "VERIFY_METRICS_PUBLIC"),
            trusted_proxies=_count(env, "VERIFY_TRUSTED_PROXIES"),
        )
        if require_secrets:
            settings.validate()
        return settings

    def validate(self) -> None:
        missing = [
            name
            for name, value in (
                ("VERIFY_CODE_PEPPERS", self.code_peppers),
                ("VERIFY_CODE_KEYS", self.code_keys),
                ("VERIFY_SECRET_KEY", self.secret_key),
                ("VERIFY_OPERATOR_TOKEN", self.operator_token),
            )
            if not value
        ]
        if missing:
            raise SettingsError(
                f"missing secret setting(s): {', '.join(missing)}. "
                "Generate them with `verify secrets` (or run `verify dev`, which keeps its own)."
            )
        if len(self.operator_token) < 24:
            raise SettingsError("VERIFY_OPERATOR_TOKEN must be at least 24 characters")
        if self.argon2.memory_cost_kib < 8 * self.argon2.parallelism:
            raise SettingsError("VERIFY_ARGON2_MEMORY_COST_KIB must be at least 8 x parallelism")

    def with_dev_secrets(self, path: Path) -> Settings:
        """Fill missing secrets from ``path`` (a JSON file), generating and saving them on first use."""
        stored: dict[str, str] = {}
        if path.exists():
            stored = json.loads(path.read_text())
        if not stored:
            stored = generate_secrets()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(stored, indent=2))
            path.chmod(0o600)
        dev = replace(
            self,
            code_peppers=self.code_peppers or (_b64decode(stored["VERIFY_CODE_PEPPERS"]),),
            code_keys=self.code_keys or (_b64decode(stored["VERIFY_CODE_KEYS"]),),
            secret_key=self.secret_key or _b64decode(stored["VERIFY_SECRET_KEY"]),
            operator_token=self.operator_token or stored["VERIFY_OPERATOR_TOKEN"],
        )
        dev.validate()
        return dev

    def as_environ(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process."""
        out = {
            "VERIFY_ENV": self.env,
            "VERIFY_DATA_DIR": str(self.data_dir),
            "VERIFY_QUEUE_NAME": self.queue_name,
            "VERIFY_CODE_PEPPERS": ",".join(_b64encode(p) for p in self.code_peppers),
            "VERIFY_CODE_KEYS": ",".join(_b64encode(k) for k in self.code_keys),
            "VERIFY_SECRET_KEY": _b64encode(self.secret_key),
            "VERIFY_OPERATOR_TOKEN": self.operator_token,
            "VERIFY_LOG_LEVEL": self.log_level,
        }
        if self.database_url:
            out["VERIFY_DATABASE_URL"] = self.database_url
        if self.redis_url:
            out["VERIFY_REDIS_URL"] = self.redis_url
        if self.public_url:
            out["VERIFY_PUBLIC_URL"] = self.public_url
        if self.webhook_allow_networks:
            out["VERIFY_WEBHOOK_ALLOW_NETWORKS"] = ",".join(self.webhook_allow_networks)
        if self.metrics_public:
            out["VERIFY_METRICS_PUBLIC"] = "true"
        if self.trusted_proxies:
            out["VERIFY_TRUSTED_PROXIES"] = str(self.trusted_proxies)
        for group, prefix in ((self.argon2, "VERIFY_ARGON2_"), (self.limits, "VERIFY_")):
            for f in fields(group):
                out[prefix + f.name.upper()] = str(getattr(group, f.name))
        return out


def generate_secrets() -> dict[str, str]:
    """Fresh values for every secret setting, in their environment form."""
    return {
        "VERIFY_CODE_PEPPERS": _b64encode(secrets.token_bytes(32)),
        "VERIFY_CODE_KEYS": _b64encode(secrets.token_bytes(32)),
        "VERIFY_SECRET_KEY": _b64encode(secrets.token_bytes(32)),
        "VERIFY_OPERATOR_TOKEN": secrets.token_urlsafe(32),
    }


_KNOWN = {
    "ENV",
    "DATA_DIR",
    "DATABASE_URL",
    "REDIS_URL",
    "QUEUE_NAME",
    "CODE_PEPPERS",
    "CODE_KEYS",
    "SECRET_KEY",
    "OPERATOR_TOKEN",
    "LOG_LEVEL",
    "PUBLIC_URL",
    "WEBHOOK_ALLOW_NETWORKS",
    "METRICS_PUBLIC",
    "TRUSTED_PROXIES",
    *(f"ARGON2_{f.name.upper()}" for f in fields(Argon2Settings)),
    *(f.name.upper() for f in fields(Limits)),
}


def _parse_group(cls: type[Any], env: Mapping[str, str], prefix: str) -> Any:
    values: dict[str, int] = {}
    for f in fields(cls):
        name = prefix + f.name.upper()
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        least = 0 if f.metadata.get("zero_turns_off") else 1
        if value < least:
            bound = "0 or more" if least == 0 else "positive"
            raise SettingsError(f"{name} must be {bound}, got {value}")
        values[f.name] = value
    return cls(**values)


def _public_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    if url and not url.startswith(("http://", "https://")):
        raise SettingsError(f"VERIFY_PUBLIC_URL must be an http(s) URL, got {raw!r}")
    return url


def _networks(raw: str) -> tuple[str, ...]:
    """Comma-separated CIDR networks, normalized (``127.0.0.1`` -> ``127.0.0.1/32``)."""
    out = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise SettingsError(
                f"VERIFY_WEBHOOK_ALLOW_NETWORKS: {item!r} is not a network (e.g. 10.0.0.0/8)"
            ) from None
    return tuple(out)


def _count(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "").strip() or "0"
    if not raw.isdigit() or int(raw) > 10:
        raise SettingsError(f"{name} must be a whole number from 0 to 10, got {raw!r}")
    return int(raw)


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _secret(env: Mapping[str, str], name: str) -> bytes:
    values = _secret_list(env, name)
    if len(values) > 1:
        raise SettingsError(f"{name} takes one value, not a list")
    return values[0] if values else b""


def _secret_list(env: Mapping[str, str], name: str, exact: int | None = None) -> tuple[bytes, ...]:
    raw = env.get(name, "")
    out = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            value = _b64decode(item)
        except (binascii.Error, ValueError):
            raise SettingsError(f"{name} must be base64url-encoded random bytes") from None
        if exact is not None and len(value) != exact:
            raise SettingsError(f"{name}: each key must be exactly {exact} bytes")
        if len(value) < 32:
            raise SettingsError(f"{name}: each value must be at least 32 random bytes")
        out.append(value)
    return tuple(out)
