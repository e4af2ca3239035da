"""Chooses the rate limiter from settings."""

from __future__ import annotations

from sluice.ratelimit.base import RateLimiter
from sluice.ratelimit.local import LocalRateLimiter
from sluice.settings import Settings


def make_limiter(settings: Settings) -> RateLimiter:
    """In-process and exact for one process."""
    return LocalRateLimiter()
