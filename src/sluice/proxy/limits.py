"""A request's rate limits, in the order docs/gateway.md states: the gateway's, then the stored key's.

Pure decisions over a ``RateLimiter`` (which holds the clock): a refusal is a 429
(``GatewayRateLimited`` or ``KeyRateLimited``) with ``Retry-After``; nothing here does I/O. A
request the key limit refuses gives back the gateway count it took, so a request that was never
forwarded never uses up gateway quota.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sluice.errors import GatewayRateLimited, KeyRateLimited
from sluice.ratelimit.base import RateLimiter

if TYPE_CHECKING:
    from sluice.proxy.state import GatewayState, StoredKey


def gateway_limited(gateway: GatewayState) -> bool:
    return gateway.rate_limit > 0 and gateway.rate_interval > 0


async def admit(limiter: RateLimiter, gateway: GatewayState, key: StoredKey | None) -> None:
    """Count the request against the gateway's limit, then the key's (``key`` None: no key limit yet)."""
    if gateway_limited(gateway):
        wait = await limiter.hit(gateway.rate_key, gateway.rate_limit, gateway.rate_interval,
                                 gateway.rate_technique)  # type: ignore[arg-type]
        if wait is not None:
            raise GatewayRateLimited(f"rate limit exceeded for gateway {gateway.id!r}: at most "
                                     f"{gateway.rate_limit} requests per {gateway.rate_interval}s",
                                     {"retry-after": str(int(wait))})
    await admit_key(limiter, gateway, key)


async def admit_key(limiter: RateLimiter, gateway: GatewayState, key: StoredKey | None) -> None:
    """The stored key's limit (fixed windows); a refusal gives back the gateway count ``admit`` took."""
    if key is None or key.rate_limit <= 0:
        return
    wait = await limiter.hit(f"key:{key.config_id}", key.rate_limit, key.rate_limit_period, "fixed")
    if wait is None:
        return
    if gateway_limited(gateway):
        await limiter.undo(gateway.rate_key, gateway.rate_interval, gateway.rate_technique)  # type: ignore[arg-type]
    raise KeyRateLimited(f"rate limit exceeded for stored key {key.alias!r} of provider "
                         f"{key.provider!r}: at most {key.rate_limit} requests per "
                         f"{key.rate_limit_period}s", {"retry-after": str(int(wait))})
