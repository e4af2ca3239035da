"""Cache keys: a pure function of the request, always scoped to one account and one gateway.

``cf-aig-cache-key`` replaces the request-derived part (provider, method, path, query, body) but
never the scope, so two gateways or accounts can never share an entry.
"""

from __future__ import annotations

import hashlib


def gateway_prefix(account_id: str, gateway_id: str) -> str:
    """Every key of a gateway starts with this (used to invalidate a gateway's entries)."""
    return f"{account_id}/{gateway_id}/"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:  # length-prefixed, so ("ab", "c") and ("a", "bc") differ
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def cache_key(account_id: str, gateway_id: str, provider: str, method: str, path: str, query: str,
              body: bytes, custom_key: str | None = None) -> str:
    prefix = gateway_prefix(account_id, gateway_id)
    if custom_key:
        return prefix + "k:" + _digest(custom_key.encode())
    return prefix + "r:" + _digest(provider.encode(), method.upper().encode(), path.encode(), query.encode(),
                                   body)
