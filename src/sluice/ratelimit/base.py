"""The rate-limiter seam: the data plane asks "may this request pass?" and nothing more.

Implementations: ``local.LocalRateLimiter`` (exact, one process). A limiter shared across processes
and instances (not implemented yet) would plug in behind the same Protocol; ``backends.make_limiter`` chooses.
"""

from __future__ import annotations

from typing import Literal, Protocol

Technique = Literal["fixed", "sliding"]


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, period_s: float, technique: Technique) -> float | None:
        """Count one request against ``key``: None when allowed (and counted), else the whole
        number of seconds (>= 1) until a request would be allowed. A rejected hit is not counted."""
        ...

    async def undo(self, key: str, period_s: float, technique: Technique) -> None:
        """Take back the last allowed hit on ``key`` (a later check rejected the same request)."""
        ...

    async def close(self) -> None: ...
