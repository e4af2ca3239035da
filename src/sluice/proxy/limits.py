"""A request's rate limits, in the order docs/gateway.md states: the gateway's, then the stored key's.

Pure decisions over a ``RateLimiter`` (which holds the clock): every limit of a request is decided in
one ``admit`` call (one Redis round trip with the shared limiter), and a refusal is a 429
(``GatewayRateLimited`` or ``KeyRateLimited``) with ``Retry-After``; nothing here does I/O. A
request the key limit refuses keeps none of the gateway count (the limiter takes it back in the
same step), so a request that was never forwarded never uses up gateway quota.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sluice.errors import GatewayRateLimited, KeyRateLimited
from sluice.ratelimit.base import ADMITTED, Check, Decision, RateLimiter
from sluice.ratelimit.local import LocalRateLimiter

if TYPE_CHECKING:
    from sluice.proxy.state import GatewayState, StoredKey


def gateway_limited(gateway: GatewayState) -> bool:
    return gateway.rate_limit > 0 and gateway.rate_interval > 0


MEMO_MAX = 4096  # (gateway, key) limit combinations remembered; the memo is emptied when full
NO_CHECKS: tuple[Check, ...] = ()
_memo: dict[tuple[object, ...], tuple[Check, ...]] = {}


def checks(gateway: GatewayState | None, key: StoredKey | None) -> tuple[Check, ...]:
    """The gateway's limit, then the stored key's (fixed windows); ``key`` None: no key limit;
    ``gateway`` None: no gateway limit (a key-pool failover: the gateway counted the request once).

    Remembered by the values they are made of (the same tuple for every request of a gateway and
    key; a changed limit makes a new one): building them was ~a tenth of the limiter's CPU per request,
    and the Redis limiter keeps its encoded keys by the tuple. The memo keys of the four shapes
    (gateway and/or key) differ in length, so they never collide."""
    limits = () if gateway is None else (gateway.account_id, gateway.id, gateway.rate_limit,
                                         gateway.rate_interval, gateway.rate_technique)
    memo = limits if key is None else (*limits, key.config_id, key.rate_limit, key.rate_limit_period)
    found = _memo.get(memo)
    if found is None:
        if len(_memo) >= MEMO_MAX:
            _memo.clear()
        found = _memo[memo] = _make_checks(gateway, key)
    return found


def _make_checks(gateway: GatewayState | None, key: StoredKey | None) -> tuple[Check, ...]:
    found = []
    if gateway is not None and gateway_limited(gateway):
        found.append(Check(gateway.rate_key, gateway.rate_limit, gateway.rate_interval,
                           gateway.rate_technique))  # type: ignore[arg-type]
    if key is not None and key.rate_limit > 0:
        found.append(Check(f"key:{key.config_id}", key.rate_limit, key.rate_limit_period, "fixed"))
    return tuple(found) if found else NO_CHECKS


async def admit(limiter: RateLimiter, gateway: GatewayState | None, key: StoredKey | None) -> Decision:
    """Count the request against the gateway's limit and the key's, or raise the 429 of the first
    that refuses. The returned decision can be given back with ``limiter.undo``."""
    wanted = checks(gateway, key)
    if not wanted:
        return ADMITTED
    # The in-process limiter decides synchronously: no coroutine to create and await per request.
    decision = limiter.decide(wanted) if type(limiter) is LocalRateLimiter else await limiter.admit(wanted)
    refused = decision.refused
    if refused is None:
        return decision
    headers = {"retry-after": str(int(decision.retry_after))}
    by_gateway = gateway is not None and refused.key == gateway.rate_key
    if decision.unavailable:
        refusal = GatewayRateLimited if by_gateway else KeyRateLimited
        raise refusal("rate limit could not be checked (the shared rate-limit store is unreachable); "
                      "refused by the gateway's outage policy", headers)
    if gateway is not None and (by_gateway or key is None):
        raise GatewayRateLimited(f"rate limit exceeded for gateway {gateway.id!r}: at most "
                                 f"{gateway.rate_limit} requests per {gateway.rate_interval}s", headers)
    assert key is not None  # refused, and not by the gateway: by the key
    raise KeyRateLimited(f"rate limit exceeded for stored key {key.alias!r} of provider {key.provider!r}: "
                         f"at most {key.rate_limit} requests per {key.rate_limit_period}s", headers)
