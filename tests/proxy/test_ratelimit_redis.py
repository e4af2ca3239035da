"""The shared limiter's decisions (ratelimit/redis.py) against the real Redis: the Lua script's fixed
and sliding windows, all-or-nothing refusals, undo by handle, Retry-After, and outages.

Redis's clock cannot be injected, so window edges are set up by writing the state a passed window
leaves behind (read relative to Redis's ``TIME``), never by waiting for one."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection

from sluice.ratelimit.base import Budget, Check
from sluice.ratelimit.batch import Packed, command
from sluice.ratelimit.redis import US, RedisRateLimiter, redis_key
from tests.support.redis_server import RedisServer

DAY = 86_400


@pytest.fixture()
async def prefix(redis_prefix: str) -> str:
    return f"{redis_prefix}unit-{secrets.token_hex(3)}:"


@pytest.fixture()
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture()
async def limiter(redis_url: str, prefix: str) -> AsyncIterator[RedisRateLimiter]:
    made = RedisRateLimiter(redis_url, timeout_s=1.0, prefix=prefix)
    await made.start()
    yield made
    await made.close()


def test_commands_are_encoded_exactly_as_redis_py_encodes_them() -> None:
    args = ("EVALSHA", "0" * 40, 2, "gw:acct:gateway-é", "key:cfg", "proc:17", 10**9, 60 * US, "f", 5, 0, "s")
    expected = b"".join(Connection().pack_command(*args))
    assert command(args) == expected
    assert Packed("0" * 40, ["gw:acct:gateway-é", "key:cfg"], args[6:]).fill("proc:17") == expected
    assert Packed("0" * 40, ["k"], [1]).fill("other") != Packed("0" * 40, ["k"], [1]).fill("proc:17")


async def redis_now_us(raw: aioredis.Redis) -> int:
    seconds, micros = await raw.time()
    return seconds * US + micros


async def admitted(limiter: RedisRateLimiter, checks: list[Check], n: int) -> list[float | None]:
    """None per admitted request, else its Retry-After."""
    out = []
    for _ in range(n):
        decision = await limiter.admit(checks)
        out.append(None if decision.refused is None else decision.retry_after)
    return out


async def test_fixed_window_is_exact_and_retry_after_is_the_window_end(limiter, raw, prefix) -> None:
    check = Check("fixed", 3, DAY, "fixed")
    before = await redis_now_us(raw)
    results = await admitted(limiter, [check], 5)
    assert results[:3] == [None, None, None]
    window_end = before - before % (DAY * US) + DAY * US
    expected = -(-(window_end - before) // US)  # whole seconds, rounded up
    assert results[3] in (expected, expected - 1) and results[4] == results[3]
    stored = await raw.hgetall(redis_key(prefix, check))
    assert int(stored[b"n"]) == 3  # refusals are not counted
    # Redis counts PTTL from its clock in whole milliseconds: bound by the window end rounded up
    assert 0 < await raw.pttl(redis_key(prefix, check)) <= -(-(window_end - before) // 1000) + 1000


async def test_a_new_fixed_window_starts_from_zero(limiter, raw, prefix) -> None:
    check = Check("edge", 2, 60, "fixed")
    now = await redis_now_us(raw)
    last_window = now - now % (60 * US) - 60 * US
    await raw.hset(redis_key(prefix, check), mapping={"w": last_window, "n": 2})  # the last window was full
    results = await admitted(limiter, [check], 3)
    assert results[:2] == [None, None] and results[2] is not None and results[2] <= 60
    assert int(await raw.hget(redis_key(prefix, check), "w")) == last_window + 60 * US


async def test_sliding_retry_after_is_when_the_oldest_request_leaves(limiter, raw, prefix) -> None:
    check = Check("sliding", 3, 60, "sliding")
    key = redis_key(prefix, check)
    now = await redis_now_us(raw)
    await raw.zadd(key, {"old-a": now - 55 * US, "old-b": now - 30 * US, "gone": now - 61 * US})
    assert await admitted(limiter, [check], 2) == [None, 5.0]  # "gone" had left; "old-a" leaves in 5 s
    assert await raw.zscore(key, "gone") is None
    await raw.zadd(key, {"old-a": now - 59 * US - US // 2})  # leaves in ~0.5 s: Retry-After is never 0
    assert await admitted(limiter, [check], 1) == [1.0]


async def test_a_lowered_limit_forgets_the_oldest(limiter, raw, prefix) -> None:
    check = Check("lowered", 2, 60, "sliding")
    key = redis_key(prefix, check)
    now = await redis_now_us(raw)
    await raw.zadd(key, {f"m{i}": now - (50 - i) * US for i in range(5)})  # 5 hits under an older limit of 5
    assert await admitted(limiter, [check], 1) == [13.0]  # kept the 2 newest: the older one leaves in ~13 s
    assert await raw.zcard(key) == 2


async def test_a_refusal_takes_back_the_earlier_checks_in_the_same_script(limiter, raw, prefix) -> None:
    gateway, key = Check("gw", 5, DAY, "sliding"), Check("key", 1, DAY, "fixed")
    fixed_gateway = Check("gw-fixed", 5, DAY, "fixed")
    assert (await limiter.admit([gateway, fixed_gateway, key])).refused is None
    for _ in range(3):
        assert (await limiter.admit([gateway, fixed_gateway, key])).refused == key
    assert await raw.zcard(redis_key(prefix, gateway)) == 1
    assert int(await raw.hget(redis_key(prefix, fixed_gateway), "n")) == 1


async def test_undo_takes_back_exactly_its_own_hit_never_another_process(redis_url, raw, prefix) -> None:
    one = RedisRateLimiter(redis_url, timeout_s=1.0, prefix=prefix)  # two processes' limiters
    two = RedisRateLimiter(redis_url, timeout_s=1.0, prefix=prefix)
    sliding, fixed = Check("s", 3, DAY, "sliding"), Check("f", 3, DAY, "fixed")
    try:
        mine = await one.admit([sliding, fixed])
        theirs = await two.admit([sliding, fixed])
        assert mine.refused is None and theirs.refused is None
        await one.undo(mine)
        await one.undo(mine)  # twice: the decision's hits were handed out once
        members = await raw.zrange(redis_key(prefix, sliding), 0, -1)
        assert len(members) == 1 and members[0].decode().startswith(two._process)
        assert int(await raw.hget(redis_key(prefix, fixed), "n")) == 1
    finally:
        await one.close()
        await two.close()


async def test_undo_never_touches_a_later_fixed_window(limiter, raw, prefix) -> None:
    check = Check("later", 2, 60, "fixed")
    decision = await limiter.admit([check])
    key = redis_key(prefix, check)
    window = int(await raw.hget(key, "w"))
    await raw.hset(key, mapping={"w": window + 60 * US, "n": 1})  # the window turned; another request counted
    await limiter.undo(decision)
    assert int(await raw.hget(key, "n")) == 1


async def test_many_processes_admit_exactly_the_limit(redis_url, prefix) -> None:
    limiters = [RedisRateLimiter(redis_url, timeout_s=2.0, prefix=prefix) for _ in range(4)]
    checks = [Check("race-gw", 50, DAY, "sliding"), Check("race-key", 1000, DAY, "fixed")]
    try:
        decisions = await asyncio.gather(*(limiters[i % 4].admit(checks) for i in range(300)))
    finally:
        for made in limiters:
            await made.close()
    assert sum(d.refused is None for d in decisions) == 50


async def test_script_is_reloaded_after_the_script_cache_is_flushed(limiter, raw) -> None:
    check = Check("flush", 10, DAY, "fixed")
    assert (await limiter.admit([check])).refused is None
    await raw.script_flush()  # what a Redis restart does
    assert (await limiter.admit([check])).refused is None
    assert limiter.health.up


async def test_outage_allows_fast_logs_once_and_recovers_by_itself(tmp_path: Path, prefix: str) -> None:
    server = RedisServer(tmp_path / "redis").start()
    # 0.5 s, not the 50 ms default: this shared test machine stalls longer than 50 ms at times
    limiter = RedisRateLimiter(server.url, on_error="allow", timeout_s=0.5, prefix=prefix)
    check = Check("outage", 2, DAY, "fixed")
    try:
        await limiter.start()
        before = await admitted(limiter, [check], 3)
        assert before[:2] == [None, None] and before[2] is not None
        server.pause()  # hung: connections open, no answers
        began = time.perf_counter()
        results = await admitted(limiter, [check], 20)
        waited = time.perf_counter() - began
        assert results == [None] * 20 and not limiter.health.up
        assert waited < 2.0, f"20 requests on a hung Redis took {waited:.2f}s"  # one timeout, not twenty
        assert limiter.health.outages == 1 and limiter.health.decided_without_backend == 20
        server.resume()
        for _ in range(100):  # the probe PINGs every 0.25 s
            if limiter.health.up:
                break
            await asyncio.sleep(0.05)
        assert limiter.health.up
        assert (await limiter.admit([check])).refused == check  # enforced again, with the counts kept
    finally:
        await limiter.close()
        server.stop()


async def test_outage_with_deny_refuses_limited_requests(tmp_path: Path, prefix: str) -> None:
    server = RedisServer(tmp_path / "redis").start()
    limiter = RedisRateLimiter(server.url, on_error="deny", timeout_s=0.5, prefix=prefix)
    check = Check("deny", 100, DAY, "sliding")
    try:
        await limiter.start()
        assert (await limiter.admit([check])).refused is None
        server.stop()  # killed: connection refused
        decision = await limiter.admit([check])
        assert decision.refused == check and decision.unavailable and decision.retry_after == 1.0
        assert (await limiter.admit([])).refused is None  # a request without limits never needs Redis
        server.start()
        for _ in range(100):
            if limiter.health.up:
                break
            await asyncio.sleep(0.05)
        assert (await limiter.admit([check])).refused is None  # a fresh Redis: counting starts again
    finally:
        await limiter.close()
        server.stop()


async def test_redis_down_at_start_is_an_outage_not_a_crash(prefix: str) -> None:
    from tests.support.server import free_port

    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", prefix=prefix)
    try:
        await limiter.start()
        assert not limiter.health.up
        assert (await limiter.admit([Check("x", 1, 60, "fixed")])).refused is None
    finally:
        await limiter.close()


@pytest.mark.parametrize("technique", ["fixed", "sliding"])
async def test_a_budget_adds_up_in_redis_and_is_shared(limiter, redis_url, prefix, technique) -> None:
    other = RedisRateLimiter(redis_url, timeout_s=1.0, prefix=prefix)  # another process's limiter
    await other.start()
    budget = Budget(f"budget-{technique}", DAY, technique)
    try:
        assert await limiter.spent(budget) == 0.0
        await limiter.spend(budget, 0.25)
        await other.spend(budget, 1.5)
        assert await other.spent(budget) == 1.75 and await limiter.spent(budget) == 1.75
        assert await limiter.spent(Budget("budget-b", DAY, technique)) == 0.0
    finally:
        await other.close()


async def test_a_sliding_budget_in_redis_forgets_slices_out_of_the_window(limiter, raw, prefix) -> None:
    budget = Budget("sliding-old", 60, "sliding")  # slices of 1 s
    key = f"{prefix}sliding-old:cs60"
    now_slice = (await redis_now_us(raw)) * 60 // (60 * US)
    await raw.hset(key, mapping={str(now_slice - 60): 5.0, str(now_slice - 59): 0.5})  # 60 s ago: gone
    assert await limiter.spent(budget) == 0.5
    await limiter.spend(budget, 1.0)
    assert await limiter.spent(budget) == 1.5
    assert str(now_slice - 60).encode() not in await raw.hkeys(key)  # pruned when spending
