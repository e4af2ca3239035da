"""Rate limits shared by every process and instance: one Redis, one atomic script per request.

``admit`` sends all of a request's checks to Redis in one EVALSHA (one round trip; concurrent
requests share round trips, ``batch.py``). The script reads
Redis's own clock (``TIME``), so processes on machines with skewed clocks still agree on window
edges, and decides exactly as ``local.py`` does:

* fixed: a hash ``{w: window start µs, n: count}`` per key and period; the window is
  ``floor(now / period) * period``; expires at the window's end.
* sliding: a sorted set of the allowed requests (score: time µs, member: unique per decision); older
  than the period is removed first; Retry-After is when the oldest one leaves.

A refusal takes back, in the same script, the hits this decision counted for earlier checks.
``undo`` removes exactly this decision's sliding members and decrements a fixed count only while
its window is still the one it counted in: it never takes back another request's hit.

Outages: the first failed call marks Redis down (logged once), and until a background probe gets a
``PING`` answer every request is decided by ``on_error`` without waiting on Redis (``allow``: no
limit is enforced; ``deny``: a request that has a limit is refused with 429). Connect and socket
timeouts are short, so only the requests already waiting when Redis dies wait, at most ``timeout_s``.
Keys: ``<prefix><limit key>:<f|s><period>`` (changing a limit's period or technique starts afresh).
One Redis server (or a primary); Redis Cluster is not supported (the script's keys may span slots).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Sequence
from typing import cast

import redis.asyncio as aioredis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sluice.ratelimit.base import ADMITTED, BackendHealth, Budget, Check, Decision, Hits
from sluice.ratelimit.batch import Packed, ScriptBatcher, command
from sluice.ratelimit.local import retry_after

log = structlog.get_logger("sluice.ratelimit")

US = 1_000_000
PROBE_INTERVAL_S = 0.25  # how often a down Redis is asked again (PING)
ENCODINGS_MAX = 4096  # encoded check lists remembered (emptied when full)

# KEYS[i]: check i's key. ARGV[1]: this decision's unique member; then per check i:
# ARGV[3i-1] limit, ARGV[3i] period (µs), ARGV[3i+1] technique ('f' fixed, 's' sliding).
# Returns "0 marker_1 ... marker_n" when admitted (marker: the fixed window start, or the time of a
# sliding hit), "i wait_µs" when check i refuses: one string (parsed by one split; an array of integers
# cost redis-py's parser a call per element).
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local member = ARGV[1]
local markers = {}
local function take_back(upto)
  for j = 1, upto do
    if ARGV[3 * j + 1] == 's' then
      redis.call('ZREM', KEYS[j], member)
    else
      redis.call('HINCRBY', KEYS[j], 'n', -1)
    end
  end
end
for i = 1, #KEYS do
  local key = KEYS[i]
  local limit = tonumber(ARGV[3 * i - 1])
  local period = tonumber(ARGV[3 * i])
  if ARGV[3 * i + 1] == 's' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now - period))
    local count = redis.call('ZCARD', key)
    if count > limit then  -- the limit was lowered: forget the oldest
      redis.call('ZREMRANGEBYRANK', key, 0, count - limit - 1)
      count = limit
    end
    if count >= limit then
      local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      take_back(i - 1)
      return string.format('%d %.0f', i, math.floor(tonumber(oldest[2]) + period - now))
    end
    redis.call('ZADD', key, string.format('%.0f', now), member)
    redis.call('PEXPIRE', key, string.format('%.0f', math.ceil(period / 1000) + 1000))
    markers[i] = now
  else
    local start = now - (now % period)
    local window = redis.call('HMGET', key, 'w', 'n')
    local count = 0
    if tonumber(window[1]) == start then
      count = tonumber(window[2]) or 0
    end
    if count >= limit then
      take_back(i - 1)
      return string.format('%d %.0f', i, math.floor(start + period - now))
    end
    redis.call('HSET', key, 'w', string.format('%.0f', start), 'n', count + 1)
    redis.call('PEXPIREAT', key, string.format('%.0f', math.ceil((start + period) / 1000) + 1000))
    markers[i] = start
  end
end
local out = {'0'}
for i = 1, #markers do
  out[i + 1] = string.format('%.0f', markers[i])
end
return table.concat(out, ' ')
"""

# KEYS[i]: a counted check's key. ARGV[1]: the decision's member; ARGV[i+1]: 's', or the fixed
# window start it counted in (a later window's count is never touched).
UNDO = """
for i = 1, #KEYS do
  local marker = ARGV[i + 1]
  if marker == 's' then
    redis.call('ZREM', KEYS[i], ARGV[1])
  else
    local window = redis.call('HMGET', KEYS[i], 'w', 'n')
    if window[1] == marker and (tonumber(window[2]) or 0) > 0 then
      redis.call('HINCRBY', KEYS[i], 'n', -1)
    end
  end
end
return 0
"""


# Budgets (base.Budget): a hash {slice index: amount} per key, period and technique; the total is the
# sum of the slices inside the window (one slice for fixed, 60 for sliding: constant work).
# KEYS[1]: the budget's key. ARGV[1]: period µs; ARGV[2]: slices; ARGV[3]: amount to add ('' to read).
BUDGET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[1])
local slices = tonumber(ARGV[2])
local current = math.floor(now * slices / period)
local stored = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #stored, 2 do
  if tonumber(stored[i]) > current - slices then
    total = total + tonumber(stored[i + 1])
  elseif ARGV[3] ~= '' then
    redis.call('HDEL', KEYS[1], stored[i])
  end
end
if ARGV[3] ~= '' then
  redis.call('HINCRBYFLOAT', KEYS[1], string.format('%.0f', current), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.ceil(period / 1000) + 1000))
  total = total + tonumber(ARGV[3])
end
return tostring(total)
"""


def redis_key(prefix: str, check: Check) -> str:
    return f"{prefix}{check.key}:{'s' if check.technique == 'sliding' else 'f'}{check.period_s}"


class RedisRateLimiter:
    def __init__(self, url: str, on_error: str = "allow", timeout_s: float = 0.05,
                 prefix: str = "sluice:rl:") -> None:
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0), health_check_interval=0)  # never retried: the outage policy decides
        self._admit = ScriptBatcher(self._client, ADMIT, timeout_s)
        self._undo = ScriptBatcher(self._client, UNDO, timeout_s)
        self._budget = ScriptBatcher(self._client, BUDGET, timeout_s)
        self._prefix = prefix
        self._members = itertools.count()
        self._process = secrets.token_hex(6)  # makes sliding members unique across processes
        self._state = BackendHealth("redis", on_error)
        self.health: BackendHealth | None = self._state  # the protocol's view of the same object
        self._probe: asyncio.Task[None] | None = None
        self._encodings: dict[int, tuple[Sequence[Check], list[str], Packed]] = {}

    async def start(self) -> None:
        """Redis down at start is an outage like any other: the process starts and serves."""
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            self._down(exc)
        else:
            log.info("rate limits shared through Redis")

    async def admit(self, checks: Sequence[Check]) -> Decision:
        if not checks:
            return ADMITTED
        if not self._state.up:
            return self._without_backend(checks)
        member = f"{self._process}:{next(self._members)}"
        keys, packed = self._encoded(checks)
        try:
            reply = await self._admit(packed.fill(member))
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
            return self._without_backend(checks)
        parts = reply.split()
        refused = int(parts[0])
        if refused:
            return Decision(refused=checks[refused - 1], retry_after=retry_after(int(parts[1]) / US))
        markers = ["s" if check.technique == "sliding" else str(int(marker))
                   for check, marker in zip(checks, parts[1:], strict=True)]
        return Decision(handle=Hits((member, keys, markers)))

    def _encoded(self, checks: Sequence[Check]) -> tuple[list[str], Packed]:
        """The script's keys and its command, encoded but for the member. The data plane hands the same
        checks object for every request of one gateway and key (``proxy/limits.py``): encoded once, looked
        up by identity (the entry holds the checks, so their id is not reused while it is remembered)."""
        found = self._encodings.get(id(checks))
        if found is not None and found[0] is checks:
            return found[1], found[2]
        keys = [redis_key(self._prefix, check) for check in checks]
        limits: list[str | int] = []
        for check in checks:
            limits += (check.limit, check.period_s * US, "s" if check.technique == "sliding" else "f")
        packed = Packed(self._admit.sha, keys, limits)
        if len(self._encodings) >= ENCODINGS_MAX:
            self._encodings.clear()
        self._encodings[id(checks)] = (checks, keys, packed)
        return keys, packed

    async def undo(self, decision: Decision) -> None:
        counted = decision.handle.take() if decision.handle is not None else None
        if counted is None or not self._state.up:
            return
        member, keys, markers = cast(tuple[str, list[str], list[str]], counted)
        try:
            await self._undo(command(("EVALSHA", self._undo.sha, len(keys), *keys, member, *markers)))
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)

    async def spent(self, budget: Budget) -> float:
        """While Redis is down: 0 (``allow``: budgets are not enforced) or infinity (``deny``)."""
        total = await self._budget_call(budget, "")
        if total is None:
            return float("inf") if self._state.on_error == "deny" else 0.0
        return total

    async def spend(self, budget: Budget, amount: float) -> None:
        await self._budget_call(budget, repr(float(amount)))

    async def _budget_call(self, budget: Budget, amount: str) -> float | None:
        if not self._state.up:
            self._state.decided_without_backend += 1
            return None
        key = f"{self._prefix}{budget.key}:c{'s' if budget.technique == 'sliding' else 'f'}{budget.period_s}"
        try:
            reply = await self._budget(command(("EVALSHA", self._budget.sha, 1, key, budget.period_s * US,
                                                budget.slices, amount)))
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
            return None
        return float(reply)

    def _without_backend(self, checks: Sequence[Check]) -> Decision:
        self._state.decided_without_backend += 1
        if self._state.on_error == "deny":
            return Decision(refused=checks[0], retry_after=1.0, unavailable=True)
        return ADMITTED

    def _down(self, exc: BaseException) -> None:
        if not self._state.up:
            return
        self._state.up = False
        self._state.outages += 1
        log.error("rate-limit store unreachable: deciding rate limits by SLUICE_RATE_LIMIT_ON_REDIS_ERROR "
                  "until it answers again", error=type(exc).__name__, on_error=self._state.on_error)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._recover(), name="redis-probe")

    async def _recover(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            try:
                await self._client.ping()
            except (RedisError, OSError, TimeoutError):
                continue
            self._state.up = True
            log.warning("rate-limit store reachable again: rate limits are shared again")
            return

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        await self._client.aclose()
