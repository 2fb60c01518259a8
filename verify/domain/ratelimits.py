"""Send limits: which counters one send is charged to, their defaults, and the error for each.

Every limit is a GCRA bucket (``max`` sends per ``interval`` seconds, refilled evenly) counted in
Redis by ``verify.abuse.counters``; this module only names the counters and says what exceeding
one means. Tenants replace the defaults of a key with ``rate_limit`` rules (docs/abuse.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from verify.errors import MaxSendAttempts, TooManyConcurrentRequests, TooManyRequests

# The keys a send is counted under, and what a key's counter is shared by.
KEYS = {
    "destination": "service",  # one number (or email address), per service
    "destination_global": "global",  # one number across every account
    "prefix": "account",  # the number without its last N digits
    "country": "account",
    "ip": "account",  # DeviceIp, else the client's address
    "api_key": "credential",  # the API key (or account sid) that authenticated
    "account": "account",
    "service": "service",
    "global": "global",
}
MAX_INTERVAL = 31 * 86_400
PREFIX = "verify:abuse:"


@dataclass(frozen=True)
class Limit:
    """At most ``max`` sends per ``interval`` seconds under ``key``."""

    key: str
    max: int
    interval: int
    enforce: bool = True  # False: counted and reported ("monitor"), never refused
    prefix_digits: int = 3  # for "prefix": how many trailing digits are dropped
    rule_sid: str = "default:rate_limit"

    @property
    def policy(self) -> str:
        return f"{self.max};w={self.interval}"


DEFAULT_LIMITS: tuple[Limit, ...] = (
    Limit("destination", 5, 600),
    Limit("destination", 10, 86_400),
    Limit("destination_global", 20, 3_600),
    Limit("prefix", 20, 3_600),
    Limit("country", 1_000, 3_600),
    Limit("ip", 100, 60),
    Limit("api_key", 1_000, 60),
    Limit("account", 1_000, 60),
    Limit("service", 1_000, 60),
)


@dataclass(frozen=True)
class Charge:
    """One counter a send is charged to."""

    redis_key: str
    limit: Limit
    label: str  # what is counted, for people (never a full number)


@dataclass(frozen=True)
class LimitState:
    """A counter after a send was charged (or refused)."""

    charge: Charge
    allowed: bool
    remaining: int
    retry_after: float  # seconds until one more send fits (0 when allowed)
    reset: float  # seconds until the bucket is full again


@dataclass(frozen=True)
class SendKeys:
    """What a send is counted by."""

    account_sid: str
    service_sid: str
    destination: str
    kind: str  # phone | email
    country: str | None
    client_ip: str | None
    credential_sid: str | None


def digest(value: str) -> str:
    """Counter names carry no number, address or IP in clear."""
    return hashlib.blake2b(value.encode(), digest_size=10).hexdigest()


def prefix_of(number: str, drop: int) -> str:
    """``+447700900123`` without its last ``drop`` digits (never shorter than the country code)."""
    return number[: max(4, len(number) - drop)]


def charges(keys: SendKeys, limits: Iterable[Limit]) -> list[Charge]:
    """The counters of ``limits`` that apply to this send (phone-only keys skip email sends)."""
    out = []
    for limit in limits:
        charge = _charge(keys, limit)
        if charge is not None:
            out.append(charge)
    return out


def _charge(k: SendKeys, limit: Limit) -> Charge | None:
    window = f"{limit.max}/{limit.interval}s"
    key = limit.key
    base = f"{PREFIX}rl:{key}:{limit.interval}:{limit.max}"
    if key == "destination":
        return Charge(
            f"{base}:{k.service_sid}:{digest(k.destination)}", limit, f"destination ({window})"
        )
    if key == "destination_global":
        return Charge(f"{base}:{digest(k.destination)}", limit, f"number, all accounts ({window})")
    if key == "prefix":
        if k.kind != "phone":
            return None
        prefix = prefix_of(k.destination, limit.prefix_digits)
        label = f"prefix {prefix} ({window})"
        return Charge(f"{base}:{limit.prefix_digits}:{k.account_sid}:{prefix}", limit, label)
    if key == "country":
        if k.country is None:
            return None
        return Charge(
            f"{base}:{k.account_sid}:{k.country}", limit, f"country {k.country} ({window})"
        )
    if key == "ip":
        if not k.client_ip:
            return None
        return Charge(
            f"{base}:{k.account_sid}:{digest(k.client_ip)}", limit, f"client IP ({window})"
        )
    if key == "api_key":
        if not k.credential_sid:
            return None
        cred = k.credential_sid
        return Charge(f"{base}:{cred}", limit, f"credential {cred} ({window})")
    if key == "account":
        return Charge(f"{base}:{k.account_sid}", limit, f"account ({window})")
    if key == "service":
        return Charge(f"{base}:{k.service_sid}", limit, f"service ({window})")
    if key == "global":
        return Charge(base, limit, f"all sends ({window})")
    return None


@dataclass(frozen=True)
class Bucket:
    """A tenant-defined bucket (Twilio's RateLimits/Buckets) of one rate limit."""

    rate_limit_sid: str
    unique_name: str
    bucket_sid: str
    max: int
    interval: int


def tenant_charges(
    service_sid: str, buckets: Iterable[Bucket], values: Mapping[str, str]
) -> list[Charge]:
    """Counters for the ``RateLimits`` values of a request (unknown names are checked by the
    caller)."""
    out = []
    for b in buckets:
        value = values.get(b.unique_name)
        if value is None:
            continue
        limit = Limit(f"custom:{b.unique_name}", b.max, b.interval, rule_sid=b.rate_limit_sid)
        key = f"{PREFIX}rl:custom:{service_sid}:{b.bucket_sid}:{digest(value)}"
        out.append(Charge(key, limit, f"{b.unique_name} ({b.max}/{b.interval}s)"))
    return out


def refusal(state: LimitState) -> TooManyRequests:
    """The 429 for a refused send: 60203 for one destination, 60212 for one number across
    accounts, 20429 for any other key."""
    wait = max(1, int(state.retry_after + 0.999))
    limit = state.charge.limit
    detail = (
        f"Too many sends for this {state.charge.label}; try again in {wait}s"
        if limit.key.startswith("custom:")
        else f"Send limit reached: {state.charge.label}; try again in {wait}s"
    )
    extra = {"limit": limit.key, "policy": limit.policy}
    if limit.key == "destination":
        return MaxSendAttempts(detail, retry_after=wait, extra=extra)
    if limit.key == "destination_global":
        return TooManyConcurrentRequests(detail, retry_after=wait, extra=extra)
    return TooManyRequests(detail, retry_after=wait, extra=extra)


def headers(states: Iterable[LimitState]) -> dict[str, str]:
    """RateLimit-Limit/-Remaining/-Reset for the tightest counter, RateLimit-Policy for all."""
    states = [s for s in states if s.charge.limit.enforce]
    if not states:
        return {}
    refused = [s for s in states if not s.allowed]
    if refused:
        tightest = max(refused, key=lambda s: s.retry_after)
        reset = tightest.retry_after
    else:
        tightest = min(states, key=lambda s: (s.remaining, -s.reset))
        reset = tightest.reset
    return {
        "RateLimit-Limit": str(tightest.charge.limit.max),
        "RateLimit-Remaining": str(max(0, tightest.remaining)),
        "RateLimit-Reset": str(max(0, int(reset + 0.999))),
        "RateLimit-Policy": ", ".join(dict.fromkeys(s.charge.limit.policy for s in states)),
    }
