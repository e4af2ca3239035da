"""Key pools (docs/gateway.md "Key pools"): which stored key a request starts with and which one it
fails over to. Pure: the keys' health is ``sluice.keyhealth``, the upstream leg ``failover.py``.

Failover applies only on a gateway with ``key_failover``, to a request that uses a stored key it did
not pin (no ``cf-aig-byok-alias``), for a provider with more than one stored key. The pool is the
provider's keys, the default first, then by creation.
"""

from __future__ import annotations

from collections.abc import Mapping

from sluice.keyhealth import FAILED, KeyHealth
from sluice.proxy.credentials import ALIAS_HEADER
from sluice.proxy.state import AccountState, GatewayState, StoredKey

Pool = tuple[StoredKey, ...]


def pool_for(gateway: GatewayState, slug: str, control: Mapping[str, str],
             chosen: StoredKey | None) -> Pool | None:
    """The keys this request may fail over across; None when failover does not apply."""
    if not gateway.key_failover or chosen is None or control.get(ALIAS_HEADER, "").strip():
        return None
    keys = gateway.keys.get(slug)
    return keys.pool if keys is not None and len(keys.pool) > 1 else None


def first(pool: Pool, health: KeyHealth) -> StoredKey:
    """The first usable key; when every key is out, the best bet: the cool-down that ends first, a
    failed key last (the provider's own answer then reaches the client)."""
    for key in pool:
        if health.usable(key.config_id):
            return key

    def back_at(key: StoredKey) -> tuple[bool, float]:
        mark = health.mark(key.config_id)
        if mark is None:
            return (False, 0.0)
        return (mark.state == FAILED, mark.until if mark.until is not None else float("inf"))

    return min(pool, key=back_at)


def others(pool: Pool, tried: StoredKey, health: KeyHealth) -> list[StoredKey]:
    """Usable keys to fail over to, in pool order."""
    return [key for key in pool if key.config_id != tried.config_id and health.usable(key.config_id)]


def forget_rotated(health: KeyHealth, old: AccountState | None, new: AccountState | None) -> None:
    """A key whose config or secret changed (a rotation), or that is gone, loses its mark."""
    if not health or old is None:
        return
    marked = set(health.marked())

    def keys(state: AccountState | None) -> dict[str, StoredKey]:
        found: dict[str, StoredKey] = {}
        for gateway in state.gateways.values() if state is not None else ():
            for provider_keys in gateway.keys.values():
                found.update((k.config_id, k) for k in provider_keys.pool if k.config_id in marked)
        return found

    before, after = keys(old), keys(new)
    for config_id, key in before.items():
        if after.get(config_id) != key:
            health.clear(config_id)
