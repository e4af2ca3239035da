"""``LogSink``: the request-log Observer. ``record`` turns the Exchange into its row at once —
redacted, its large bodies compressed — and appends it to a bounded in-memory buffer; a background
task writes the buffer — every interval, or sooner once a quarter of its budget is used — in
batches of what was buffered when the write began, each in one transaction, in one hop to the
database's batch thread (``Database.write_batch``).

The row is built when the request is recorded (after its response was sent) rather than in the
batch: built in the batch, a few hundred rows held the event loop for milliseconds at a time, the
tail of every request that arrived meanwhile (issue 20; docs/performance.md). Each request now pays
for its own row, between requests, and the batch thread runs no per-log Python.

A batch is written in the background (``Database.write_batch(background=True)``: the CPU only
when nothing else wants it, so a request never waits for the core behind a batch) while the buffer
holds less than half its budget. Once more piles up — a core busy with requests leaves a
background batch little time — the batch in flight and the next ones run at normal priority, and
logs are shed only when that cannot keep up either.

A batch leaves the event loop as it is (the buffer itself, when it is all of it); its rows are
grouped in the batch's thread and, once written, freed in a worker thread a chunk at a time:
touching ~1,000 cold rows on the loop stalled it ~1.5 ms every flush (bench/log_stalls.py).

When the buffer is full a new log is dropped and counted — a request never waits for logging.
While the database is unreachable, batches stay buffered and are retried (``is_outage``); any other
write failure drops the batch and counts it.
``flush()`` returns once everything recorded before it is committed (SQLite runs with
``synchronous=FULL``, so a flushed log survives ``kill -9``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, MutableSequence, Sequence
from typing import Any

import structlog
from sqlalchemy import Connection

from sluice.exchange import Exchange
from sluice.logs import bodies, retention
from sluice.logs.records import log_row
from sluice.memory import release_free_memory
from sluice.store import logs as logstore
from sluice.store import queries
from sluice.store.database import Database, is_outage
from sluice.tasks import Periodic

log = structlog.get_logger("sluice.logs")

GatewayKey = tuple[str, str]  # (account_id, gateway_id)
Row = dict[str, Any]
BATCH_MAX_BYTES = 8 << 20
TRIM_AFTER_BYTES = 8 << 20  # written since freed memory was last handed back to the OS ...
TRIM_INTERVAL_S = 10.0  # ... and at most this often (sluice/memory.py)
WRITE_AT_FRACTION = 4  # a batch starts early once this share of buffer_max_bytes is buffered
OVERHEAD = 1024  # bytes accounted per buffered log besides its bodies
HURRY_AT_FRACTION = 2  # x WRITE_AT: batches are written at normal priority from half the budget


def gateway_policy(conn: Connection, account_id: str, gateway_id: str) -> retention.Policy | None:
    """The gateway's log limits; None when the gateway no longer exists (its logs are dropped)."""
    gateway = queries.get_gateway_sync(conn, account_id, gateway_id)
    return retention.policy_of(gateway) if gateway is not None else None


def _by_gateway(rows: Iterable[Row]) -> dict[GatewayKey, list[Row]]:
    """A batch's rows by gateway; in the batch's thread, not on the event loop."""
    by_gateway: dict[GatewayKey, list[Row]] = {}
    for row in rows:
        by_gateway.setdefault((row["account_id"], row["gateway_id"]), []).append(row)
    return by_gateway


RELEASE_CHUNK = 64  # rows freed between two chances for the event loop to take the GIL


def _release(rows: MutableSequence[Row]) -> None:
    """Free a written batch's rows, a chunk at a time. Freeing ~1,000 rows at once is ~1 ms of C code
    that never lets go of the GIL: on the event loop, or in one go in a thread, it held requests up
    for that long every flush (bench/log_stalls.py, the c=1 p99.9)."""
    while rows:
        for _ in range(min(RELEASE_CHUNK, len(rows))):
            rows.pop()
        time.sleep(0)  # lets a waiting event loop have the GIL


def _release_soon(rows: MutableSequence[Row]) -> None:
    """``_release`` in a worker thread; the caller must hold no other reference to the rows."""
    try:
        asyncio.get_running_loop().run_in_executor(None, _release, rows)
    except RuntimeError:  # the loop's executor is shut down: free them here
        rows.clear()


class LogSink:
    def __init__(self, db: Database, *, interval_s: float, body_max_bytes: int,
                 buffer_max_bytes: int = 16 << 20,
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
        self._buffer: deque[Row] = deque()
        self._bytes = 0  # buffered logs
        self._writing = 0  # logs taken for the batch being written: they still hold memory
        self._written_bytes = 0  # since the last release_free_memory
        self._trimmed_at = 0.0
        self._lock = asyncio.Lock()
        self._write_at_bytes = buffer_max_bytes // WRITE_AT_FRACTION
        self._write_at_logs = buffer_max_logs // WRITE_AT_FRACTION
        self._job = Periodic("sluice-log-sink", interval_s, self.flush)

    # -- the hot path ------------------------------------------------------------------------------

    def record(self, exchange: Exchange) -> None:
        if not exchange.collect_log:
            return
        if len(self._buffer) >= self.buffer_max_logs or self._held + OVERHEAD > self.buffer_max_bytes:
            self._drop("buffer_full", 1)  # before the row is built: a full buffer costs nothing more
            return
        row = self._row(exchange)
        size = self._size(row)
        if self._held + size > self.buffer_max_bytes:
            self._drop("buffer_full", 1)
            return
        self._buffer.append(row)
        self._bytes += size
        if self._bytes >= self._write_at_bytes or len(self._buffer) >= self._write_at_logs:
            self._job.wake()
        if self._piling_up():
            self.db.hurry_batch()  # a batch in the background, if any, continues at normal priority

    def _row(self, exchange: Exchange) -> Row:
        """The stored row: bodies cut at ``body_max_bytes``, redacted, and compressed when large (a
        buffered stream log then holds ~400 bytes instead of ~7 KB: the buffer holds ~8x more logs)."""
        if not exchange.collect_payload:
            exchange.response_body = b""  # never stored; usage was read from it already
        # The response is cut before it is redacted and compressed: a stream's body can be far larger.
        exchange.response_body = exchange.response_body[: self.body_max_bytes]
        row = log_row(exchange)
        if row["request_body"] is not None:  # None: the payload was not collected
            row["request_body"] = row["request_body"][: self.body_max_bytes]
        bodies.pack(row)
        return row

    @property
    def _held(self) -> int:
        return self._bytes + self._writing

    @staticmethod
    def _size(row: Row) -> int:
        return OVERHEAD + len(row["request_body"] or b"") + len(row["response_body"] or b"")

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
            # Only what is buffered now: chasing logs that arrive while a batch is written made a
            # saturated gateway write many small batches, each paying a commit, a thread hop and
            # fresh statements (measured: ~90 rows a batch at 4,400 req/s instead of ~900).
            remaining = len(self._buffer)
            while remaining > 0 and self._buffer:
                background = not self._piling_up()
                batch = self._take_batch(remaining)
                remaining -= len(batch)
                try:
                    await self._write(batch, background)
                except Exception as exc:  # noqa: BLE001 — counted, never retried forever
                    if is_outage(exc):
                        # The database is away: the batch goes back to the front of the buffer, still
                        # counted against buffer_max_bytes (new logs are dropped as buffer_full when
                        # an outage outlasts it), and is retried at the next tick.
                        self._buffer.extendleft(reversed(batch))
                        self._bytes += self._writing
                        self._writing = 0
                        log.warning("request logs kept for a retry: database unavailable", logs=len(batch))
                        break
                    log.error("request log batch lost", error=type(exc).__name__, logs=len(batch))
                    self._drop("write_failed", len(batch))
                finally:
                    self._written_bytes += self._writing
                    self._writing = 0
                _release_soon(batch)
            due = time.monotonic() - self._trimmed_at >= TRIM_INTERVAL_S
            if self._written_bytes >= TRIM_AFTER_BYTES and due:
                self._written_bytes, self._trimmed_at = 0, time.monotonic()
                await asyncio.to_thread(release_free_memory)

    def _piling_up(self) -> bool:
        """Half the buffer's budget (bytes or logs) is in use: write at normal priority. (At a
        quarter, chat c=1 hurried a batch every ~3 s, each a few ms of p99: docs/performance.md.)"""
        return (self._held >= HURRY_AT_FRACTION * self._write_at_bytes
                or len(self._buffer) >= HURRY_AT_FRACTION * self._write_at_logs)

    def _take_batch(self, most: int) -> MutableSequence[Row]:
        """Up to ``most`` and ``batch_size`` logs and about ``BATCH_MAX_BYTES``. Until the batch is
        written its logs still count against ``buffer_max_bytes``: the budget bounds all request-log
        memory."""
        most = min(most, self.batch_size)
        if len(self._buffer) <= most and self._bytes < BATCH_MAX_BYTES:
            # All of it, the usual case: no row is touched on the event loop. Popping and sizing
            # ~1,000 rows one by one, their memory cold by now, held the loop ~1.5 ms every flush
            # (bench/log_stalls.py: the c=1 p99.9).
            whole, self._buffer = self._buffer, deque()
            self._writing, self._bytes = self._bytes, 0
            return whole
        batch: list[Row] = []
        size = 0
        while self._buffer and len(batch) < most and size < BATCH_MAX_BYTES:
            row = self._buffer.popleft()
            size += self._size(row)
            batch.append(row)
        self._bytes -= size
        self._writing = size
        return batch

    async def _write(self, rows: Sequence[Row], background: bool) -> None:
        dropped = await self.db.write_batch(lambda conn: self._write_groups(conn, _by_gateway(rows)),
                                            background=background)
        for reason, count in dropped.items():
            self._drop(reason, count)

    def _write_groups(self, conn: Connection,
                      by_gateway: dict[GatewayKey, list[Row]]) -> dict[str, int]:
        """The batch's transaction, run by ``Database.write_batch`` (on SQLite in its batch thread,
        so it touches no sink state). Returns the logs not stored, by reason.

        The log_management check is exact across processes: each gateway's writes are serialised
        (``lock_gateway_logs``; gateways in sorted order, so two writers cannot deadlock) and read
        the shared upper bound of its stored logs (``log_counts``); when the bound says the batch might
        pass the limit, the logs are counted in this same transaction.
        """
        dropped: dict[str, int] = {}
        for (account_id, gateway_id), group in sorted(by_gateway.items()):
            policy = gateway_policy(conn, account_id, gateway_id)
            if policy is None:
                dropped["gateway_deleted"] = dropped.get("gateway_deleted", 0) + len(group)
                continue
            logstore.lock_gateway_logs(conn, account_id, gateway_id)
            bound = logstore.stored_bound(conn, account_id, gateway_id)
            incoming = len(group)
            stored = bound
            if stored is None or stored + incoming > policy.limit:
                stored = logstore.count_logs_sync(conn, account_id, gateway_id)
            keep, remove = retention.plan(stored, incoming, policy)
            if remove:
                remove = logstore.delete_oldest(conn, account_id, gateway_id, remove)
            group = sorted(group, key=lambda r: r["id"])  # ULIDs: arrival order
            # STOP_INSERTING: the first ones arrived while there was room; DELETE_OLDEST: newest win.
            group = group[:keep] if policy.strategy == retention.STOP_INSERTING else group[len(group) - keep:]
            logstore.insert_logs(conn, group)
            logstore.set_stored_bound(conn, account_id, gateway_id, stored - remove + len(group),
                                      known=bound is not None)
            if keep < incoming:
                dropped["log_limit"] = dropped.get("log_limit", 0) + incoming - keep
        return dropped

    def forget_gateway(self, account_id: str, gateway_id: str) -> None:
        """A deleted gateway: drop its buffered logs."""
        gone = (account_id, gateway_id)
        kept = deque(r for r in self._buffer if (r["account_id"], r["gateway_id"]) != gone)
        self._bytes = sum(self._size(r) for r in kept)
        self._buffer = kept
