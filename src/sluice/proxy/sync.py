"""Keeps the in-memory state (``state.py``) in step with the database, off the request path.

* ``refresh(account)``: called by this process's management API after a commit, before it answers.
* a poller reads the change feed every ``change_poll_interval_s`` for changes made elsewhere (CLI,
  other workers and instances); a ``kek`` change reloads the keyring first.
* token use (``last_used_on``) is queued by requests and written here in batches.
All reloads are serialised by one lock, so an older read can never overwrite a newer one.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any, Iterable

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.clock import now, rfc3339
from sluice.errors import CryptoError
from sluice.keymatch import EMPTY, KeyMatcher
from sluice.proxy.state import AccountState, build_account
from sluice.secrets.crypto import Keyring
from sluice.secrets.vault import open_row
from sluice.services import Services
from sluice.store import queries
from sluice.tasks import Periodic

log = structlog.get_logger("sluice.proxy")
TOUCH_EVERY_S = 5.0  # last_used_on is coarse; one write per few seconds is plenty


class StateSync:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.accounts: dict[str, AccountState] = {}
        self.touched: set[str] = set()  # token ids used since the last flush
        self._seq = 0
        self._lock = asyncio.Lock()
        self._job = Periodic("sluice-state-poll", max(0.05, services.settings.change_poll_interval_s),
                             self._tick)
        self._last_touch = time.monotonic()
        self._matchers: dict[str, tuple[bytes, KeyMatcher]] = {}  # account -> (digest of its keys, matcher)

    async def start(self) -> None:
        db = self.services.db
        async with db.begin() as conn:
            self._seq = await queries.latest_change(conn)  # before loading: no change can slip between
            account_ids = [a["id"] for a in await queries.list_accounts(conn)]
        for account_id in account_ids:
            await self.refresh(account_id)
        self._job.start()

    async def close(self) -> None:
        await self._job.stop()
        await self.flush_touches()

    async def refresh(self, account_id: str) -> None:
        async with self._lock:
            await self._reload(account_id)

    async def _reload(self, account_id: str) -> None:
        async with self.services.db.begin() as conn:
            gateways, configs, sealed, tokens = await load_account(conn, account_id)
        plaintext, failed = open_secrets(self.services.keyring, sealed)
        if failed:  # a KEK this process has not loaded yet (rotation in progress): re-read and retry
            self._reload_keyring()
            retried, failed = open_secrets(self.services.keyring, [r for r in sealed if r["id"] in failed])
            plaintext.update(retried)
        for secret_id in failed:
            log.warning("stored key could not be decrypted; its configs are unavailable", secret_id=secret_id)
        matcher = await self._matcher(account_id, plaintext.values())
        state = build_account(gateways, configs, plaintext, tokens, self.services.catalog, matcher)
        if gateways or tokens:
            self.accounts[account_id] = state
        else:
            self.accounts.pop(account_id, None)
            self._matchers.pop(account_id, None)

    async def _matcher(self, account_id: str, values: Iterable[str]) -> KeyMatcher:
        """The account's key matcher, rebuilt only when its set of key values changed. Compiled in a
        thread: an account holding many keys takes milliseconds (measured: ~0.1 s for 500 keys)."""
        unique = sorted(set(values))
        if not unique:
            self._matchers.pop(account_id, None)
            return EMPTY
        digest = hashlib.sha256("\0".join(unique).encode()).digest()
        known = self._matchers.get(account_id)
        if known is not None and known[0] == digest:
            return known[1]
        matcher = await asyncio.to_thread(KeyMatcher, unique)
        self._matchers[account_id] = (digest, matcher)
        return matcher

    def _reload_keyring(self) -> None:
        try:
            self.services.keys.reload()
        except Exception as exc:  # noqa: BLE001 — keep the old keyring; say only what kind of failure
            log.error("keyring reload failed", error=type(exc).__name__)

    async def poll_once(self) -> None:
        """Apply changes recorded since the last poll (by anyone, this process included)."""
        async with self._lock:
            async with self.services.db.begin() as conn:
                changes = await queries.changes_since(conn, self._seq)
            if not changes:
                return
            if any(c["kind"] == "kek" for c in changes):
                self._reload_keyring()
            for account_id in dict.fromkeys(c["account_id"] for c in changes):
                await self._reload(account_id)
            self._seq = changes[-1]["seq"]

    async def flush_touches(self) -> None:
        if not self.touched:
            return
        ids, self.touched = self.touched, set()
        async with self.services.db.begin() as conn:
            await queries.touch_tokens(conn, sorted(ids), rfc3339(now()))

    async def _tick(self) -> None:
        await self.poll_once()
        if time.monotonic() - self._last_touch >= TOUCH_EVERY_S:
            self._last_touch = time.monotonic()
            await self.flush_touches()


ALL = 10**9  # "every row" for the paged list queries


def open_secrets(keyring: Keyring, sealed: list[dict[str, Any]]) -> tuple[dict[str, str], list[str]]:
    """Decrypt every row; returns plaintext by secret id and the ids that did not open."""
    opened: dict[str, str] = {}
    failed: list[str] = []
    for row in sealed:
        try:
            opened[row["id"]] = open_row(keyring, row)
        except CryptoError:
            failed.append(row["id"])
    return opened, failed


async def load_account(conn: AsyncConnection, account_id: str) -> tuple[list, list, list, list]:
    """The rows one account's state is built from (gateways, configs, sealed secrets, tokens)."""
    gateways, _ = await queries.list_gateways(conn, account_id, None, 1, ALL)
    configs, _ = await queries.list_configs(conn, account_id, None, 1, ALL)
    secret_ids = sorted({c["secret_id"] for c in configs})
    sealed = await queries.sealed_secrets(conn, secret_ids) if secret_ids else []
    tokens, _ = await queries.list_tokens(conn, account_id, 1, ALL)
    return gateways, configs, sealed, tokens
