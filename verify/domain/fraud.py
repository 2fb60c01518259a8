"""The fraud-rule engine: rules are data (type, parameters, mode, scope, channels, order); each one
looks at the facts of a send and at the counters it asked for, and answers with a decision that
says what it saw and why. Pure: the counters are read by ``verify.abuse``.

Effective rules for a send (``effective``): per type and channel, the service's own rules if it has
any, else the account's, else the built-in defaults (docs/abuse.md lists them); ``rate_limit``
rules the same, per limit key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers

from verify.domain.destinations import CHANNELS, NUMBER_TYPES
from verify.domain.fraud_params import normalize
from verify.domain.ratelimits import PREFIX, Limit, digest, prefix_of
from verify.errors import InvalidParameter

MODES = ("enforce", "monitor")
PHONE_CHANNELS = ("sms", "call", "whatsapp")
TYPES = (
    "rate_limit",
    "geo_permissions",
    "number_type",
    "prefix_velocity",
    "sequential_burst",
    "ip_velocity",
    "conversion_rate",
    "risk_check",
)
DEFAULT_CHANNELS: dict[str, tuple[str, ...]] = {
    "rate_limit": CHANNELS,
    "geo_permissions": ("sms", "call"),
    "risk_check": CHANNELS,
}
# Where a service enables nothing itself, SMS and voice go to these countries only: lower-risk
# destinations for international revenue share fraud. Everything else is default-deny.
DEFAULT_COUNTRIES = (
    "US", "CA", "PR", "GB", "IE", "FR", "DE", "NL", "BE", "LU", "ES", "PT", "IT", "AT", "CH",
    "DK", "SE", "NO", "FI", "IS", "PL", "CZ", "SK", "SI", "HR", "HU", "EE", "LV", "LT", "GR",
    "CY", "MT", "RO", "BG", "AU", "NZ", "JP", "KR", "SG", "HK", "TW", "IL", "MX", "BR", "AR",
    "CL", "CO", "IN", "ZA",
)  # fmt: skip


def number_type(e164: str) -> str:
    try:
        return NUMBER_TYPES.get(phonenumbers.number_type(phonenumbers.parse(e164)), "unknown")
    except phonenumbers.NumberParseException:
        return "unknown"


@dataclass(frozen=True)
class Rule:
    sid: str
    type: str
    params: Mapping[str, Any]
    mode: str = "enforce"
    channels: tuple[str, ...] = ()  # empty: the type's default channels
    priority: int = 100
    enabled: bool = True
    account_sid: str | None = None
    service_sid: str | None = None  # None: every service of the account
    description: str | None = None

    @property
    def watched_channels(self) -> tuple[str, ...]:
        return self.channels or DEFAULT_CHANNELS.get(self.type, PHONE_CHANNELS)

    def scope_sid(self, facts: SendFacts) -> str:
        """Which counters the rule shares: the service's for a service rule, else the account's."""
        return self.service_sid or facts.account_sid

    def as_limit(self) -> Limit:
        p = self.params
        return Limit(
            p["key"], p["max"], p["interval"], self.mode == "enforce", p.get("prefix_digits", 3),
            self.sid,
        )  # fmt: skip


@dataclass(frozen=True)
class SendFacts:
    account_sid: str
    service_sid: str
    destination: str
    kind: str  # phone | email
    country: str | None
    channel: str
    device_ip: str | None
    number_type: str = "unknown"


@dataclass(frozen=True)
class Counter:
    """A Redis counter a rule reads: ``ds`` distinct members in a window, ``cv`` conversion
    buckets, ``bk`` a cool-down key's remaining time."""

    key: str
    kind: str
    p1: int = 0  # window or bucket, ms
    member: str = ""
    p3: int = 0  # cap on members, or number of buckets


@dataclass(frozen=True)
class Cooldown:
    """A prefix or country the conversion-rate guard blocks from now on."""

    scope_sid: str
    dimension: str
    value: str
    seconds: int
    strikes: int
    block_key: str
    conversion_key: str


@dataclass(frozen=True)
class KnownBlock:
    until: datetime
    strikes: int


@dataclass(frozen=True)
class Decision:
    rule: Rule
    action: str  # block | flag | bypass
    reason_code: str
    reason: str
    inputs: dict[str, Any] = field(default_factory=dict)
    error: str = "fraud"  # fraud (60410) | geo (60605) | landline (60205)
    cooldown: Cooldown | None = None

    @property
    def blocks(self) -> bool:
        return self.action == "block" and self.rule.mode == "enforce"


Seen = Mapping[str, tuple[int, int, int]]
Blocks = Mapping[tuple[str, str, str, str], KnownBlock]  # (scope, rule, dimension, value)


def validate(
    type_: str, params: Mapping[str, Any], mode: str, channels: Iterable[str], priority: int
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Check a rule's fields; returns the normalized parameters (defaults filled in) and channels."""
    if type_ not in TYPES:
        raise InvalidParameter("Type", f"must be one of {', '.join(TYPES)}")
    if mode not in MODES:
        raise InvalidParameter("Mode", "must be enforce or monitor")
    chans = tuple(dict.fromkeys(channels))
    if any(c not in CHANNELS for c in chans):
        raise InvalidParameter("Channels", f"a subset of {', '.join(CHANNELS)}")
    if not -1_000_000 <= priority <= 1_000_000:
        raise InvalidParameter("Priority", "must be between -1000000 and 1000000")
    if not isinstance(params, Mapping):
        raise InvalidParameter("Params", "must be a JSON object")
    return normalize(type_, params), chans


def _default(sid: str, type_: str, priority: int, **params: Any) -> Rule:
    return Rule(f"default:{sid}", type_, normalize(type_, params), priority=priority)


DEFAULT_RULES: tuple[Rule, ...] = (
    _default("risk_check", "risk_check", 0),
    _default("geo_permissions", "geo_permissions", 10, allow=list(DEFAULT_COUNTRIES)),
    _default("number_type", "number_type", 20),
    _default("prefix_velocity", "prefix_velocity", 30),
    _default("sequential_burst", "sequential_burst", 40),
    _default("ip_velocity", "ip_velocity", 50),
    _default("conversion_rate:prefix", "conversion_rate", 60),
    _default(
        "conversion_rate:country",
        "conversion_rate",
        61,
        dimension="country",
        min_sample=200,
        min_rate=0.1,
    ),
)


def effective(
    rules: Iterable[Rule], service_sid: str, channel: str, default_limits: Iterable[Limit]
) -> tuple[list[Rule], list[Limit]]:
    """The rules and limits that apply to a send on ``channel`` for a service, in evaluation order.

    Per type and channel the most specific scope wins: a service's rules of a type replace the
    account's for the channels they watch, which replace the built-in defaults (so a service rule
    for SMS alone leaves voice to the account's or default rules).
    """
    watching = [r for r in rules if channel in r.watched_channels]
    service_rules = [r for r in watching if r.service_sid == service_sid]
    account_rules = [r for r in watching if r.service_sid is None]

    def group(r: Rule) -> str:
        return f"rate_limit:{r.params['key']}" if r.type == "rate_limit" else r.type

    defined_service = {group(r) for r in service_rules}
    defined_account = {group(r) for r in account_rules}
    chosen = service_rules + [r for r in account_rules if group(r) not in defined_service]
    defined = defined_service | defined_account
    chosen += [
        r for r in DEFAULT_RULES if group(r) not in defined and channel in r.watched_channels
    ]
    limits = [limit for limit in default_limits if f"rate_limit:{limit.key}" not in defined]
    limits += [r.as_limit() for r in chosen if r.type == "rate_limit" and r.enabled]
    ordered = sorted(
        (r for r in chosen if r.enabled and r.type != "rate_limit"),
        key=lambda r: (r.priority, r.sid),
    )
    return ordered, limits


# -- evaluation -------------------------------------------------------------------------------------


def _key(rule: Rule, facts: SendFacts, kind: str, value: str) -> str:
    return f"{PREFIX}fr:{kind}:{rule.scope_sid(facts)}:{rule.sid}:{value}"


def _dimension_value(rule: Rule, facts: SendFacts) -> str | None:
    if rule.params["dimension"] == "country":
        return facts.country
    return prefix_of(facts.destination, rule.params["prefix_digits"])


def counters(rule: Rule, facts: SendFacts) -> list[Counter]:
    """The Redis counters ``rule`` needs for this send."""
    p, t = rule.params, rule.type
    if facts.kind != "phone":
        return []
    if t == "prefix_velocity":
        # Different numbers, not sends: a person asking twice is the destination limit's business.
        prefix = prefix_of(facts.destination, p["prefix_digits"])
        member = digest(facts.destination)
        return [
            Counter(_key(rule, facts, "pv", prefix), "ds", p["window"] * 1000, member, p["max"] + 1)
        ]
    if t == "sequential_burst":
        block = prefix_of(facts.destination, p["block_digits"])
        member = digest(facts.destination)
        cap = p["max_numbers"] + 1
        return [Counter(_key(rule, facts, "sb", block), "ds", p["window"] * 1000, member, cap)]
    if t == "ip_velocity" and facts.device_ip:
        ip = digest(facts.device_ip)
        window = p["window"] * 1000
        return [
            Counter(_key(rule, facts, "ipd", ip), "ds", window, digest(facts.destination), p["max_destinations"] + 1),
            Counter(_key(rule, facts, "ipc", ip), "ds", window, facts.country or "?", p["max_countries"] + 1),
        ]  # fmt: skip
    if t == "conversion_rate":
        value = _dimension_value(rule, facts)
        if value is None:
            return []
        bucket = p["window"] * 1000 // p["buckets"]
        dim = p["dimension"]
        return [
            Counter(_key(rule, facts, f"cv:{dim}", value), "cv", bucket, "", p["buckets"]),
            Counter(_key(rule, facts, f"bk:{dim}", value), "bk"),
        ]
    return []


def conversion_keys(rule: Rule, facts: SendFacts) -> tuple[str, int, int] | None:
    """Where an approval for this destination is counted: (key, bucket ms, buckets)."""
    value = _dimension_value(rule, facts)
    if value is None:
        return None
    p = rule.params
    return (
        _key(rule, facts, f"cv:{p['dimension']}", value),
        p["window"] * 1000 // p["buckets"],
        p["buckets"],
    )


def evaluate(
    rule: Rule, facts: SendFacts, seen: Seen, blocks: Blocks, now: datetime
) -> Decision | None:
    """What ``rule`` says about this send; None when it has nothing to say."""
    if facts.channel not in rule.watched_channels:
        return None
    handler = _EVALUATORS.get(rule.type)
    return handler(rule, facts, seen, blocks, now) if handler else None


def _geo(rule: Rule, f: SendFacts, seen: Seen, blocks: Blocks, now: datetime) -> Decision | None:
    if f.kind != "phone" or f.country is None:
        return None
    p = rule.params
    action = next((a for a in ("allow", "block", "monitor") if f.country in p[a]), p["default"])
    inputs = {"country": f.country, "channel": f.channel, "permission": action}
    if action == "allow":
        return None
    if action == "monitor":
        reason = f"{f.channel} to {f.country} is watched by the geo permissions"
        return Decision(rule, "flag", "geo_monitored", reason, inputs, "geo")
    reason = f"{f.channel} to {f.country} is not enabled in the geo permissions"
    return Decision(rule, "block", "geo_blocked", reason, inputs, "geo")


def _number_type(
    rule: Rule, f: SendFacts, seen: Seen, blocks: Blocks, now: datetime
) -> Decision | None:
    if f.kind != "phone":
        return None
    p, kind = rule.params, f.number_type
    inputs = {"number_type": kind, "channel": f.channel}
    if kind in p["refuse"] or (kind == "voip" and p["voip"] == "refuse"):
        reason = f"{kind.replace('_', ' ')} numbers do not receive codes"
        return Decision(rule, "block", f"number_type_{kind}", reason, inputs)
    if kind == "fixed_line" and f.channel in p["refuse_landline_for"]:
        reason = f"a landline cannot receive {f.channel}"
        return Decision(rule, "block", "number_type_landline", reason, inputs, "landline")
    if kind == "voip" and p["voip"] == "flag":
        return Decision(rule, "flag", "number_type_voip", "a VoIP number", inputs)
    return None


def _count(seen: Seen, counter: Counter) -> int:
    """A counter's first figure: events, distinct members, or (``bk``) the cool-down left in ms."""
    return seen.get(counter.key, (0, 0, 0))[0]


def _numbers(rule: Rule, f: SendFacts, seen: Seen) -> int | None:
    """Different numbers seen by a rule that keeps one distinct-count; None: nothing counted."""
    found = counters(rule, f)
    return _count(seen, found[0]) if found else None


def _prefix_velocity(
    rule: Rule, f: SendFacts, seen: Seen, blocks: Blocks, now: datetime
) -> Decision | None:
    p, numbers = rule.params, _numbers(rule, f, seen)
    if numbers is None or numbers <= p["max"]:
        return None
    prefix = prefix_of(f.destination, p["prefix_digits"])
    inputs = {"prefix": prefix, "numbers": numbers, "max": p["max"], "window": p["window"]}
    reason = (
        f"{numbers} different numbers in prefix {prefix} within {p['window']}s (at most {p['max']})"
    )
    return Decision(rule, "block", "prefix_velocity", reason, inputs)


def _sequential(
    rule: Rule, f: SendFacts, seen: Seen, blocks: Blocks, now: datetime
) -> Decision | None:
    p, numbers = rule.params, _numbers(rule, f, seen)
    if numbers is None or numbers <= p["max_numbers"]:
        return None
    block = prefix_of(f.destination, p["block_digits"])
    inputs = {"block": block + "x" * p["block_digits"], "numbers": numbers, "window": p["window"]}
    reason = (
        f"{numbers} different numbers in {inputs['block']} within {p['window']}s "
        f"(at most {p['max_numbers']})"
    )
    return Decision(rule, "block", "sequential_burst", reason, inputs)


def _ip_velocity(
    rule: Rule, f: SendFacts, seen: Seen, blocks: Blocks, now: datetime
) -> Decision | None:
    found = counters(rule, f)
    if not found:
        return None
    p = rule.params
    destinations, countries = _count(seen, found[0]), _count(seen, found[1])
    inputs = {"destinations": destinations, "countries": countries, "window": p["window"]}
    if destinations > p["max_destinations"]:
        reason = f"{destinations} destinations from one client IP within {p['window']}s (at most {p['max_destinations']})"
        return Decision(rule, "block", "ip_velocity_destinations", reason, inputs)
    if countries > p["max_countries"]:
        reason = f"{countries} countries from one client IP within {p['window']}s (at most {p['max_countries']})"
        return Decision(rule, "block", "ip_velocity_countries", reason, inputs)
    return None


def _conversion(
    rule: Rule, f: SendFacts, seen: Seen, blocks: Blocks, now: datetime
) -> Decision | None:
    found = counters(rule, f)
    if not found:
        return None
    cv, bk = found
    p, dim = rule.params, rule.params["dimension"]
    value = _dimension_value(rule, f)
    assert value is not None
    scope = rule.scope_sid(f)
    known = blocks.get((scope, rule.sid, dim, value))
    ttl_ms = seen.get(bk.key, (-2, 0, 0))[0]
    if ttl_ms > 0 or (known is not None and known.until > now):
        until = known.until.isoformat() if known and known.until > now else f"in {ttl_ms // 1000}s"
        strikes = known.strikes if known else 1
        inputs = {"dimension": dim, "value": value, "until": until, "strikes": strikes}
        reason = f"{dim} {value} is blocked by the conversion-rate guard (cool-down ends {until})"
        return Decision(rule, "block", f"conversion_{dim}_blocked", reason, inputs)
    sent, _recent, approved = seen.get(cv.key, (0, 0, 0))
    if sent < p["min_sample"] or approved >= p["min_rate"] * sent:
        return None
    # Strikes escalate the cool-down; a value that stayed clean for max_cooldown starts over.
    recent = known is not None and (now - known.until).total_seconds() < p["max_cooldown"]
    strikes = 1 + (known.strikes if known is not None and recent else 0)
    seconds = min(p["cooldown"] * p["escalation"] ** (strikes - 1), p["max_cooldown"])
    rate = approved / sent
    inputs = {
        "dimension": dim, "value": value, "sent": sent, "approved": approved,
        "rate": round(rate, 4), "min_rate": p["min_rate"], "window": p["window"],
        "cooldown": seconds, "strikes": strikes,
    }  # fmt: skip
    reason = (
        f"{approved} of {sent} sends to {dim} {value} approved within {p['window']}s "
        f"({rate:.0%} < {p['min_rate']:.0%}): blocked for {seconds}s (strike {strikes})"
    )
    cooldown = Cooldown(scope, dim, value, seconds, strikes, bk.key, cv.key)
    return Decision(rule, "block", f"conversion_{dim}", reason, inputs, cooldown=cooldown)


_EVALUATORS: dict[str, Callable[[Rule, SendFacts, Seen, Blocks, datetime], Decision | None]] = {
    "geo_permissions": _geo,
    "number_type": _number_type,
    "prefix_velocity": _prefix_velocity,
    "sequential_burst": _sequential,
    "ip_velocity": _ip_velocity,
    "conversion_rate": _conversion,
}


def decide(
    rules: Iterable[Rule], facts: SendFacts, seen: Seen, blocks: Blocks, now: datetime
) -> list[Decision]:
    """Every rule in order; evaluation stops at the first enforced block (monitor-mode blocks are
    recorded and evaluation goes on, so monitor mode sees what enforce mode would have seen)."""
    out = []
    for rule in rules:
        decision = evaluate(rule, facts, seen, blocks, now)
        if decision is None:
            continue
        out.append(decision)
        if decision.blocks:
            break
    return out
