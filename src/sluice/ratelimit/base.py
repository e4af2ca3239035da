"""The rate-limiter seam: the data plane asks once per request "may this request pass all its limits?".

``admit(checks)`` decides every limit of one request in one step (for the Redis limiter: one atomic
script, one round trip): the checks are tried in order, the first refusal stops, and the hits this
call had counted for the earlier checks are taken back in the same step, so a refused request uses
up no quota. ``undo(decision)`` takes back exactly the hits that decision counted, never another
request's or another process's.

Implementations: ``local.LocalRateLimiter`` (exact, one process) and ``redis.RedisRateLimiter``
(exact across every process sharing one Redis); ``backends.make_limiter`` chooses. Both also keep
budgets (``spent``/``spend``: an amount per window, e.g. dollars of logged cost; see ``Budget``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

Technique = Literal["fixed", "sliding"]


@dataclass(frozen=True, slots=True)
class Check:
    """One limit a request must pass: at most ``limit`` requests per ``period_s`` seconds on ``key``."""

    key: str
    limit: int
    period_s: int
    technique: Technique


SLIDING_SLICES = 60  # a sliding budget sums the last 60 slices of its window (each window/60 long)


@dataclass(frozen=True, slots=True)
class Budget:
    """An amount spent on ``key`` per ``period_s`` seconds. Fixed: clock-aligned windows, like a fixed
    rate limit. Sliding: the window is cut into ``SLIDING_SLICES`` clock-aligned slices and the last
    ones covering ``period_s`` are summed (exact to one slice: constant work whatever the traffic,
    where a log of every amount would grow with it)."""

    key: str
    period_s: int
    technique: Technique

    @property
    def slices(self) -> int:
        return SLIDING_SLICES if self.technique == "sliding" else 1

    def slice_of(self, now: float) -> int:
        """The index of the slice ``now`` falls in (slices are counted from the epoch)."""
        return int(now * self.slices // self.period_s)


class Hits:
    """What one decision counted, in the limiter's own terms. ``take`` hands it out once: undoing a
    decision twice takes back nothing more (a fixed window's count does not say whose hits it holds)."""

    __slots__ = ("_counted",)

    def __init__(self, counted: object) -> None:
        self._counted = counted

    def take(self) -> object:
        counted, self._counted = self._counted, None
        return counted


class Decision(NamedTuple):
    """Immutable: a named tuple, made for every request (half the CPU of a frozen dataclass, measured).
    ``refused``: the check that refused the request (nothing of it stays counted), else None.
    ``retry_after``: whole seconds (>= 1) until that check would allow a request; 0 when admitted.
    ``handle``: what ``undo`` needs to take back exactly this decision's hits.
    ``unavailable``: the shared backend could not be asked and the outage policy refused."""

    refused: Check | None = None
    retry_after: float = 0.0
    handle: Hits | None = None
    unavailable: bool = False


ADMITTED = Decision()  # nothing to count (no checks) or nothing counted


@dataclass(slots=True)
class BackendHealth:
    """A shared limiter's view of its backend, for /readyz, /metrics and the logs."""

    name: str
    on_error: str  # "allow" | "deny": what a request gets while the backend cannot be reached
    up: bool = True
    decided_without_backend: int = 0  # requests decided by ``on_error`` (the backend was not asked)
    outages: int = 0


class RateLimiter(Protocol):
    health: BackendHealth | None  # None: no backend to depend on (in-process)

    async def admit(self, checks: Sequence[Check]) -> Decision:
        """Count one request against every check, all or nothing (see the module docstring)."""
        ...

    async def undo(self, decision: Decision) -> None:
        """Take back exactly the hits ``decision`` counted (a no-op for a refusal or an expired window)."""
        ...

    async def spent(self, budget: Budget) -> float:
        """The amount recorded on the budget in its current window (dynamic routes' cost limits)."""
        ...

    async def spend(self, budget: Budget, amount: float) -> None:
        """Add ``amount`` to the budget's current window."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...
