"""How a buffered request is retried on a connection failure or a 5xx (``cf-aig-max-attempts``,
``cf-aig-retry-delay``, ``cf-aig-backoff`` or the gateway's defaults). Pure: ``forward.py`` acts on it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 1  # total attempts, 1..5
    delay_ms: int = 0
    backoff: str = "constant"  # constant | linear | exponential

    def delay_s(self, retry: int) -> float:
        """Pause before retry number ``retry`` (1 = the first retry)."""
        if self.backoff == "linear":
            return self.delay_ms * retry / 1000
        if self.backoff == "exponential":
            return self.delay_ms * 2.0 ** (retry - 1) / 1000
        return self.delay_ms / 1000


NO_RETRY = RetryPolicy()
