"""Keeps the in-memory state (``state.py``) in step with the database, off the request path.

* ``refresh(account)``: called by this process's management API after a commit, before it answers.
* the change feed (``changes``) is read every ``change_poll_interval_s``, and at once when
  PostgreSQL says a change committed (``store/notify.py``, LISTEN/NOTIFY): changes made elsewhere
  (CLI, other workers and instances). The read cannot skip a commit that lands out of ``seq`` order
  (``feed.py``); a ``kek`` change reloads the keyring first. Feed rows a reload has already seen
  (this process's own writes, mostly) do not reload their account a second time.
* the feed is pruned of rows older than ``FEED_RETENTION_S``; a process that could not read it for
  ``RESYNC_AFTER_S`` (long enough for rows it needs to be pruned) reloads every account instead.
* token use (``last_used_on``) is queued by requests and written here in batches.
All reloads are serialised by one lock, so an older read can never overwrite a newer one.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.clock import now, rfc3339
from sluice.errors import CryptoError
from sluice.keymatch import EMPTY, KeyMatcher
from sluice.proxy.feed import FeedCursor, accounts_to_reload, keyring_changed
from sluice.proxy.pools import forget_rotated
from sluice.proxy.state import AccountState, account_providers, build_account, custom_header_values
from sluice.secrets.crypto import Keyring
from sluice.secrets.vault import open_row
from sluice.services import Services
from sluice.store import queries
from sluice.store import routes as route_store
from sluice.store.notify import ChangeListener
from sluice.tasks import Periodic

log = structlog.get_logger("sluice.proxy")
TOUCH_EVERY_S = 5.0  # last_used_on is coarse; one write per few seconds is plenty
FEED_RETENTION_S = 3600.0  # feed rows older than this are pruned (a Sluice transaction is far shorter)
PRUNE_EVERY_S = 60.0
RESYNC_AFTER_S = FEED_RETENTION_S / 2  # no successful read for this long: reload everything


class StateSync:
    def __init__(self, services: Services, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.services = services
        self.accounts: dict[str, AccountState] = {}
        self.touched: set[str] = set()  # token ids used since the last flush
        self.clock = clock
        self._cursor = FeedCursor(0)
        self._last_read = clock()
        self._lock = asyncio.Lock()
        self._job = Periodic("sluice-state-poll", max(0.05, services.settings.change_poll_interval_s),
                             self._tick)
        self._listener = ChangeListener(services.db.url, self._job.wake) \
            if services.db.dialect == "postgresql" else None
        self._last_touch = self._last_prune = time.monotonic()
        self._matchers: dict[str, tuple[bytes, KeyMatcher]] = {}  # account -> (digest of its keys, matcher)
        # Feed rows (seq -> xid) a reload has already seen: the poll does not reload their account
        # again for them (every management write in this process would otherwise load its account
        # twice). Kept while they can still be read, i.e. at or above the cursor's horizon.
        self._fresh: dict[int, int] = {}

    async def start(self) -> None:
        async with self._lock:
            await self._load_all()
        self._job.start()
        if self._listener is not None:
            self._listener.start()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
        await self._job.stop()
        await self.flush_touches()

    async def refresh(self, account_id: str) -> None:
        async with self._lock:
            await self._reload(account_id)

    async def _load_all(self) -> None:
        """Every account, with the feed read from a horizon taken first: no change slips between."""
        async with self.services.db.read() as conn:
            horizon = await queries.feed_horizon(conn)
            account_ids = [a["id"] for a in await queries.list_accounts(conn)]
        self._fresh.clear()
        for account_id in dict.fromkeys([*account_ids, *self.accounts]):
            await self._reload(account_id, horizon)
        self._cursor = FeedCursor(horizon)
        self._last_read = self.clock()

    async def _reload(self, account_id: str, horizon: int | None = None) -> None:
        """Load one account's state; ``horizon``: the feed's, when the cursor is about to be reset to it."""
        async with self.services.db.read() as conn:
            # First: under PostgreSQL's read committed the rows read after these are at least as new.
            applied = await queries.account_changes_from(
                conn, account_id, self._cursor.horizon if horizon is None else horizon)
            gateways, configs, sealed, tokens, custom = await load_account(conn, account_id)
            routes = await route_store.deployed(conn, account_id)
        plaintext, failed = open_secrets(self.services.keyring, sealed)
        if failed:  # a KEK this process has not loaded yet (rotation in progress): re-read and retry
            self._reload_keyring()
            retried, failed = open_secrets(self.services.keyring, [r for r in sealed if r["id"] in failed])
            plaintext.update(retried)
        for secret_id in failed:
            log.warning("stored key could not be decrypted; its configs are unavailable", secret_id=secret_id)
        providers = account_providers(self.services.catalog, custom, plaintext)
        keys = [plaintext[c["secret_id"]] for c in configs if c["secret_id"] in plaintext]
        matcher = await self._matcher(account_id, [*keys, *custom_header_values(providers)])
        state = build_account(gateways, configs, plaintext, tokens, providers, matcher, routes)
        # A rotated key (config or secret changed) is back in its pool.
        forget_rotated(self.services.key_health, self.accounts.get(account_id), state)
        self._fresh.update(applied)
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
        """Apply changes committed since the last read (by anyone, this process included), except
        those a reload has already loaded."""
        async with self._lock:
            if self.clock() - self._last_read > RESYNC_AFTER_S:
                log.warning("change feed not read for too long; reloading every account")
                self._reload_keyring()
                await self._load_all()
                return
            async with self.services.db.read() as conn:
                horizon = await queries.feed_horizon(conn)  # first: see feed.py
                rows = await queries.changes_from(conn, self._cursor.horizon)
            unread = self._cursor.unread(rows)
            if keyring_changed(unread):
                self._reload_keyring()
            for account_id in accounts_to_reload([row for row in unread if row["seq"] not in self._fresh]):
                await self._reload(account_id)
            self._cursor = self._cursor.advance(rows, horizon)  # only once every reload succeeded
            self._fresh = {seq: xid for seq, xid in self._fresh.items() if xid >= self._cursor.horizon}
            self._last_read = self.clock()

    async def prune_feed(self) -> int:
        before = rfc3339(now() - timedelta(seconds=FEED_RETENTION_S))
        async with self.services.db.begin(urgent=False) as conn:
            return await queries.prune_changes(conn, before)

    async def flush_touches(self) -> None:
        if not self.touched:
            return
        ids, self.touched = self.touched, set()
        async with self.services.db.begin(urgent=False) as conn:
            await queries.touch_tokens(conn, sorted(ids), rfc3339(now()))

    async def _tick(self) -> None:
        await self.poll_once()
        if time.monotonic() - self._last_touch >= TOUCH_EVERY_S:
            self._last_touch = time.monotonic()
            await self.flush_touches()
        if time.monotonic() - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = time.monotonic()
            await self.prune_feed()


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


async def load_account(conn: AsyncConnection, account_id: str) -> tuple[list, list, list, list, list]:
    """The rows one account's state is built from (gateways, configs, sealed secrets, tokens, custom
    providers)."""
    gateways, _ = await queries.list_gateways(conn, account_id, None, 1, ALL)
    configs, _ = await queries.list_configs(conn, account_id, None, 1, ALL)
    custom, _ = await queries.list_custom_providers(conn, account_id)
    secret_ids = sorted({c["secret_id"] for c in configs}
                        | {c["headers_secret_id"] for c in custom if c["headers_secret_id"]})
    sealed = await queries.sealed_secrets(conn, secret_ids) if secret_ids else []
    tokens, _ = await queries.list_tokens(conn, account_id, 1, ALL)
    return gateways, configs, sealed, tokens, custom
