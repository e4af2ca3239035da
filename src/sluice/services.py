"""What every request handler needs, built once by the composition root (``app.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.cache.base import ResponseCache
from sluice.exchange import NullObserver, Observer
from sluice.keyhealth import KeyHealth
from sluice.observe.activity import ActivityTracker
from sluice.providers.registry import Provider
from sluice.secrets.crypto import Keyring
from sluice.secrets.keyfile import load_keyring
from sluice.settings import Settings
from sluice.store.database import Database

ChangeHook = Callable[[str], Awaitable[None]]
GatewayDeleteHook = Callable[[AsyncConnection, str, str], Awaitable[None]]


class Keys:
    """The loaded keyring. ``reload`` re-reads the key source after a master-key rotation elsewhere;
    a failed reload raises and leaves the current keyring in place."""

    def __init__(self, settings: Settings, keyring: Keyring | None = None) -> None:
        self._settings = settings
        self.keyring = keyring if keyring is not None else load_keyring(settings)

    def reload(self) -> None:
        self.keyring = load_keyring(self._settings)


class ChangeHooks:
    """Run after a committed change, before the response goes out, so this process's in-memory
    state reflects it (other processes pick it up from the change feed)."""

    def __init__(self) -> None:
        self._hooks: list[ChangeHook] = []

    def add(self, hook: ChangeHook) -> None:
        self._hooks.append(hook)

    async def __call__(self, account_id: str) -> None:
        for hook in self._hooks:
            await hook(account_id)


async def _no_gateway_hook(conn: AsyncConnection, account_id: str, gateway_id: str) -> None:
    return None


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    keys: Keys
    catalog: dict[str, Provider]
    observer: Observer = field(default_factory=NullObserver)
    cache: ResponseCache | None = None
    activity: ActivityTracker | None = None
    # Inside the gateway-delete transaction: its logs, key activity and cached responses go too.
    on_gateway_delete: GatewayDeleteHook = _no_gateway_hook
    on_change: ChangeHooks = field(default_factory=ChangeHooks)
    # Key pools: stored keys out of service in this process (the data plane marks them; the
    # provider-config API and /metrics show them).
    key_health: KeyHealth = field(default_factory=KeyHealth)

    @property
    def keyring(self) -> Keyring:
        return self.keys.keyring
