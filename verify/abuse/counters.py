"""Redis side of the abuse controls: every limit and every rule counter of one send in one Lua call.

Limits are GCRA buckets (one key holding the theoretical arrival time, in ms). The script refuses a
send when any enforced limit is exhausted and then writes nothing, so a refused send costs no
allowance anywhere. Rule counters are sliding windows (sorted sets) and conversion buckets
(hashes). ``dry`` evaluates the same without writing anything (the dry-run endpoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from verify.domain.fraud import Counter
from verify.domain.ratelimits import Charge, LimitState

# The arguments arrive as one string, fields separated by SEP (redis-py packs each argument of a
# command separately, in Python: one packed field instead of about sixty).
SEP = "\x1f"
_SCRIPT = """
local packed = ARGV[1]
local ARGV = {}
local from = 1
while true do
  local at = string.find(packed, '\\31', from, true)
  if not at then
    ARGV[#ARGV + 1] = string.sub(packed, from)
    break
  end
  ARGV[#ARGV + 1] = string.sub(packed, from, at - 1)
  from = at + 1
end
local now = tonumber(ARGV[1])
-- ARGV[2]: 0 counts this send, 1 evaluates it without writing (dry run), 2 only reads (a send
-- that was counted already, screened again by a worker)
local dry = ARGV[2] ~= '0'
local hypothetical = ARGV[2] == '1'
local nl = tonumber(ARGV[3])
local nc = tonumber(ARGV[4])
local out = {0}
local a = 5
local denied = false
local writes = {}
for i = 1, nl do
  local interval = tonumber(ARGV[a])
  local max = tonumber(ARGV[a + 1])
  local enforce = ARGV[a + 2] == '1'
  a = a + 3
  local t = interval / max
  local tat = now
  local stored = redis.call('GET', KEYS[i])
  if stored then tat = math.max(now, tonumber(stored)) end
  local new_tat = tat + t
  local allow_at = new_tat - interval
  if now >= allow_at then
    writes[#writes + 1] = {KEYS[i], new_tat}
    out[#out + 1] = 1
    out[#out + 1] = math.floor((now - allow_at) / t)
    out[#out + 1] = 0
    out[#out + 1] = math.ceil(new_tat - now)
  else
    if enforce then denied = true end
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = math.ceil(allow_at - now)
    out[#out + 1] = math.ceil(tat - now)
  end
end
if denied then
  out[1] = 1
  return out
end
if not dry then
  for _, w in ipairs(writes) do
    redis.call('SET', w[1], string.format('%.3f', w[2]), 'PX', math.max(1, math.ceil(w[2] - now)))
  end
end
for j = 1, nc do
  local k = KEYS[nl + j]
  local kind = ARGV[a]
  local p1 = tonumber(ARGV[a + 1])
  local p2 = ARGV[a + 2]
  local p3 = tonumber(ARGV[a + 3])
  a = a + 4
  if kind == 'ds' then
    local n
    if dry then
      n = redis.call('ZCOUNT', k, now - p1 + 1, '+inf')
      if hypothetical and not redis.call('ZSCORE', k, p2) then n = n + 1 end
    else
      redis.call('ZREMRANGEBYSCORE', k, '-inf', now - p1)
      redis.call('ZADD', k, now, p2)
      n = redis.call('ZCARD', k)
      if n > p3 then redis.call('ZREMRANGEBYRANK', k, 0, n - p3 - 1) end
      redis.call('PEXPIRE', k, p1)
    end
    out[#out + 1] = n
    out[#out + 1] = 0
    out[#out + 1] = 0
  elseif kind == 'cv' then
    local cur = math.floor(now / p1)
    if not dry then
      redis.call('HINCRBY', k, 's:' .. cur, 1)
      redis.call('PEXPIRE', k, p1 * (p3 + 1))
    end
    local all = redis.call('HGETALL', k)
    local sent, recent, approved = 0, 0, 0
    for x = 1, #all, 2 do
      local f = all[x]
      local b = tonumber(string.sub(f, 3))
      local v = tonumber(all[x + 1])
      if b <= cur - p3 then
        if not dry then redis.call('HDEL', k, f) end
      elseif string.sub(f, 1, 1) == 's' then
        if b == cur then recent = recent + v else sent = sent + v end
      else
        approved = approved + v
      end
    end
    if hypothetical then recent = recent + 1 end
    out[#out + 1] = sent
    out[#out + 1] = recent
    out[#out + 1] = approved
  else
    -- a cool-down: the key holds when it ends (ms), so it follows the caller's clock
    local ends = tonumber(redis.call('GET', k) or '-2')
    if ends > now then out[#out + 1] = ends - now else out[#out + 1] = -2 end
    out[#out + 1] = 0
    out[#out + 1] = 0
  end
end
return out
"""

# Give back one send's allowance (its share of the interval) to GCRA buckets.
_REFUND = """
for i, k in ipairs(KEYS) do
  local stored = redis.call('GET', k)
  local ttl = redis.call('PTTL', k)
  if stored and ttl > 0 then
    redis.call('SET', k, string.format('%.3f', tonumber(stored) - tonumber(ARGV[i])), 'PX', ttl)
  end
end
return 0
"""
VERSION_KEY = "verify:abuse:version"


@dataclass(frozen=True)
class Observed:
    """What the script saw: the limit states, and one triple per rule counter."""

    refused: bool
    limits: list[LimitState]
    counters: dict[str, tuple[int, int, int]]


class Counters:
    """The one script call per send, plus the few writes around it."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._script = client.register_script(_SCRIPT)
        self._refund = client.register_script(_REFUND)

    def observe(
        self,
        now_ms: int,
        charges: Sequence[Charge],
        counters: Sequence[Counter],
        *,
        dry: bool = False,
        peek: bool = False,
    ) -> Observed:
        """Charge the limits and count the send in every rule counter, or with ``dry`` evaluate it
        without writing, or with ``peek`` read the counters as they are (limits are not read)."""
        keys: list[str] = [c.redis_key for c in charges] + [c.key for c in counters]
        mode = 2 if peek else 1 if dry else 0
        args: list[str | int | float] = [now_ms, mode, len(charges), len(counters)]
        for c in charges:
            args += [c.limit.interval * 1000, c.limit.max, 1 if c.limit.enforce else 0]
        for counter in counters:
            args += [counter.kind, counter.p1, counter.member, counter.p3]
        packed = SEP.join(str(arg) for arg in args)
        raw = self._script(keys=keys, args=[packed]) if keys else [0]
        values = [int(v) for v in raw]
        limits = []
        pos = 1
        for c in charges:
            allowed, remaining, retry_ms, reset_ms = values[pos : pos + 4]
            pos += 4
            limits.append(
                LimitState(c, bool(allowed), remaining, retry_ms / 1000, max(0, reset_ms) / 1000)
            )
        seen: dict[str, tuple[int, int, int]] = {}
        if not values[0]:
            for counter in counters:
                x, y, z = values[pos : pos + 3]
                pos += 3
                seen[counter.key] = (x, y, z)
        return Observed(bool(values[0]), limits, seen)

    def block(self, key: str, now_ms: int, seconds: int, conversion_key: str) -> None:
        """Start a cool-down, and forget the window that caused it (a fresh sample is needed)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(key, now_ms + seconds * 1000, px=seconds * 1000)
        pipe.delete(conversion_key)
        pipe.execute()

    def uncount(
        self, charges: Sequence[Charge], conversion: Sequence[tuple[str, int]], now_ms: int
    ) -> None:
        """A blocked send cost nothing and reached no one: give its allowance back to ``charges``
        and take it out of the conversion statistics (one round trip)."""
        pipe = self._redis.pipeline(transaction=False)
        if charges:
            self._refund(
                keys=[c.redis_key for c in charges],
                args=[c.limit.interval * 1000 / c.limit.max for c in charges],
                client=pipe,
            )
        for key, bucket_ms in conversion:
            pipe.hincrby(key, f"s:{now_ms // bucket_ms}", -1)
        pipe.execute()

    def count_approved(self, keys: Sequence[tuple[str, int, int]], now_ms: int) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key, bucket_ms, buckets in keys:
            pipe.hincrby(key, f"a:{now_ms // bucket_ms}", 1)
            pipe.pexpire(key, bucket_ms * (buckets + 1))
        pipe.execute()

    def version(self) -> str:
        value = self._redis.get(VERSION_KEY)
        return value.decode() if isinstance(value, bytes) else "0"

    def bump_version(self) -> None:
        self._redis.incr(VERSION_KEY)
