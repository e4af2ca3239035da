"""Provider-key activity: per config ``last_used_at``, request and error counts, staleness.

Counted in memory from Exchanges (cheap, on the request path), written in the background by adding
this process's deltas to the stored totals, so several processes sharing a database add up.
``annotate`` reads memory only (stored totals as last loaded + this process's unflushed deltas).
Only upstream uses of a stored key count: requests rejected before forwarding and cache hits did
not use the key. A deleted config's row goes with it (``forget_config``, in the delete's
transaction); a use that finishes after the delete, here or in another process, may add the row
back, so every write also sweeps rows whose config is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.clock import now as utc_now
from sluice.clock import rfc3339
from sluice.exchange import Exchange
from sluice.store.activity import (
    add_activity,
    all_activity,
    delete_config_activity,
    delete_gateway_activity,
    sweep_activity,
)
from sluice.store.database import Database
from sluice.tasks import Periodic

log = structlog.get_logger("sluice.activity")

STALE_AFTER = timedelta(days=90)


@dataclass(slots=True)
class Counts:
    account_id: str
    gateway_id: str
    last_used_at: str | None = None
    requests: int = 0
    errors: int = 0
    # newest use as a Unix time; formatted lazily (``settle``): the hot path only compares
    last_ts: float = 0.0


def settle(counts: Counts) -> Counts:
    """Fold ``last_ts`` into ``last_used_at`` (RFC 3339), keeping the newer of the two."""
    if counts.last_ts:
        stamp = rfc3339(datetime.fromtimestamp(counts.last_ts, tz=UTC))
        if counts.last_used_at is None or stamp > counts.last_used_at:
            counts.last_used_at = stamp
        counts.last_ts = 0.0
    return counts


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


class ActivityTracker:
    def __init__(self, db: Database, *, interval_s: float = 5.0,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.db = db
        self.interval_s = interval_s
        self.clock = clock
        self._stored: dict[str, Counts] = {}
        self._pending: dict[str, Counts] = {}
        self._inflight: dict[str, Counts] = {}  # being written: counted until the reload shows them
        self._lock = asyncio.Lock()
        self._job = Periodic("sluice-activity", interval_s, self.flush)

    def record(self, exchange: Exchange) -> None:
        if not exchange.config_id or exchange.rejected_by or exchange.cached:
            return
        counts = self._pending.get(exchange.config_id)
        if counts is None:
            counts = self._pending[exchange.config_id] = Counts(exchange.account_id, exchange.gateway_id)
        counts.requests += 1
        counts.errors += 0 if exchange.success else 1
        if exchange.started_at > counts.last_ts:
            counts.last_ts = exchange.started_at

    def annotate(self, wire: dict[str, Any]) -> dict[str, Any]:
        """Adds last_used_at, request_count, error_count and stale to a provider config's wire dict."""
        tables = (self._stored, self._inflight, self._pending)
        parts = [settle(c) for c in (table.get(wire["id"]) for table in tables) if c]
        last = max((c.last_used_at for c in parts if c.last_used_at), default=None)
        since = last or wire.get("created_at")
        stale = since is not None and self.clock() - _parse(since) >= STALE_AFTER
        return {**wire, "last_used_at": last, "request_count": sum(c.requests for c in parts),
                "error_count": sum(c.errors for c in parts), "stale": stale}

    async def start(self) -> None:
        await self.load()
        self._job.start()

    async def close(self) -> None:
        await self._job.stop()
        await self.flush()

    async def load(self) -> None:
        async with self.db.read() as conn:
            rows = await all_activity(conn)
        self._stored = {r.config_id: Counts(r.account_id, r.gateway_id, r.last_used_at, int(r.request_count),
                                            int(r.error_count)) for r in rows}
        self._inflight = {}  # same step as the reload: no moment counts them twice or not at all

    async def flush(self) -> None:
        """Add this process's deltas to the stored totals, then reload them (other processes' too)."""
        async with self._lock:
            pending, self._pending = self._pending, {}
            for counts in pending.values():
                settle(counts)
            self._inflight = pending
            try:
                if pending:
                    async with self.db.begin(urgent=False) as conn:
                        for config_id, counts in pending.items():
                            await add_activity(conn, self.db.dialect, config_id, counts.account_id,
                                               counts.gateway_id, counts.last_used_at, counts.requests,
                                               counts.errors)
                        await sweep_activity(conn)
            except Exception:
                self._inflight = {}
                for config_id, counts in pending.items():  # keep the deltas for the next try
                    self._merge(config_id, counts)
                raise
            await self.load()

    def _merge(self, config_id: str, counts: Counts) -> None:
        settle(counts)
        current = settle(self._pending.setdefault(config_id, Counts(counts.account_id, counts.gateway_id)))
        current.requests += counts.requests
        current.errors += counts.errors
        latest = counts.last_used_at
        if latest and (current.last_used_at is None or latest > current.last_used_at):
            current.last_used_at = latest

    async def forget_config(self, conn: AsyncConnection, config_id: str) -> None:
        """Inside the config-delete transaction: its stored counts and this process's go."""
        await delete_config_activity(conn, config_id)
        for table in (self._stored, self._inflight, self._pending):
            table.pop(config_id, None)

    async def forget_gateway(self, conn: AsyncConnection, account_id: str, gateway_id: str) -> None:
        await delete_gateway_activity(conn, account_id, gateway_id)
        for table in (self._stored, self._inflight, self._pending):
            gone = [k for k, c in table.items() if (c.account_id, c.gateway_id) == (account_id, gateway_id)]
            for config_id in gone:
                del table[config_id]

