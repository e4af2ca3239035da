"""Rate-limit arithmetic of the in-process limiter, with an injected clock."""

from __future__ import annotations

import asyncio

from sluice.ratelimit.local import LocalRateLimiter
from sluice.ratelimit.local import retry_after


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def hits(limiter: LocalRateLimiter, n: int, limit: int, period: float, technique: str) -> list[float | None]:
    return [limiter.hit_now("k", limit, period, technique) for _ in range(n)]  # type: ignore[arg-type]


def test_fixed_window_is_clock_aligned() -> None:
    clock = Clock(60 * 16_666_666 + 50.0)  # 50 s into a 60 s window
    limiter = LocalRateLimiter(clock)
    assert hits(limiter, 4, 3, 60, "fixed") == [None, None, None, 10.0]  # retry when the window turns
    clock.now += 9.5
    assert hits(limiter, 1, 3, 60, "fixed") == [1.0]  # 0.5 s left rounds up to 1, never 0
    clock.now += 0.5  # the next window starts exactly now
    assert hits(limiter, 4, 3, 60, "fixed") == [None, None, None, 60.0]


def test_sliding_window_remembers_each_request() -> None:
    clock = Clock(1000.0)
    limiter = LocalRateLimiter(clock)
    assert limiter.hit_now("k", 3, 10, "sliding") is None
    clock.now = 1004.0
    assert hits(limiter, 2, 3, 10, "sliding") == [None, None]
    assert limiter.hit_now("k", 3, 10, "sliding") == 6.0  # the 1000.0 request leaves at 1010.0
    clock.now = 1010.0
    assert limiter.hit_now("k", 3, 10, "sliding") is None  # it has left
    assert limiter.hit_now("k", 3, 10, "sliding") == 4.0  # the two 1004.0 requests leave at 1014.0
    # a fixed window would have reset at 1010 and allowed three more: sliding does not
    clock.now = 1013.9
    assert limiter.hit_now("k", 3, 10, "sliding") == 1.0


def test_rejected_hits_are_not_counted() -> None:
    clock = Clock(0.0)
    limiter = LocalRateLimiter(clock)
    assert hits(limiter, 10, 2, 10, "sliding").count(None) == 2
    clock.now = 10.0
    assert hits(limiter, 3, 2, 10, "sliding") == [None, None, 10.0]


def test_keys_are_independent_and_undo_takes_back_a_hit() -> None:
    clock = Clock(5.0)
    limiter = LocalRateLimiter(clock)
    assert limiter.hit_now("a", 1, 60, "fixed") is None
    assert limiter.hit_now("b", 1, 60, "fixed") is None
    assert limiter.hit_now("a", 1, 60, "fixed") is not None
    asyncio.run(limiter.undo("a", 60, "fixed"))
    assert limiter.hit_now("a", 1, 60, "fixed") is None
    assert limiter.hit_now("s", 1, 60, "sliding") is None
    asyncio.run(limiter.undo("s", 60, "sliding"))
    assert limiter.hit_now("s", 1, 60, "sliding") is None


def test_a_changed_period_starts_afresh() -> None:
    clock = Clock(120.0)
    limiter = LocalRateLimiter(clock)
    assert hits(limiter, 2, 1, 60, "fixed") == [None, 60.0]
    assert limiter.hit_now("k", 1, 30, "fixed") is None


def test_async_interface() -> None:
    limiter = LocalRateLimiter(Clock(0.0))
    assert asyncio.run(limiter.hit("k", 1, 1, "fixed")) is None
    assert asyncio.run(limiter.hit("k", 1, 1, "fixed")) == 1.0


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after(0.0) == 1.0 and retry_after(0.01) == 1.0 and retry_after(1.0) == 1.0
    assert retry_after(1.2) == 2.0 and retry_after(59.99) == 60.0
