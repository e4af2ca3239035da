"""Rate-limit arithmetic of the in-process limiter, with an injected clock."""

from __future__ import annotations

import asyncio

from sluice.ratelimit.base import Budget, Check, Decision
from sluice.ratelimit.local import LocalRateLimiter, retry_after


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def hit_now(limiter: LocalRateLimiter, key: str, limit: int, period: int, technique: str) -> float | None:
    """One request with one limit: None when admitted, else its Retry-After."""
    decision = limiter.decide([Check(key, limit, period, technique)])  # type: ignore[arg-type]
    return None if decision.refused is None else decision.retry_after


def hits(limiter: LocalRateLimiter, n: int, limit: int, period: int, technique: str) -> list[float | None]:
    return [hit_now(limiter, "k", limit, period, technique) for _ in range(n)]


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
    assert hit_now(limiter, "k", 3, 10, "sliding") is None
    clock.now = 1004.0
    assert hits(limiter, 2, 3, 10, "sliding") == [None, None]
    assert hit_now(limiter, "k", 3, 10, "sliding") == 6.0  # the 1000.0 request leaves at 1010.0
    clock.now = 1010.0
    assert hit_now(limiter, "k", 3, 10, "sliding") is None  # it has left
    assert hit_now(limiter, "k", 3, 10, "sliding") == 4.0  # the two 1004.0 requests leave at 1014.0
    # a fixed window would have reset at 1010 and allowed three more: sliding does not
    clock.now = 1013.9
    assert hit_now(limiter, "k", 3, 10, "sliding") == 1.0


def test_rejected_hits_are_not_counted() -> None:
    clock = Clock(0.0)
    limiter = LocalRateLimiter(clock)
    assert hits(limiter, 10, 2, 10, "sliding").count(None) == 2
    clock.now = 10.0
    assert hits(limiter, 3, 2, 10, "sliding") == [None, None, 10.0]


def test_keys_are_independent_and_undo_takes_back_exactly_its_hits() -> None:
    clock = Clock(5.0)
    limiter = LocalRateLimiter(clock)
    a = Check("a", 1, 60, "fixed")
    first = limiter.decide([a])
    assert first.refused is None
    assert hit_now(limiter, "b", 1, 60, "fixed") is None
    assert limiter.decide([a]).refused == a
    asyncio.run(limiter.undo(first))
    assert hit_now(limiter, "a", 1, 60, "fixed") is None
    s = Check("s", 2, 60, "sliding")
    early = limiter.decide([s])
    clock.now = 20.0
    assert limiter.decide([s]).refused is None
    asyncio.run(limiter.undo(early))  # the 5.0 hit goes, the 20.0 one stays
    asyncio.run(limiter.undo(early))  # a decision is undone once: the 20.0 hit still stays
    clock.now = 70.0  # 5.0 would have left by now anyway; 20.0 has not
    assert limiter.decide([s]).refused is None
    assert limiter.decide([s]).retry_after == 10.0  # the 20.0 hit leaves at 80.0


def test_undo_never_touches_a_later_fixed_window() -> None:
    clock = Clock(59.0)
    limiter = LocalRateLimiter(clock)
    a = Check("a", 1, 60, "fixed")
    old = limiter.decide([a])
    clock.now = 61.0
    assert limiter.decide([a]).refused is None
    asyncio.run(limiter.undo(old))  # its window has passed: the new window's hit stays counted
    assert limiter.decide([a]).refused == a


def test_a_refusal_takes_back_the_earlier_checks_of_the_same_decision() -> None:
    limiter = LocalRateLimiter(Clock(0.0))
    gateway, key = Check("gw", 2, 60, "sliding"), Check("key", 1, 60, "fixed")
    assert limiter.decide([gateway, key]).refused is None
    refused = limiter.decide([gateway, key])
    assert refused.refused == key and refused.retry_after == 60.0 and refused.handle is None
    asyncio.run(limiter.undo(refused))  # nothing to take back: a no-op
    assert limiter.decide([gateway]).refused is None  # the refused decision left the gateway 1 of 2
    assert limiter.decide([gateway]).refused == gateway


def test_a_changed_period_starts_afresh() -> None:
    clock = Clock(120.0)
    limiter = LocalRateLimiter(clock)
    assert hits(limiter, 2, 1, 60, "fixed") == [None, 60.0]
    assert hit_now(limiter, "k", 1, 30, "fixed") is None


def test_async_interface() -> None:
    limiter = LocalRateLimiter(Clock(0.0))
    check = Check("k", 1, 1, "fixed")
    assert asyncio.run(limiter.admit([check])).refused is None
    assert asyncio.run(limiter.admit([check])) == Decision(refused=check, retry_after=1.0)
    assert asyncio.run(limiter.admit([])).refused is None


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after(0.0) == 1.0 and retry_after(0.01) == 1.0 and retry_after(1.0) == 1.0
    assert retry_after(1.2) == 2.0 and retry_after(59.99) == 60.0


async def test_a_fixed_budget_adds_up_within_its_window_and_starts_afresh() -> None:
    clock = Clock(3600 * 1000 + 10.0)  # 10 s into an hour window
    limiter = LocalRateLimiter(clock)
    team, hourly = Budget("team", 3600, "fixed"), Budget("team", 60, "fixed")
    assert await limiter.spent(team) == 0.0
    await limiter.spend(team, 0.25)
    await limiter.spend(team, 0.5)
    assert await limiter.spent(team) == 0.75 and await limiter.spent(Budget("other", 3600, "fixed")) == 0.0
    assert await limiter.spent(hourly) == 0.0  # another window length is another budget
    clock.now += 3590  # the next window
    assert await limiter.spent(team) == 0.0


async def test_a_sliding_budget_forgets_amounts_one_slice_at_a_time() -> None:
    clock = Clock(6000.0)  # a slice edge: slices of a 600 s window are 10 s long
    limiter = LocalRateLimiter(clock)
    budget = Budget("team", 600, "sliding")
    await limiter.spend(budget, 1.0)
    clock.now += 300
    await limiter.spend(budget, 2.0)
    clock.now += 299  # 599 s after the first amount: both still count
    assert await limiter.spent(budget) == 3.0
    clock.now += 1  # the first amount's slice has left the window
    assert await limiter.spent(budget) == 2.0
    clock.now += 300
    assert await limiter.spent(budget) == 0.0
