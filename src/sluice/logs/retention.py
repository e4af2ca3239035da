"""``log_management`` (max stored logs per gateway) and what to do when a batch would pass it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_LIMIT = 10_000_000  # Cloudflare's per-gateway cap, used when the gateway sets none
STOP_INSERTING = "STOP_INSERTING"
DELETE_OLDEST = "DELETE_OLDEST"


@dataclass(frozen=True, slots=True)
class Policy:
    limit: int = DEFAULT_LIMIT
    strategy: str = STOP_INSERTING  # Cloudflare: when full, new logs stop unless auto cleanup is on


def policy_of(gateway: dict[str, Any]) -> Policy:
    limit = gateway.get("log_management")
    strategy = gateway.get("log_management_strategy")
    return Policy(limit if isinstance(limit, int) and limit > 0 else DEFAULT_LIMIT,
                  DELETE_OLDEST if strategy == DELETE_OLDEST else STOP_INSERTING)


def plan(stored: int, incoming: int, policy: Policy) -> tuple[int, int]:
    """(how many of the incoming logs to insert, how many of the oldest stored ones to delete first).

    DELETE_OLDEST deletes in chunks of 0.1 % of the limit (at least one), as Cloudflare does, so a
    full gateway is not trimmed by a handful of rows on every batch.
    """
    limit = policy.limit
    if stored + incoming <= limit:
        return incoming, 0
    if policy.strategy == STOP_INSERTING:
        return max(0, limit - stored), 0
    if incoming >= limit:
        return limit, stored
    chunk = max(1, limit // 1000)
    over = stored + incoming - limit
    return incoming, min(stored, -(-over // chunk) * chunk)
