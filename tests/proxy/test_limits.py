"""The data plane's rate-limit decisions (proxy/limits.py) over the real in-process limiter, with an
injected clock: window edges are set by the test, never waited for."""

from __future__ import annotations

import asyncio

import pytest

from sluice.errors import GatewayError
from sluice.proxy.limits import admit
from sluice.proxy.state import GatewayState, StoredKey
from sluice.ratelimit.local import LocalRateLimiter
from tests.proxy.test_ratelimit_local import Clock

WINDOW_START = 60 * 16_666_666.0  # a multiple of 60: a fixed 60 s window starts here


def gateway(limit: int = 0, interval: int = 60, technique: str = "fixed") -> GatewayState:
    return GatewayState("acct", "gw", False, True, limit, interval, technique, 1, 0, "constant", {})


def stored_key(limit: int, period: int = 60, alias: str = "limited") -> StoredKey:
    return StoredKey("cfg1", alias, "openai", "authorization", "Bearer sk-x", limit, period)


def outcomes(limiter: LocalRateLimiter, gw: GatewayState | None, key: StoredKey | None,
             n: int) -> list[object]:
    """None for an admitted request, else (internalCode, Retry-After) of the refusal."""
    async def one() -> object:
        try:
            await admit(limiter, gw, key)
        except GatewayError as exc:
            assert exc.status == 429
            return exc.internal_code, int(exc.headers["retry-after"])
        return None

    return [asyncio.run(one()) for _ in range(n)]


def test_fixed_gateway_limit_is_exact_within_a_window_and_resets_at_its_edge() -> None:
    clock = Clock(WINDOW_START + 55.0)  # 5 s before the edge
    limiter = LocalRateLimiter(clock)
    gw = gateway(limit=3, technique="fixed")
    assert outcomes(limiter, gw, None, 5) == [None, None, None, (2003, 5), (2003, 5)]
    clock.now = WINDOW_START + 59.9
    assert outcomes(limiter, gw, None, 1) == [(2003, 1)]  # never Retry-After 0
    clock.now = WINDOW_START + 60.0  # the next window: a full quota again, and only that
    assert outcomes(limiter, gw, None, 4) == [None, None, None, (2003, 60)]


def test_a_burst_across_a_fixed_edge_counts_in_two_windows() -> None:
    clock = Clock(WINDOW_START + 59.0)
    limiter = LocalRateLimiter(clock)
    gw = gateway(limit=2, technique="fixed")
    assert outcomes(limiter, gw, None, 2) == [None, None]
    clock.now += 1.5  # crossed the edge mid-burst: 59.5 s left in the new window
    assert outcomes(limiter, gw, None, 3) == [None, None, (2003, 60)]


def test_sliding_gateway_limit_retry_after_is_when_the_oldest_request_leaves() -> None:
    clock = Clock(WINDOW_START + 55.0)
    limiter = LocalRateLimiter(clock)
    gw = gateway(limit=3, technique="sliding")
    assert outcomes(limiter, gw, None, 4) == [None, None, None, (2003, 60)]
    clock.now += 10.0  # a fixed window would have reset here; sliding still holds all three
    assert outcomes(limiter, gw, None, 1) == [(2003, 50)]
    clock.now += 50.0
    assert outcomes(limiter, gw, None, 4) == [None, None, None, (2003, 60)]


def test_key_limit_names_the_alias_and_gives_back_the_gateway_count() -> None:
    clock = Clock(WINDOW_START + 1.0)
    limiter = LocalRateLimiter(clock)
    gw = gateway(limit=3, technique="sliding")
    one = stored_key(1, alias="one")
    two = StoredKey("cfg2", "two", "openai", "authorization", "Bearer sk-y", 0, 60)
    assert outcomes(limiter, gw, one, 3) == [None, (2004, 59), (2004, 59)]
    # the gateway allows 3: one (admitted) + two + two; the key's refusals were taken back
    assert outcomes(limiter, gw, two, 3) == [None, None, (2003, 60)]
    with pytest.raises(GatewayError) as refused:
        asyncio.run(admit(limiter, gateway(), one))
    assert "'one'" in refused.value.message and "1 requests per 60s" in refused.value.message


def test_a_cache_hit_counts_against_the_gateway_only() -> None:
    """After a cache lookup the data plane admits a hit with no key (it uses no stored key)."""
    limiter = LocalRateLimiter(Clock(WINDOW_START))
    gw = gateway(limit=3, technique="fixed")
    key = stored_key(1)
    asyncio.run(admit(limiter, gw, None))  # a hit
    asyncio.run(admit(limiter, gw, key))  # a miss: the key's one request
    asyncio.run(admit(limiter, gw, None))  # a hit again: the key's limit does not apply
    with pytest.raises(GatewayError) as refused:
        asyncio.run(admit(limiter, gw, None))
    assert refused.value.internal_code == 2003


def test_undo_gives_back_every_limit_of_the_decision() -> None:
    limiter = LocalRateLimiter(Clock(WINDOW_START))
    gw = gateway(limit=1, technique="sliding")
    key = stored_key(1)
    decision = asyncio.run(admit(limiter, gw, key))
    asyncio.run(limiter.undo(decision))
    assert outcomes(limiter, gw, key, 2) == [None, (2003, 60)]


def test_no_limits_means_no_counting() -> None:
    limiter = LocalRateLimiter(Clock(WINDOW_START))
    assert outcomes(limiter, gateway(), stored_key(0), 50) == [None] * 50
    assert limiter._fixed == {} and limiter._sliding == {}


def test_a_key_pool_retry_counts_against_the_next_key_only() -> None:
    """Key pools: the gateway counted the request once; the retry asks only the next key's limit."""
    limiter = LocalRateLimiter(Clock(WINDOW_START + 10.0))
    gw = gateway(limit=2)
    first = stored_key(limit=5)
    following = StoredKey("cfg2", "next", "openai", "authorization", "Bearer sk-y", 2, 60)
    assert outcomes(limiter, gw, first, 1) == [None]  # the gateway: 1 of 2
    assert outcomes(limiter, None, following, 3) == [None, None, (2004, 50)]
    assert outcomes(limiter, gw, first, 2) == [None, (2003, 50)]  # the retries never counted on the gateway
