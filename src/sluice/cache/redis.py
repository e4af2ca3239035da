"""The response cache on Redis, shared by every process (chosen when ``SLUICE_REDIS_URL`` is set).

* One round trip per lookup and per store: a Lua script reads the gateway's *generation* and the
  entry under it together. ``invalidate`` gives the gateway a new generation, so every process
  stops finding the old entries at once; they expire by their own TTL.
* A generation is made from Redis's clock (``TIME``), never a counter: if Redis evicts or loses a
  generation key, the next one is still new, so an old entry can never come back.
* Entries are stored with ``SET .. EX ttl``; the total size is Redis's ``maxmemory`` (with an LRU
  eviction policy: docs/scale-out.md#shared-response-cache). An entry larger than
  ``max_entry_bytes`` is not stored, as in the memory cache.
* Redis unreachable: a lookup is a miss and a store is skipped (never a failed request), and for
  ``DOWN_FOR_S`` after a failure Redis is not tried at all, so requests do not each wait on it. An
  invalidation that could not be sent is kept and sent before this process's next lookup or store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from sluice.cache.base import CachedResponse

log = structlog.get_logger("sluice.cache")

DOWN_FOR_S = 1.0
TIMEOUT_S = 0.25  # connect and socket timeout: a dead Redis costs a request at most this, once per DOWN_FOR_S

# KEYS[1] = generation key; ARGV[1] = entry key prefix, ARGV[2] = request part of the key
_LOOKUP = """
local gen = redis.call('GET', KEYS[1])
if not gen then return false end
return redis.call('GET', ARGV[1] .. gen .. ':' .. ARGV[2])
"""
# KEYS[1] = generation key; ARGV[1], ARGV[2] as above; ARGV[3] = value; ARGV[4] = TTL seconds
_STORE = """
local gen = redis.call('GET', KEYS[1])
if not gen then
  local t = redis.call('TIME')
  gen = t[1] .. '.' .. t[2]
  redis.call('SET', KEYS[1], gen)
end
redis.call('SET', ARGV[1] .. gen .. ':' .. ARGV[2], ARGV[3], 'EX', ARGV[4])
return 1
"""
# KEYS[1] = generation key: a fresh generation (TIME is unique and only grows on one Redis)
_INVALIDATE = """
local t = redis.call('TIME')
redis.call('SET', KEYS[1], t[1] .. '.' .. t[2] .. 'i')
return 1
"""


def split_key(key: str) -> tuple[str, str]:
    """(gateway prefix, request part) of a ``cache.keys.cache_key``: the prefix ends at the last '/'."""
    cut = key.rindex("/") + 1
    return key[:cut], key[cut:]


def encode(response: CachedResponse) -> bytes:
    head = orjson.dumps([response.status, response.headers])  # one line: JSON escapes every newline
    return head + b"\n" + response.body


def decode(raw: bytes) -> CachedResponse:
    head, _, body = raw.partition(b"\n")
    status, headers = orjson.loads(head)
    return CachedResponse(int(status), tuple((str(k), str(v)) for k, v in headers), body)


class RedisCache:
    def __init__(self, client: Any, *, namespace: str = "sluice:cache", max_entry_bytes: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client  # redis.asyncio.Redis (decode_responses off)
        self.namespace = namespace
        self.max_entry_bytes = max_entry_bytes
        self.clock = clock
        self._down_until = 0.0
        self._pending: set[str] = set()  # generation keys whose invalidation has not reached Redis yet
        self._lookup = client.register_script(_LOOKUP)
        self._store = client.register_script(_STORE)
        self._invalidate = client.register_script(_INVALIDATE)

    @classmethod
    def from_url(cls, url: str, *, max_entry_bytes: int, key_prefix: str = "sluice:",
                 timeout_s: float = TIMEOUT_S) -> RedisCache:
        """``key_prefix`` is ``SLUICE_REDIS_KEY_PREFIX``: clusters sharing one Redis keep apart."""
        from redis.asyncio import Redis

        client = Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s,
                                retry_on_timeout=False)
        return cls(client, namespace=f"{key_prefix}cache", max_entry_bytes=max_entry_bytes)

    def _keys(self, key: str) -> tuple[str, str, str]:
        gateway, request = split_key(key)
        return f"{self.namespace}:gen:{gateway}", f"{self.namespace}:entry:{gateway}", request

    async def _available(self) -> bool:
        """Redis is worth trying, and every invalidation this process owes it has been sent."""
        if self.clock() < self._down_until:
            return False
        while self._pending:
            generation = next(iter(self._pending))
            try:
                await self._invalidate(keys=[generation], args=[])
            except Exception as exc:  # noqa: BLE001
                self._failed("invalidate", exc)
                return False
            self._pending.discard(generation)
        return True

    def _failed(self, operation: str, exc: Exception) -> None:
        if self.clock() >= self._down_until:  # log once per outage window, not once per request
            log.error("redis cache unavailable; bypassed", operation=operation, error=type(exc).__name__)
        self._down_until = self.clock() + DOWN_FOR_S

    async def get(self, key: str) -> CachedResponse | None:
        if not await self._available():
            return None
        generation, entry, request = self._keys(key)
        try:
            raw = await self._lookup(keys=[generation], args=[entry, request])
        except Exception as exc:  # noqa: BLE001 — any Redis failure is a miss
            self._failed("get", exc)
            return None
        if raw is None:
            return None
        try:
            return decode(raw)
        except (ValueError, TypeError):
            return None  # not an entry we wrote: a miss

    async def set(self, key: str, response: CachedResponse, ttl_s: int) -> None:
        if ttl_s <= 0 or response.size > self.max_entry_bytes or not await self._available():
            return
        generation, entry, request = self._keys(key)
        try:
            await self._store(keys=[generation], args=[entry, request, encode(response), ttl_s])
        except Exception as exc:  # noqa: BLE001 — the response was delivered; only the entry is lost
            self._failed("set", exc)

    async def invalidate(self, prefix: str) -> None:
        """``prefix`` is a ``cache.keys.gateway_prefix``. Never raises (it runs inside a gateway
        delete's transaction): an invalidation Redis did not take is kept and sent again first."""
        generation, _, _ = self._keys(prefix)
        self._pending.add(generation)
        self._down_until = 0.0  # try now, even during an outage window
        await self._available()

    async def close(self) -> None:
        await self.client.aclose()
