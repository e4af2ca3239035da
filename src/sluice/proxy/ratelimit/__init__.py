"""Rate limiters behind one Protocol (``base.RateLimiter``); ``make_limiter`` picks one from settings."""

from __future__ import annotations

from sluice.proxy.ratelimit.base import RateLimiter, Technique
from sluice.proxy.ratelimit.local import LocalRateLimiter
from sluice.settings import Settings


def make_limiter(settings: Settings) -> RateLimiter:
    """In-process and exact for one process. (With SLUICE_REDIS_URL a shared limiter belongs here.)"""
    return LocalRateLimiter()


__all__ = ["LocalRateLimiter", "RateLimiter", "Technique", "make_limiter"]
