"""Exact in-process rate limiting: fixed (clock-aligned) windows and a sliding log.

Fixed: the window is ``floor(now / period) * period``, so every process agrees on its edges.
Sliding: the timestamps of allowed requests in the last ``period`` seconds (at most ``limit`` of
them per key), so the answer is exact rather than the usual two-window estimate.
Everything is synchronous under the hood: no await between read and write, so the asyncio event
loop makes each hit atomic.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Callable

from sluice.ratelimit.base import Technique

SWEEP_EVERY = 4096  # hits between sweeps of keys whose window has passed (bounded memory)


def retry_after(seconds: float) -> float:
    """Retry-After is whole seconds and never 0 (a client told 0 would retry immediately)."""
    return float(max(1, math.ceil(seconds - 1e-9)))


class LocalRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._fixed: dict[str, tuple[float, float, int]] = {}  # key -> (window start, period, count)
        self._sliding: dict[str, tuple[float, deque[float]]] = {}  # key -> (period, allowed stamps)
        self._hits = 0

    async def hit(self, key: str, limit: int, period_s: float, technique: Technique) -> float | None:
        return self.hit_now(key, limit, period_s, technique)

    def hit_now(self, key: str, limit: int, period_s: float, technique: Technique) -> float | None:
        now = self._clock()
        self._hits += 1
        if self._hits % SWEEP_EVERY == 0:
            self._sweep(now)
        if technique == "sliding":
            return self._hit_sliding(key, limit, period_s, now)
        return self._hit_fixed(key, limit, period_s, now)

    def _hit_fixed(self, key: str, limit: int, period: float, now: float) -> float | None:
        start = math.floor(now / period) * period
        current = self._fixed.get(key)
        count = current[2] if current is not None and current[0] == start and current[1] == period else 0
        if count >= limit:
            return retry_after(start + period - now)
        self._fixed[key] = (start, period, count + 1)
        return None

    def _hit_sliding(self, key: str, limit: int, period: float, now: float) -> float | None:
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
            return retry_after(stamps[0] + period - now)
        stamps.append(now)
        return None

    async def undo(self, key: str, period_s: float, technique: Technique) -> None:
        if technique == "sliding":
            current = self._sliding.get(key)
            if current is not None and current[1]:
                current[1].pop()
            return
        fixed = self._fixed.get(key)
        if fixed is not None and fixed[2] > 0:
            self._fixed[key] = (fixed[0], fixed[1], fixed[2] - 1)

    def _sweep(self, now: float) -> None:
        self._fixed = {k: v for k, v in self._fixed.items() if v[0] + v[1] > now}
        self._sliding = {k: v for k, v in self._sliding.items() if v[1] and v[1][-1] > now - v[0]}

    async def close(self) -> None:
        return None
