"""The Redis response cache against the real Redis: shared between instances, invalidated for all
of them by one call, TTL set by Redis, and a dead Redis is a miss (never an error)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from sluice.cache.base import CachedResponse
from sluice.cache.keys import cache_key, gateway_prefix
from sluice.cache.redis import DOWN_FOR_S, RedisCache
from tests.support.server import free_port

ENTRY = CachedResponse(200, (("content-type", "application/json"), ("x-n", "a\nb")), b'{"ok":\n true}')


@pytest.fixture()
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url)
    yield redis
    await redis.aclose()


def _cache(client: Redis, namespace: str) -> RedisCache:
    return RedisCache(client, namespace=namespace, max_entry_bytes=1024)


def _key(account: str, gateway: str = "gw", body: bytes = b"{}") -> str:
    return cache_key(account, gateway, "openai", "POST", "/chat/completions", "", body)


@pytest.fixture()
def namespace() -> str:
    return f"sluice-test:{secrets.token_hex(6)}"


async def test_an_entry_stored_by_one_instance_is_found_by_another(client: Redis, namespace: str) -> None:
    a, b = _cache(client, namespace), _cache(client, namespace)
    key = _key("acct")
    assert await b.get(key) is None
    await a.set(key, ENTRY, 120)
    assert await b.get(key) == ENTRY
    [stored] = [k async for k in client.scan_iter(f"{namespace}:entry:*")]
    assert 0 < await client.ttl(stored) <= 120  # Redis expires it (SET EX)


async def test_invalidate_through_one_instance_reaches_the_other(client: Redis, namespace: str) -> None:
    a, b = _cache(client, namespace), _cache(client, namespace)
    key, other_gateway = _key("acct", "gw"), _key("acct", "gw2")
    await a.set(key, ENTRY, 120)
    await a.set(other_gateway, ENTRY, 120)
    await a.invalidate(gateway_prefix("acct", "gw"))
    assert await b.get(key) is None
    assert await b.get(other_gateway) == ENTRY  # only that gateway's entries go
    await b.set(key, ENTRY, 120)
    assert await a.get(key) == ENTRY  # and the gateway caches again


async def test_a_lost_generation_never_brings_old_entries_back(client: Redis, namespace: str) -> None:
    cache = _cache(client, namespace)
    key = _key("acct")
    await cache.set(key, ENTRY, 120)
    await cache.invalidate(gateway_prefix("acct", "gw"))
    await client.delete(f"{namespace}:gen:acct/gw/")  # evicted under memory pressure, say
    assert await cache.get(key) is None
    await cache.set(key, CachedResponse(201, (), b"new"), 120)
    assert (await cache.get(key)).status == 201  # type: ignore[union-attr]


async def test_entries_over_the_size_bound_or_without_ttl_are_not_stored(client: Redis,
                                                                         namespace: str) -> None:
    cache = _cache(client, namespace)
    await cache.set(_key("acct", body=b"1"), CachedResponse(200, (), b"x" * 2048), 120)
    await cache.set(_key("acct", body=b"2"), ENTRY, 0)
    assert await cache.get(_key("acct", body=b"1")) is None and await cache.get(_key("acct",
                                                                                     body=b"2")) is None


async def test_an_unreachable_redis_is_a_miss_and_is_not_retried_per_request() -> None:
    now = [0.0]
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.25)
    cache = RedisCache(dead, max_entry_bytes=1024, clock=lambda: now[0])
    calls = 0
    original = cache._lookup

    async def counting(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return await original(*args, **kwargs)

    cache._lookup = counting  # type: ignore[method-assign]
    try:
        assert await cache.get(_key("acct")) is None
        await cache.set(_key("acct"), ENTRY, 120)  # no error
        await cache.invalidate(gateway_prefix("acct", "gw"))  # no error: kept for later
        assert await cache.get(_key("acct")) is None
        assert calls == 1  # inside the outage window nothing waits on Redis again
        now[0] += DOWN_FOR_S
        assert await cache.get(_key("acct")) is None
        assert cache._pending  # the invalidation is still owed, and is sent before any lookup
    finally:
        await dead.aclose()


async def test_the_key_prefix_setting_keeps_two_clusters_apart(redis_url: str, namespace: str) -> None:
    """``SLUICE_REDIS_KEY_PREFIX``: two clusters on one Redis never see each other's entries."""
    one = RedisCache.from_url(redis_url, max_entry_bytes=1024, key_prefix=f"{namespace}:one:")
    two = RedisCache.from_url(redis_url, max_entry_bytes=1024, key_prefix=f"{namespace}:two:")
    try:
        key = _key("acct")
        await one.set(key, ENTRY, 120)
        assert await one.get(key) == ENTRY
        assert await two.get(key) is None
        assert [k async for k in one.client.scan_iter(f"{namespace}:one:cache:entry:*")]
    finally:
        await one.client.aclose()
        await two.client.aclose()
