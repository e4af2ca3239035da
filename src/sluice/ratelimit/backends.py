"""Chooses the rate limiter from settings."""

from __future__ import annotations

from sluice.ratelimit.base import RateLimiter
from sluice.ratelimit.local import LocalRateLimiter
from sluice.settings import Settings


def make_limiter(settings: Settings) -> RateLimiter:
    """Shared through Redis when ``SLUICE_REDIS_URL`` is set; otherwise in-process (exact for one
    process only: several workers or instances would each allow the full limit)."""
    if settings.redis_url:
        from sluice.ratelimit.redis import RedisRateLimiter

        return RedisRateLimiter(settings.redis_url, settings.rate_limit_on_redis_error,
                                settings.redis_timeout_s, prefix=f"{settings.redis_key_prefix}rl:")
    return LocalRateLimiter()
