"""Verify services: a tenant's configuration for a family of verifications (code length, TTL, caps,
channels, test numbers)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from verify.domain import sids
from verify.domain.clock import Clock
from verify.domain.codes import MAX_LENGTH, MIN_LENGTH, CodeSealer, is_valid_code
from verify.domain.destinations import CHANNELS, parse_any
from verify.errors import InvalidParameter, NotFound
from verify.models import Service, TestNumber

LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX_TEST_NUMBERS = 50
# The allowed values of the numeric settings, inclusive, by API parameter.
RANGES = {
    "CodeLength": (MIN_LENGTH, MAX_LENGTH),
    "CodeTtl": (30, 86_400),
    "MaxCheckAttempts": (1, 100),
    "MaxSendAttempts": (1, 20),
    "ChannelTimeout": (5, 3_600),
}


@dataclass(frozen=True)
class ServiceFields:
    """Writable fields; ``None`` means "not given" (keep the current value, or the default)."""

    friendly_name: str | None = None
    code_length: int | None = None
    lookup_enabled: bool | None = None
    skip_sms_to_landlines: bool | None = None
    dtmf_input_required: bool | None = None
    tts_name: str | None = None
    psd2_enabled: bool | None = None
    do_not_share_warning_enabled: bool | None = None
    custom_code_enabled: bool | None = None
    manual_approval_enabled: bool | None = None
    code_ttl: int | None = None
    max_check_attempts: int | None = None
    max_send_attempts: int | None = None
    channels: tuple[str, ...] | None = None
    default_locale: str | None = None
    test_numbers: Mapping[str, str] | None = None
    fallback_channels: tuple[str, ...] | None = None  # () clears the list
    channel_timeout: int | None = None


def _check_range(parameter: str, value: int | None) -> None:
    low, high = RANGES[parameter]
    if value is not None and not low <= value <= high:
        raise InvalidParameter(parameter, f"must be between {low} and {high}")


def validate(f: ServiceFields) -> None:
    if f.friendly_name is not None and not 1 <= len(f.friendly_name.strip()) <= 64:
        raise InvalidParameter("FriendlyName", "must be 1-64 characters")
    _check_range("CodeLength", f.code_length)
    _check_range("CodeTtl", f.code_ttl)
    _check_range("MaxCheckAttempts", f.max_check_attempts)
    _check_range("MaxSendAttempts", f.max_send_attempts)
    if f.channels is not None:
        unknown = [c for c in f.channels if c not in CHANNELS]
        if unknown or not f.channels:
            raise InvalidParameter("Channels", f"a non-empty subset of {', '.join(CHANNELS)}")
    if f.fallback_channels is not None:
        unknown = [c for c in f.fallback_channels if c not in CHANNELS]
        if unknown or len(set(f.fallback_channels)) != len(f.fallback_channels):
            raise InvalidParameter(
                "FallbackChannels",
                f"an ordered list of distinct channels from {', '.join(CHANNELS)}",
            )
    _check_range("ChannelTimeout", f.channel_timeout)
    if f.default_locale is not None and not LOCALE.match(f.default_locale):
        raise InvalidParameter("DefaultLocale", "a language tag such as en, es or pt-BR")


class ServiceRegistry:
    def __init__(
        self,
        session: Session,
        clock: Clock,
        sealer: CodeSealer,
        cache: ServiceCache | None = None,
    ) -> None:
        self._session = session
        self._clock = clock
        self._sealer = sealer
        self._cache = cache

    def create(self, account_sid: str, f: ServiceFields) -> Service:
        if not f.friendly_name:
            raise InvalidParameter("FriendlyName", "is required")
        validate(f)
        now = self._clock.now()
        service = Service(
            sid=sids.new_sid(sids.SERVICE),
            account_sid=account_sid,
            code_length=6,
            lookup_enabled=False,
            skip_sms_to_landlines=False,
            dtmf_input_required=True,
            psd2_enabled=False,
            do_not_share_warning_enabled=False,
            custom_code_enabled=False,
            manual_approval_enabled=False,
            code_ttl=600,
            test_numbers=[],
            max_check_attempts=5,
            max_send_attempts=5,
            channels=",".join(CHANNELS),
            date_created=now,
            date_updated=now,
        )
        with self._session.begin():
            self._session.add(service)
            self._apply(service, f)
        return service

    def get(self, account_sid: str, sid: str) -> Service:
        with self._session.begin():
            return self._get(account_sid, sid)

    def _get(self, account_sid: str, sid: str) -> Service:
        service = self._session.get(Service, sid, options=[selectinload(Service.test_numbers)])
        if service is None or service.account_sid != account_sid:
            raise NotFound(f"The requested resource /Services/{sid} was not found")
        return service

    def page(self, account_sid: str, offset: int, limit: int) -> list[Service]:
        with self._session.begin():
            query = (
                select(Service)
                .options(selectinload(Service.test_numbers))
                .where(Service.account_sid == account_sid)
                .order_by(Service.date_created, Service.sid)
                .offset(offset)
                .limit(limit)
            )
            return list(self._session.scalars(query))

    def update(self, account_sid: str, sid: str, f: ServiceFields) -> Service:
        validate(f)
        with self._session.begin():
            service = self._get(account_sid, sid)
            self._apply(service, f)
            service.date_updated = self._clock.now()
        self._forget(sid)
        return service

    def delete(self, account_sid: str, sid: str) -> None:
        with self._session.begin():
            self._session.delete(self._get(account_sid, sid))
        self._forget(sid)

    def _forget(self, sid: str) -> None:
        if self._cache is not None:
            self._cache.forget(sid)

    def _apply(self, service: Service, f: ServiceFields) -> None:
        for field in fields(ServiceFields):
            value = getattr(f, field.name)
            if value is None or field.name == "test_numbers":
                continue
            if field.name in ("channels", "fallback_channels"):
                value = ",".join(dict.fromkeys(value))
            elif field.name == "friendly_name":
                value = value.strip()
            setattr(service, field.name, value)
        if f.test_numbers is not None:
            rows = self._test_numbers(service.sid, f.test_numbers)
            # Delete the old rows first: the unit of work would insert before deleting, and the
            # same destination may be listed again.
            service.test_numbers.clear()
            self._session.flush()
            service.test_numbers.extend(rows)

    def _test_numbers(self, service_sid: str, numbers: Mapping[str, str]) -> list[TestNumber]:
        if len(numbers) > MAX_TEST_NUMBERS:
            raise InvalidParameter("TestNumbers", f"at most {MAX_TEST_NUMBERS} entries")
        rows = []
        for raw, code in numbers.items():
            destination = parse_any(raw, "TestNumbers").value
            if not is_valid_code(code):
                raise InvalidParameter("TestNumbers", f"the code for {raw} must be 4-10 digits")
            sealed = self._sealer.seal(test_number_aad(service_sid, destination), code)
            rows.append(TestNumber(destination=destination, sealed_code=sealed))
        if len({row.destination for row in rows}) != len(rows):
            raise InvalidParameter("TestNumbers", "a destination is listed twice")
        return rows


def test_number_aad(service_sid: str, destination: str) -> str:
    """What a test number's sealed code is bound to."""
    return f"{service_sid}:{destination}"


@dataclass(frozen=True)
class ServiceConfig:
    """What starting and checking a verification needs of a service: a snapshot, cheap to keep."""

    sid: str
    account_sid: str
    friendly_name: str
    code_length: int
    code_ttl: int
    max_check_attempts: int
    max_send_attempts: int
    channels: frozenset[str]
    custom_code_enabled: bool
    manual_approval_enabled: bool
    test_numbers: Mapping[str, bytes]  # destination -> sealed code


class ServiceCache:
    """Service snapshots read in the last few seconds, shared by the threads of one process.

    A change made through this process is seen at once (``forget``); other processes see it within
    ``ttl`` seconds, like revoked credentials (``CredentialCache``).
    """

    def __init__(self, ttl: float = 5.0, size: int = 4096) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: dict[str, tuple[float, ServiceConfig]] = {}

    def load(self, session: Session, sid: str) -> ServiceConfig | None:
        now = time.monotonic()
        hit = self._entries.get(sid)
        if hit is not None and hit[0] > now:
            return hit[1]
        config = _read_config(session, sid)
        if config is not None:
            if len(self._entries) >= self._size:
                self._entries.clear()
            self._entries[sid] = (now + self._ttl, config)
        return config

    def forget(self, sid: str) -> None:
        self._entries.pop(sid, None)


def _read_config(session: Session, sid: str) -> ServiceConfig | None:
    services = Service.__table__.c
    row = session.execute(select(Service.__table__).where(services.sid == sid)).first()
    if row is None:
        return None
    numbers = TestNumber.__table__.c
    tests = session.execute(
        select(numbers.destination, numbers.sealed_code).where(numbers.service_sid == sid)
    )
    return ServiceConfig(
        sid=row.sid,
        account_sid=row.account_sid,
        friendly_name=row.friendly_name,
        code_length=row.code_length,
        code_ttl=row.code_ttl,
        max_check_attempts=row.max_check_attempts,
        max_send_attempts=row.max_send_attempts,
        channels=frozenset(row.channels.split(",")),
        custom_code_enabled=row.custom_code_enabled,
        manual_approval_enabled=row.manual_approval_enabled,
        test_numbers={destination: sealed for destination, sealed in tests},
    )
