"""The caller's per-request annotations: ``cf-aig-metadata`` and ``cf-aig-custom-cost``.

Both are advisory: a malformed value is ignored (returns None), never a reason to fail a request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson

MAX_METADATA_ENTRIES = 5  # Cloudflare keeps the first five and drops the rest
MAX_METADATA_HEADER = 8192
MAX_KEY_LEN = 128
MAX_VALUE_LEN = 1024

Scalar = str | int | float | bool


def _scalar(value: object) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    return isinstance(value, str) and len(value) <= MAX_VALUE_LEN


def clean_metadata(value: object) -> dict[str, Scalar] | None:
    """A flat object of string/number/bool values, first five entries kept; anything else → None."""
    if not isinstance(value, dict):
        return None
    out: dict[str, Scalar] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LEN or not _scalar(item):
            return None  # nested or oversized metadata is refused whole, not half-kept
        if len(out) < MAX_METADATA_ENTRIES:
            out[key] = item
    return out


def parse_metadata(header: str | None) -> dict[str, Scalar] | None:
    if not header or len(header) > MAX_METADATA_HEADER:
        return None
    try:
        return clean_metadata(orjson.loads(header))
    except orjson.JSONDecodeError:
        return None


def metadata_text(metadata: dict[str, Scalar] | None) -> str | None:
    """Canonical JSON (sorted keys, no spaces): the Logs API filters rely on this exact form."""
    if not metadata:
        return None
    return orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True, slots=True)
class CustomCost:
    per_token_in: float | None = None
    per_token_out: float | None = None
    total_cost: float | None = None

    def cost(self, tokens_in: int | None, tokens_out: int | None) -> float:
        if self.total_cost is not None:
            return self.total_cost
        return (tokens_in or 0) * (self.per_token_in or 0.0) + (tokens_out or 0) * (self.per_token_out or 0.0)


def _price(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def parse_custom_cost(header: str | None) -> CustomCost | None:
    """``{"per_token_in": x, "per_token_out": y}`` or ``{"total_cost": z}`` (non-negative numbers)."""
    if not header or len(header) > 1024:
        return None
    try:
        data = orjson.loads(header)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not data:
        return None
    if set(data) == {"total_cost"}:
        total = _price(data["total_cost"])
        return CustomCost(total_cost=total) if total is not None else None
    if not set(data) <= {"per_token_in", "per_token_out"}:
        return None
    prices = {k: _price(v) for k, v in data.items()}
    if any(v is None for v in prices.values()):
        return None
    return CustomCost(per_token_in=prices.get("per_token_in"), per_token_out=prices.get("per_token_out"))
