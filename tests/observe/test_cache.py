"""Response cache: keys never cross gateways/accounts, TTL rules, LRU bounded by bytes."""

from __future__ import annotations

import pytest

from sluice.cache.base import CachedResponse
from sluice.cache.keys import cache_key, gateway_prefix
from sluice.cache.memory import MemoryCache
from sluice.cache.rules import (
    DEFAULT_CUSTOM_KEY_TTL,
    MAX_TTL,
    MIN_TTL,
    cacheable_request,
    cacheable_response,
    effective_ttl,
    skip_cache,
    storable_headers,
)

BASE = ("a" * 32, "gw", "openai", "POST", "chat/completions", "", b'{"model":"m"}')


def test_key_depends_on_every_part() -> None:
    key = cache_key(*BASE)
    for index, other in enumerate(("b" * 32, "gw2", "groq", "GET", "embeddings", "x=1", b'{"model":"n"}')):
        changed = list(BASE)
        changed[index] = other
        assert cache_key(*changed) != key, f"part {index} is ignored"
    assert cache_key(*BASE) == key and cache_key(*BASE[:3], "post", *BASE[4:]) == key


def test_custom_key_replaces_the_request_but_not_the_scope() -> None:
    one = cache_key(*BASE, custom_key="k")
    assert one == cache_key("a" * 32, "gw", "groq", "GET", "other", "q", b"other", custom_key="k")
    assert one != cache_key("a" * 32, "gw2", *BASE[2:], custom_key="k")
    assert one != cache_key("b" * 32, "gw", *BASE[2:], custom_key="k")
    assert one.startswith(gateway_prefix("a" * 32, "gw")) and one != cache_key(*BASE)


@pytest.mark.parametrize(("gateway_ttl", "headers", "expected"), [
    (None, {}, None),
    (0, {}, None),
    (300, {}, 300),
    (10, {}, MIN_TTL),
    (10**9, {}, MAX_TTL),
    (300, {"cf-aig-cache-ttl": "120"}, 120),
    (None, {"cf-aig-cache-ttl": "120"}, 120),
    (300, {"cf-aig-cache-ttl": "5"}, MIN_TTL),
    (300, {"cf-aig-cache-ttl": str(MAX_TTL + 1)}, MAX_TTL),
    (300, {"cf-aig-cache-ttl": "0"}, None),
    (300, {"cf-aig-cache-ttl": "soon"}, 300),
    (300, {"cf-cache-ttl": "90"}, 90),
    (None, {"cf-aig-cache-key": "k"}, DEFAULT_CUSTOM_KEY_TTL),
])
def test_effective_ttl(gateway_ttl: int | None, headers: dict[str, str], expected: int | None) -> None:
    assert effective_ttl(gateway_ttl, headers) == expected


def test_skip_and_cacheability_rules() -> None:
    assert skip_cache({"cf-aig-skip-cache": "true"}) and skip_cache({"cf-skip-cache": "1"})
    assert not skip_cache({"cf-aig-skip-cache": "false"}) and not skip_cache({})
    assert cacheable_response(200) and cacheable_response(204)
    assert not cacheable_response(404) and not cacheable_response(500) and not cacheable_response(304)
    assert not cacheable_response(200, complete=False)  # a stream cut short
    assert cacheable_request("POST", 100) and not cacheable_request("DELETE", 0)
    assert not cacheable_request("POST", 26 * 1024 * 1024)
    headers = [("Content-Type", "application/json"), ("Date", "x"), ("cf-aig-log-id", "y"),
               ("Set-Cookie", "s"), ("x-request-id", "r")]
    assert storable_headers(headers) == (("Content-Type", "application/json"), ("x-request-id", "r"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def response(size: int) -> CachedResponse:
    return CachedResponse(200, (), b"x" * size)


async def test_memory_cache_expires_entries() -> None:
    clock = Clock()
    cache = MemoryCache(10_000, clock=clock)
    await cache.set("k", response(10), 60)
    assert (await cache.get("k")).body == b"x" * 10  # type: ignore[union-attr]
    clock.now += 60
    assert await cache.get("k") is None and cache.bytes == 0


async def test_memory_cache_evicts_least_recently_used_within_bytes() -> None:
    entry = response(100).size
    cache = MemoryCache(entry * 2, clock=Clock())
    await cache.set("a", response(100), 60)
    await cache.set("b", response(100), 60)
    await cache.get("a")  # a is now more recent than b
    await cache.set("c", response(100), 60)
    assert await cache.get("b") is None and await cache.get("a") and await cache.get("c")
    assert cache.bytes <= cache.max_bytes
    await cache.set("huge", response(entry * 3), 60)  # never fits: refused, nothing evicted
    assert await cache.get("huge") is None and len(cache) == 2


async def test_invalidate_a_gateway() -> None:
    cache = MemoryCache(10_000, clock=Clock())
    mine, other = cache_key(*BASE), cache_key("a" * 32, "gw-2", *BASE[2:])
    await cache.set(mine, response(1), 60)
    await cache.set(other, response(1), 60)
    await cache.invalidate(gateway_prefix("a" * 32, "gw"))
    assert await cache.get(mine) is None and await cache.get(other) is not None
