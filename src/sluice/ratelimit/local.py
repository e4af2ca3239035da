"""Exact in-process rate limiting: fixed (clock-aligned) windows and a sliding log.

Fixed: the window is ``floor(now / period) * period``, so every process agrees on its edges.
Sliding: the timestamps of allowed requests in the last ``period`` seconds (at most ``limit`` of
them per key), so the answer is exact rather than the usual two-window estimate.
Everything is synchronous under the hood: no await between read and write, so the asyncio event
loop makes each decision atomic. ``redis.py`` makes the same decisions in Redis.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence

from sluice.ratelimit.base import ADMITTED, BackendHealth, Budget, Check, Decision, Hits

SWEEP_EVERY = 4096  # hits between sweeps of keys whose window has passed (bounded memory)

# One counted hit, as undo needs it: (check, fixed window start | sliding timestamp)
Hit = tuple[Check, float]


def retry_after(seconds: float) -> float:
    """Retry-After is whole seconds and never 0 (a client told 0 would retry immediately)."""
    return float(max(1, math.ceil(seconds - 1e-9)))


class LocalRateLimiter:
    health: BackendHealth | None = None

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._fixed: dict[str, tuple[float, float, int]] = {}  # key -> (window start, period, count)
        self._sliding: dict[str, tuple[float, deque[float]]] = {}  # key -> (period, allowed stamps)
        self._hits = 0
        self._budgets: dict[Budget, dict[int, float]] = {}  # budget -> {slice index: amount}

    async def admit(self, checks: Sequence[Check]) -> Decision:
        return self.decide(checks)

    def decide(self, checks: Sequence[Check]) -> Decision:
        if not checks:
            return ADMITTED
        now = self._clock()
        self._hits += 1
        if self._hits % SWEEP_EVERY == 0:
            self._sweep(now)
        counted: list[Hit] = []
        for check in checks:
            if check.technique == "sliding":
                wait, marker = self._hit_sliding(check.key, check.limit, check.period_s, now)
            else:
                wait, marker = self._hit_fixed(check.key, check.limit, check.period_s, now)
            if wait is not None:
                for hit in counted:  # all or nothing: the earlier checks' hits go back
                    self._take_back(hit)
                return Decision(refused=check, retry_after=retry_after(wait))
            counted.append((check, marker))
        return Decision(handle=Hits(tuple(counted)))

    def _hit_fixed(self, key: str, limit: int, period: float, now: float) -> tuple[float | None, float]:
        start = math.floor(now / period) * period
        current = self._fixed.get(key)
        count = current[2] if current is not None and current[0] == start and current[1] == period else 0
        if count >= limit:
            return start + period - now, start
        self._fixed[key] = (start, period, count + 1)
        return None, start

    def _hit_sliding(self, key: str, limit: int, period: float, now: float) -> tuple[float | None, float]:
        current = self._sliding.get(key)
        if current is None or current[0] != period:
            stamps: deque[float] = deque()
            self._sliding[key] = (period, stamps)
        else:
            stamps = current[1]
        horizon = now - period
        while stamps and stamps[0] <= horizon:
            stamps.popleft()
        while len(stamps) > limit:  # the limit was lowered: forget the oldest
            stamps.popleft()
        if len(stamps) >= limit:
            return stamps[0] + period - now, now
        stamps.append(now)
        return None, now

    async def spent(self, budget: Budget) -> float:
        return self._total(budget, budget.slice_of(self._clock()))

    async def spend(self, budget: Budget, amount: float) -> None:
        current = budget.slice_of(self._clock())
        slices = self._budgets.setdefault(budget, {})
        for index in [i for i in slices if i <= current - budget.slices]:  # out of the window: forgotten
            del slices[index]
        slices[current] = slices.get(current, 0.0) + amount

    def _total(self, budget: Budget, current: int) -> float:
        slices = self._budgets.get(budget, {})
        return sum(amount for index, amount in slices.items() if index > current - budget.slices)

    async def undo(self, decision: Decision) -> None:
        counted = decision.handle.take() if decision.handle is not None else None
        for hit in counted or ():  # type: ignore[attr-defined]
            self._take_back(hit)

    def _take_back(self, hit: Hit) -> None:
        check, marker = hit
        if check.technique == "sliding":
            current = self._sliding.get(check.key)
            if current is not None and current[0] == check.period_s and marker in current[1]:
                current[1].remove(marker)  # equal stamps are interchangeable within one process
            return
        fixed = self._fixed.get(check.key)
        if fixed is not None and fixed[0] == marker and fixed[1] == check.period_s and fixed[2] > 0:
            self._fixed[check.key] = (fixed[0], fixed[1], fixed[2] - 1)

    def _sweep(self, now: float) -> None:
        self._fixed = {k: v for k, v in self._fixed.items() if v[0] + v[1] > now}
        self._sliding = {k: v for k, v in self._sliding.items() if v[1] and v[1][-1] > now - v[0]}
        self._budgets = {b: s for b, s in self._budgets.items() if self._total(b, b.slice_of(now)) > 0}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
