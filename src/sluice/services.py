"""What every request handler needs, built once by the composition root (``app.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from sluice.providers.registry import Provider
from sluice.secrets.crypto import Keyring
from sluice.settings import Settings
from sluice.store.database import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    keyring: Keyring
    catalog: dict[str, Provider]
    # Called after a committed change so this process's in-memory state reflects it before the
    # response goes out (other processes pick it up from the change feed).
    on_change: Callable[[str], Awaitable[None]] = field(default=lambda account_id: _nothing())
    extras: dict[str, Any] = field(default_factory=dict)


async def _nothing() -> None:
    return None
