"""``LogSink``: the request-log Observer. ``record`` appends to a bounded in-memory buffer and
returns; a background task writes the buffer in batches: rows are built, redacted, compressed
and written in one transaction, all in one hop to the database's batch thread
(``Database.write_batch``).

When the buffer is full a new log is dropped and counted — a request never waits for logging.
``flush()`` returns once everything recorded before it is committed (SQLite runs with
``synchronous=FULL``, so a flushed log survives ``kill -9``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Callable

import structlog
from sqlalchemy import Connection

from sluice.observe import bodies, logstore, retention
from sluice.observe.records import log_row
from sluice.proxy.exchange import Exchange
from sluice.store import Database, queries
from sluice.tasks import Periodic

log = structlog.get_logger("sluice.logs")

COUNT_TTL_S = 30.0  # a cached per-gateway log count is re-read from the database this often
BATCH_MAX_BYTES = 8 << 20
OVERHEAD = 1024  # bytes accounted per buffered log besides its bodies


def gateway_policy(conn: Connection, account_id: str, gateway_id: str) -> retention.Policy | None:
    """The gateway's log limits; None when the gateway no longer exists (its logs are dropped)."""
    gateway = queries.get_gateway_sync(conn, account_id, gateway_id)
    return retention.policy_of(gateway) if gateway is not None else None


class LogSink:
    def __init__(self, db: Database, *, interval_s: float, body_max_bytes: int, buffer_max_bytes: int = 16 << 20,
                 buffer_max_logs: int = 50_000, batch_size: int = 2000,
                 on_drop: Callable[[str, int], None] | None = None) -> None:
        self.db = db
        self.interval_s = interval_s
        self.body_max_bytes = body_max_bytes
        self.buffer_max_bytes = buffer_max_bytes
        self.buffer_max_logs = buffer_max_logs
        self.batch_size = batch_size
        self.on_drop = on_drop
        self.dropped: dict[str, int] = {}
        self._buffer: deque[Exchange] = deque()
        self._bytes = 0  # buffered logs
        self._writing = 0  # logs taken for the batch being written: they still hold memory
        self._counts: dict[tuple[str, str], tuple[int, float]] = {}
        self._lock = asyncio.Lock()
        self._job = Periodic("sluice-log-sink", interval_s, self.flush)

    # -- the hot path ------------------------------------------------------------------------------

    def record(self, exchange: Exchange) -> None:
        if not exchange.collect_log:
            return
        size = self._size(exchange)
        if len(self._buffer) >= self.buffer_max_logs or self._bytes + self._writing + size > self.buffer_max_bytes:
            self._drop("buffer_full", 1)
            return
        self._buffer.append(exchange)
        self._bytes += size

    def _size(self, exchange: Exchange) -> int:
        return OVERHEAD + min(len(exchange.request_body), self.body_max_bytes) + min(
            len(exchange.response_body), self.body_max_bytes)

    def _drop(self, reason: str, count: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count
        if self.on_drop is not None:
            self.on_drop(reason, count)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    # -- background --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._job.start()

    async def close(self) -> None:
        await self._job.stop()
        await self.flush()

    async def flush(self) -> None:
        """Write every buffered log; returns when they are committed (or dropped and counted)."""
        async with self._lock:
            while self._buffer:
                batch = self._take_batch()
                try:
                    await self._write(batch)
                except Exception as exc:  # noqa: BLE001 — counted, never retried forever
                    log.error("request log batch lost", error=type(exc).__name__, logs=len(batch))
                    self._drop("write_failed", len(batch))
                    self._counts.clear()
                finally:
                    self._writing = 0

    def _take_batch(self) -> list[Exchange]:
        """Up to ``batch_size`` logs and about ``BATCH_MAX_BYTES``. Until the batch is written its
        logs still count against ``buffer_max_bytes``: the budget bounds all request-log memory."""
        batch: list[Exchange] = []
        size = 0
        while self._buffer and len(batch) < self.batch_size and size < BATCH_MAX_BYTES:
            exchange = self._buffer.popleft()
            size += self._size(exchange)
            batch.append(exchange)
        self._bytes -= size
        self._writing = size
        return batch

    def _group_rows(self, batch: list[Exchange]) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """Rows per gateway (redacted, large bodies compressed), built off the event loop: on SQLite
        in the batch thread, inside the transaction; on PostgreSQL in a worker thread before it.
        When the gateway is saturated that thread and the event loop take turns with the GIL (5 ms
        switch interval), so requests slow down a little instead of logs being shed. Measured
        against the former row building in time slices on the loop: as few drops in stream cells
        (3-5 % at 100 % CPU, from 14-50 % before the single-hop batch writer), with less code."""
        by_gateway: dict[tuple[str, str], list[dict[str, Any]]] = {}
        cap = self.body_max_bytes
        for exchange in batch:
            row = log_row(exchange)
            row["request_body"] = row["request_body"][:cap]
            row["response_body"] = row["response_body"][:cap]
            bodies.pack(row)
            by_gateway.setdefault((row["account_id"], row["gateway_id"]), []).append(row)
        return by_gateway

    async def _write(self, batch: list[Exchange]) -> None:
        now = time.monotonic()
        known = {key: count for key, (count, at) in self._counts.items() if now - at <= COUNT_TTL_S}
        if self.db.dialect == "sqlite":
            outcomes = await self.db.write_batch(lambda conn: self._write_groups(conn, self._group_rows(batch), known))
        else:  # PostgreSQL's batch work runs on the event loop (run_sync): rows are built in a thread first
            grouped = await asyncio.to_thread(self._group_rows, batch)
            outcomes = await self.db.write_batch(lambda conn: self._write_groups(conn, grouped, known))
        for key, (stored, counted, dropped) in outcomes.items():
            for reason, count in dropped.items():
                self._drop(reason, count)
            if stored is None:
                self._counts.pop(key, None)
            else:
                self._counts[key] = (stored, now if counted else self._counts.get(key, (0, now))[1])

    def _write_groups(self, conn: Connection, by_gateway: dict[tuple[str, str], list[dict[str, Any]]],
                      known: dict[tuple[str, str], int]) -> dict[tuple[str, str], tuple[int | None, bool, dict[str, int]]]:
        """The batch's transaction (in the database's batch thread: touches no sink state).

        Per gateway: (logs stored after the batch or None, whether that was counted afresh, drops).
        """
        outcomes: dict[tuple[str, str], tuple[int | None, bool, dict[str, int]]] = {}
        for (account_id, gateway_id), group in by_gateway.items():
            policy = gateway_policy(conn, account_id, gateway_id)
            if policy is None:
                outcomes[(account_id, gateway_id)] = (None, False, {"gateway_deleted": len(group)})
                continue
            # The cached count, re-read when old or when the limit is close.
            stored = known.get((account_id, gateway_id))
            counted = stored is None or stored + len(group) > policy.limit
            if counted:
                stored = logstore.count_logs_sync(conn, account_id, gateway_id)
            assert stored is not None
            incoming = len(group)
            keep, remove = retention.plan(stored, incoming, policy)
            if remove:
                remove = logstore.delete_oldest(conn, account_id, gateway_id, remove)
            group = sorted(group, key=lambda r: r["id"])  # ULIDs: arrival order
            # STOP_INSERTING: the first ones arrived while there was room; DELETE_OLDEST: newest win.
            group = group[:keep] if policy.strategy == retention.STOP_INSERTING else group[len(group) - keep:]
            logstore.insert_logs(conn, group)
            dropped = {"log_limit": incoming - keep} if keep < incoming else {}
            outcomes[(account_id, gateway_id)] = (stored - remove + len(group), counted, dropped)
        return outcomes

    def forget_gateway(self, account_id: str, gateway_id: str) -> None:
        """A deleted gateway: drop its buffered logs and its cached count."""
        self._counts.pop((account_id, gateway_id), None)
        kept = deque(e for e in self._buffer if (e.account_id, e.gateway_id) != (account_id, gateway_id))
        self._bytes = sum(self._size(e) for e in kept)
        self._buffer = kept
