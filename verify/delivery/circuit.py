"""Circuit breakers per provider and destination country, shared by every worker through Redis.

closed ──N consecutive failures, or a failure rate over a window──▶ open
open ──cool-down passed: one worker gets the probe──▶ half_open
half_open ──probe accepted──▶ closed      half_open ──probe failed──▶ open (cool-down again)

Each transition is one Lua script, so concurrent workers never both take the probe or lose a count.
Time comes from the caller (the runtime's clock), so tests drive the cool-down with a FrozenClock.

One Lua call per send: ``record`` answers the state after the call, and a worker that last saw a
breaker ``closed`` less than ``Policy.fresh`` seconds ago admits without asking Redis. A breaker
another worker just opened is therefore seen here at most ``fresh`` seconds late (a few more calls
to a failing provider, each of which records and so learns the state at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

KEY = "verify:circuit:{}"
# Per provider: the names of its breakers (``<provider>``, or ``<provider>:<country>``); and the
# providers that have any. For operators (the console, /metrics).
INDEX = "verify:circuits:{}"
PROVIDERS = "verify:circuits"

# KEYS[1] the breaker; ARGV: now, cool-down, probe lease (seconds).
# Returns {decision, retry_in}: decision is "closed" (send), "probe" (send: this worker's probe) or
# "open" (skip; retry_in seconds until a probe may be taken).
_ALLOW = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'closed' then return {'closed', '0'} end
local now = tonumber(ARGV[1])
local cooldown = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
if state == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at'))
  if now < opened + cooldown then return {'open', tostring(opened + cooldown - now)} end
else -- half_open: one probe at a time, until its lease runs out
  local until_ = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
  if now < until_ then return {'open', tostring(until_ - now)} end
end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', tostring(now + lease))
return {'probe', '0'}
"""

# KEYS[1] the breaker, KEYS[2] its provider's index, KEYS[3] the providers; ARGV: ok (1/0), now,
# failures, rate %, min volume, window, ttl, the breaker's name, its provider. Returns the state
# after recording.
_RECORD = """
local key = KEYS[1]
local ok = ARGV[1] == '1'
local now = tonumber(ARGV[2])
local state = redis.call('HGET', key, 'state') or 'closed'
redis.call('EXPIRE', key, tonumber(ARGV[7]))
redis.call('SADD', KEYS[2], ARGV[8])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[7]))
redis.call('SADD', KEYS[3], ARGV[9])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[7]))
if state == 'half_open' or state == 'open' then
  if ok then
    redis.call('DEL', key)
    return 'closed'
  end
  redis.call('HSET', key, 'state', 'open', 'opened_at', tostring(now), 'probe_until', '0')
  return 'open'
end
local window = tonumber(ARGV[6])
local start = tonumber(redis.call('HGET', key, 'window_start') or '0')
if now >= start + window then
  redis.call('HSET', key, 'window_start', tostring(now), 'total', '0', 'failed', '0')
end
local total = redis.call('HINCRBY', key, 'total', 1)
if ok then
  redis.call('HSET', key, 'consecutive', '0')
  return 'closed'
end
local failed = redis.call('HINCRBY', key, 'failed', 1)
local consecutive = redis.call('HINCRBY', key, 'consecutive', 1)
local by_count = consecutive >= tonumber(ARGV[3])
local by_rate = total >= tonumber(ARGV[5]) and failed * 100 >= tonumber(ARGV[4]) * total
if by_count or by_rate then
  redis.call('HSET', key, 'state', 'open', 'opened_at', tostring(now), 'consecutive', '0',
             'probe_until', '0', 'window_start', '0')
  return 'open'
end
return 'closed'
"""


class Decision(StrEnum):
    CLOSED = "closed"  # send
    PROBE = "probe"  # send: the one trial call after the cool-down
    OPEN = "open"  # skip this provider for now


@dataclass(frozen=True)
class Policy:
    failures: int = 5  # consecutive failures that open the circuit
    failure_rate: int = 50  # ... or this percentage of calls failing within a window
    min_volume: int = 20  # ... once the window holds at least this many calls
    window: int = 60  # seconds
    cooldown: int = 30  # seconds open before a probe
    probe_lease: int = 30  # seconds a probe may take before another worker may probe
    fresh: float = 1.0  # seconds a "closed" seen by this process admits without asking Redis


@dataclass(frozen=True)
class Admission:
    decision: Decision
    retry_in: float = 0.0  # when OPEN: seconds until a probe may be taken

    @property
    def allowed(self) -> bool:
        return self.decision is not Decision.OPEN


class CircuitBreakers:
    """The breakers of every provider. A breaker is named by ``Route.circuit``: the provider's sid
    (or "console"), with ``:<country>`` for messages to a destination country."""

    def __init__(self, client: redis.Redis, policy: Policy) -> None:
        self._redis = client
        self._policy = policy
        self._allow = client.register_script(_ALLOW)
        self._record = client.register_script(_RECORD)
        # provider -> when this process last learnt the breaker was closed (the caller's clock).
        self._closed_at: dict[str, float] = {}

    def admit(self, name: str, now: float) -> Admission:
        p = self._policy
        seen = self._closed_at.get(name)
        if seen is not None and seen <= now < seen + p.fresh:
            return Admission(Decision.CLOSED)
        decision, retry_in = self._allow(
            keys=[KEY.format(name)], args=[repr(now), p.cooldown, p.probe_lease]
        )
        admission = Admission(Decision(_text(decision)), float(_text(retry_in)))
        self._learn(name, admission.decision, now)
        return admission

    def record(self, name: str, ok: bool, now: float) -> str:
        p = self._policy
        ttl = max(p.window, p.cooldown) * 10
        args = [1 if ok else 0, repr(now), p.failures, p.failure_rate, p.min_volume, p.window, ttl]
        provider = _provider(name)
        keys = [KEY.format(name), INDEX.format(provider), PROVIDERS]
        state = _text(self._record(keys=keys, args=[*args, name, provider]))
        self._learn(name, state, now)
        return state

    def _learn(self, name: str, state: str, now: float) -> None:
        if state == Decision.CLOSED:
            self._closed_at[name] = now
        else:
            self._closed_at.pop(name, None)

    def state(self, name: str) -> dict[str, str]:
        """One breaker's raw state (``{}`` = closed with no history)."""
        raw: dict[Any, Any] = self._redis.hgetall(KEY.format(name))
        return {_text(k): _text(v) for k, v in raw.items()}

    def states(self, provider: str | None = None) -> dict[str, dict[str, str]]:
        """Every breaker of ``provider`` (default: of every provider) that has a history, by name,
        for operators."""
        if provider is None:
            providers = map(_text, self._redis.smembers(PROVIDERS))
            names = sorted(name for p in providers for name in self._names(p))
        else:
            names = self._names(provider)
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(KEY.format(name))
        raw = pipe.execute()
        states = {
            n: {_text(k): _text(v) for k, v in r.items()} for n, r in zip(names, raw, strict=True)
        }
        return {n: state for n, state in states.items() if state}

    def reset(self, provider: str) -> None:
        """Close every breaker of ``provider`` (all its destination countries)."""
        names = self._names(provider)
        for name in names:
            self._closed_at.pop(name, None)
        self._redis.delete(*(KEY.format(n) for n in names), INDEX.format(provider))

    def _names(self, provider: str) -> list[str]:
        indexed = self._redis.smembers(INDEX.format(provider))
        return sorted({provider, *map(_text, indexed)})


def _provider(name: str) -> str:
    return name.partition(":")[0]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
