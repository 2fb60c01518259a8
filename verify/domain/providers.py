"""An account's providers as data: create, read, update, delete, and load from / export to a file.

Credentials are write-only: sealed at rest with the code key (AES-GCM, bound to the provider's sid)
and never returned; a provider shows which credential keys are set. Every write is validated with
the adapter registry (verify/delivery/providers), and a problem names the field (60200).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from verify.delivery import providers as registry
from verify.domain import sids
from verify.domain.clock import Clock
from verify.domain.codes import CodeSealer
from verify.domain.destinations import CHANNELS
from verify.errors import InvalidParameter, NotFound
from verify.events.ssrf import Network
from verify.models.delivery import Provider

PREFIX = "PV"
COUNTRY = re.compile(r"^[A-Z]{2}$")
MAX_PROVIDERS = 100


@dataclass(frozen=True)
class ProviderFields:
    """Writable fields; ``None`` means "not given" (keep the current value, or the default)."""

    type: str | None = None
    friendly_name: str | None = None
    channels: tuple[str, ...] | None = None
    countries: tuple[str, ...] | None = None
    priority: int | None = None
    enabled: bool | None = None
    config: Mapping[str, Any] | None = None
    credentials: Mapping[str, str] | None = None


def credentials_aad(sid: str) -> str:
    """What a provider's sealed credentials are bound to: its sid."""
    return sid


def open_credentials(sealer: CodeSealer, sid: str, sealed: bytes) -> dict[str, str]:
    if not sealed:
        return {}
    values: dict[str, str] = json.loads(sealer.open(credentials_aad(sid), sealed))
    return values


class ProviderRegistry:
    def __init__(
        self,
        session: Session,
        clock: Clock,
        sealer: CodeSealer,
        *,
        allow: Sequence[Network] = (),
    ) -> None:
        # ``allow``: the operator's SSRF allowlist (VERIFY_WEBHOOK_ALLOW_NETWORKS) for provider URLs.
        self._allow = tuple(allow)
        self._session = session
        self._clock = clock
        self._sealer = sealer

    def create(self, account_sid: str, f: ProviderFields) -> Provider:
        if not f.type:
            raise InvalidParameter("Type", "is required")
        if not f.friendly_name:
            raise InvalidParameter("FriendlyName", "is required")
        now = self._clock.now()
        provider = _blank(account_sid, f.type, now)
        with self._session.begin():
            count = len(
                self._session.scalars(
                    select(Provider.sid).where(Provider.account_sid == account_sid)
                ).all()
            )
            if count >= MAX_PROVIDERS:
                raise InvalidParameter("Type", f"an account has at most {MAX_PROVIDERS} providers")
            self._apply(provider, f, {})
            self._session.add(provider)
        return provider

    def get(self, account_sid: str, sid: str) -> Provider:
        with self._session.begin():
            return self._get(account_sid, sid)

    def page(self, account_sid: str, offset: int, limit: int) -> list[Provider]:
        with self._session.begin():
            return list(
                self._session.scalars(
                    select(Provider)
                    .where(Provider.account_sid == account_sid)
                    .order_by(Provider.priority, Provider.date_created, Provider.sid)
                    .offset(offset)
                    .limit(limit)
                )
            )

    def update(self, account_sid: str, sid: str, f: ProviderFields) -> Provider:
        with self._session.begin():
            provider = self._get(account_sid, sid)
            current = open_credentials(self._sealer, provider.sid, provider.sealed_credentials)
            self._apply(provider, f, current)
            provider.date_updated = self._clock.now()
        return provider

    def delete(self, account_sid: str, sid: str) -> None:
        with self._session.begin():
            self._session.delete(self._get(account_sid, sid))

    def load(
        self, account_sid: str, entries: list[Mapping[str, Any]], *, prune: bool = False
    ) -> dict[str, list[str]]:
        """Create or update (by friendly name) every provider in ``entries``, in one transaction;
        with ``prune``, delete the account's providers the file does not name."""
        fields = [from_document(entry, i) for i, entry in enumerate(entries)]
        names = [f.friendly_name for f in fields]
        if len(set(names)) != len(names):
            raise InvalidParameter("friendly_name", "each provider in the file needs its own name")
        out: dict[str, list[str]] = {"created": [], "updated": [], "deleted": []}
        now = self._clock.now()
        with self._session.begin():
            existing = {
                p.friendly_name: p
                for p in self._session.scalars(
                    select(Provider).where(Provider.account_sid == account_sid)
                )
            }
            for f in fields:
                assert f.friendly_name is not None
                provider = existing.pop(f.friendly_name, None)
                if provider is None:
                    if not f.type:
                        raise InvalidParameter("type", f"is required ({f.friendly_name})")
                    provider = _blank(account_sid, f.type, now)
                    self._apply(provider, f, {})
                    self._session.add(provider)
                    out["created"].append(provider.sid)
                else:
                    current = open_credentials(
                        self._sealer, provider.sid, provider.sealed_credentials
                    )
                    self._apply(provider, f, current)
                    provider.date_updated = now
                    out["updated"].append(provider.sid)
            if prune:
                for provider in existing.values():
                    self._session.delete(provider)
                    out["deleted"].append(provider.sid)
        return out

    def export(self, account_sid: str) -> list[dict[str, Any]]:
        """Every provider of the account as a document ``load`` takes back (without credentials)."""
        return [to_document(p) for p in self.page(account_sid, 0, MAX_PROVIDERS)]

    def _get(self, account_sid: str, sid: str) -> Provider:
        provider = self._session.get(Provider, sid)
        if provider is None or provider.account_sid != account_sid:
            raise NotFound(f"The requested resource /Providers/{sid} was not found")
        return provider

    def _apply(self, provider: Provider, f: ProviderFields, credentials: dict[str, str]) -> None:
        if f.type is not None and f.type != provider.type:
            raise InvalidParameter("Type", "cannot be changed: create another provider")
        spec = registry.PROVIDER_TYPES.get(provider.type)
        if spec is None:
            known = ", ".join(sorted(registry.PROVIDER_TYPES))
            raise InvalidParameter("Type", f"must be one of {known}")
        if f.friendly_name is not None:
            name = f.friendly_name.strip()
            if not 1 <= len(name) <= 64:
                raise InvalidParameter("FriendlyName", "must be 1-64 characters")
            provider.friendly_name = name
        supported = tuple(c for c in CHANNELS if c in spec.channels)
        channels = f.channels if f.channels is not None else None
        if channels is None and not provider.channels:
            channels = supported  # a new provider without Channels: everything it can carry
        if channels is not None:
            unknown = [c for c in channels if c not in CHANNELS or c not in supported]
            if unknown or not channels:
                raise InvalidParameter(
                    "Channels", f"a non-empty subset of {', '.join(supported)} for {provider.type}"
                )
            provider.channels = ",".join(dict.fromkeys(channels))
        if f.countries is not None:
            countries = [c.strip().upper() for c in f.countries if c.strip()]
            bad = [c for c in countries if not COUNTRY.match(c)]
            if bad:
                raise InvalidParameter("Countries", "ISO 3166 alpha-2 codes such as US or FR")
            provider.countries = ",".join(dict.fromkeys(countries))
            if len(provider.countries) > 1024:
                raise InvalidParameter("Countries", "too many countries")
        if f.priority is not None:
            if not 0 <= f.priority <= 1000:
                raise InvalidParameter("Priority", "must be between 0 and 1000")
            provider.priority = f.priority
        if f.enabled is not None:
            provider.enabled = f.enabled
        config = dict(f.config) if f.config is not None else dict(provider.config)
        if f.credentials is not None:
            credentials = {k: v for k, v in f.credentials.items() if v != ""}
        problems = registry.validate_config(
            provider.type,
            config,
            credentials,
            channels=provider.channels.split(","),
            allow=self._allow,
        )
        if problems:
            named = {_parameter(name): [text] for name, text in problems}
            field, problem = problems[0]
            raise InvalidParameter(_parameter(field), problem, extra={"errors": named})
        provider.config = config
        if f.credentials is not None:
            provider.sealed_credentials = (
                self._sealer.seal(credentials_aad(provider.sid), json.dumps(credentials))
                if credentials
                else b""
            )
            provider.credential_keys = ",".join(sorted(credentials))


def _parameter(field: str) -> str:
    """The registry's field name as the API's parameter: config.url -> Config.url."""
    section, dot, rest = field.partition(".")
    return section[:1].upper() + section[1:] + dot + rest


def from_document(entry: Mapping[str, Any], index: int = 0) -> ProviderFields:
    """A provider as written in providers.yaml (snake_case keys)."""
    if not isinstance(entry, Mapping):
        raise InvalidParameter(f"providers[{index}]", "must be a mapping")
    known = {
        "type",
        "friendly_name",
        "channels",
        "countries",
        "priority",
        "enabled",
        "config",
        "credentials",
        "sid",
        "credentials_set",
    }
    unknown = sorted(set(entry) - known)
    if unknown:
        raise InvalidParameter(f"providers[{index}].{unknown[0]}", "is not a provider setting")
    name = entry.get("friendly_name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter(f"providers[{index}].friendly_name", "is required")

    def strings(key: str) -> tuple[str, ...] | None:
        value = entry.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidParameter(f"{name}.{key}", "must be a list of strings")
        return tuple(v.strip() for v in value if v.strip())

    def mapping(key: str) -> dict[str, Any] | None:
        value = entry.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise InvalidParameter(f"{name}.{key}", "must be a mapping")
        return dict(value)

    credentials = mapping("credentials")
    if credentials is not None and not all(isinstance(v, str) for v in credentials.values()):
        raise InvalidParameter(f"{name}.credentials", "values must be strings")
    priority = entry.get("priority")
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
        raise InvalidParameter(f"{name}.priority", "must be an integer")
    enabled = entry.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise InvalidParameter(f"{name}.enabled", "must be true or false")
    return ProviderFields(
        type=entry.get("type"),
        friendly_name=name.strip(),
        channels=strings("channels"),
        countries=strings("countries"),
        priority=priority,
        enabled=enabled,
        config=mapping("config"),
        credentials=credentials,
    )


def to_document(p: Provider) -> dict[str, Any]:
    return {
        "sid": p.sid,
        "friendly_name": p.friendly_name,
        "type": p.type,
        "channels": [c for c in p.channels.split(",") if c],
        "countries": [c for c in p.countries.split(",") if c],
        "priority": p.priority,
        "enabled": p.enabled,
        "config": dict(p.config),
        "credentials_set": [k for k in p.credential_keys.split(",") if k],
    }


def _blank(account_sid: str, type_: str, now: datetime) -> Provider:
    """A new provider row with its defaults, before the given fields are applied."""
    return Provider(
        sid=sids.new_sid(PREFIX),
        account_sid=account_sid,
        type=type_,
        friendly_name="",
        channels="",
        countries="",
        priority=10,
        enabled=True,
        config={},
        sealed_credentials=b"",
        credential_keys="",
        date_created=now,
        date_updated=now,
    )
