"""The storage handle: an async SQLAlchemy engine for SQLite or PostgreSQL, migrated at open.

SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk before it is answered) and
every transaction starts with ``BEGIN IMMEDIATE`` so concurrent writers queue on ``busy_timeout``
instead of failing. PostgreSQL runs through asyncpg. Queries live in ``queries.py`` as plain
functions taking a connection; this module only opens, migrates and hands out transactions.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from sluice.store import sqlite_driver
from sluice.store.batch_thread import BatchThread

MIGRATIONS = Path(__file__).parent / "migrations"
_IN_TRANSACTION: contextvars.ContextVar[bool] = contextvars.ContextVar("sluice_in_transaction", default=False)
# The newest migration's revision id; tests/store check it against Alembic's own view of the head.
HEAD_REVISION = "0008_dynamic_routing"
READ_ONLY = "sluice_read_only"  # execution option: Database.read()'s deferred BEGIN on SQLite
T = TypeVar("T")


def engine_url(url: str) -> str:
    """Map the user-facing URL (``sqlite:///``, ``postgresql://``) to its async driver."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ValueError("database URL must start with sqlite:/// or postgresql://")


def _sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///"):])


SQLITE_CACHE_KIB = 256
# A new database file gets 16 KiB pages instead of SQLite's 4 KiB: a request log (~2 KB with its
# bodies) is written with fewer WAL frames and page splits (measured: 14.6-16.0 -> 12.1-13.0 µs of
# writer CPU per log row; docs/performance.md). An existing file keeps its page size (SQLite changes
# it only by a VACUUM outside WAL mode).
SQLITE_PAGE_SIZE = 16384
CONNECT_TIMEOUT_S = 5.0


class Database:
    def __init__(self, url: str, engine: AsyncEngine) -> None:
        self.url = url
        self.engine = engine
        self.dialect = engine.dialect.name  # "sqlite" | "postgresql"
        # SQLite has one writer at a time. Inside a process, writers queue here, in order, instead of
        # spinning in SQLite's busy handler, which is unfair: under sustained load a background writer
        # (request logs, change poller) could starve past busy_timeout and lose its batch. Measured
        # in a 10-minute soak. Other processes (CLI, workers) still meet on busy_timeout.
        self._writer: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None
        self._batch_engine: Engine | None = None  # SQLite: write_batch's own connection, made on first use
        self._batch_thread: BatchThread | None = None
        self._waiting = 0  # transactions (begin) waiting for the writer lock

    @asynccontextmanager
    async def begin(self, *, urgent: bool = True) -> AsyncIterator[AsyncConnection]:
        """A transaction: committed when the block ends, rolled back if it raises. ``urgent=False``
        for a background job's own transaction (feed pruning, activity and token-use flushes): it
        waits for a log batch in the background without hurrying it. Reads that write nothing: ``read``."""
        if self._writer is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        if _IN_TRANSACTION.get():
            raise RuntimeError("Database.begin() inside another transaction of the same task would deadlock")
        # A log batch holding the lock at idle CPU priority would keep this transaction (a management
        # write, say) waiting up to its patience on a busy core: once something urgent waits for it,
        # it is no longer background work. A batch that takes the lock while such a transaction waits
        # runs at normal priority too (write_batch). Background jobs do not hurry batches: at c=1 the
        # periodic ones did so often enough to double p99 (make bench-latency).
        waiting = 1 if urgent else 0
        self._waiting += waiting
        try:
            if urgent and self._writer.locked():
                self.hurry_batch()
            await self._writer.acquire()
        finally:
            self._waiting -= waiting
        try:
            token = _IN_TRANSACTION.set(True)
            try:
                async with self.engine.begin() as conn:
                    yield conn
            finally:
                _IN_TRANSACTION.reset(token)
        finally:
            self._writer.release()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction: one consistent snapshot, for reloads and the change-feed poll.

        On SQLite it takes neither the process's writer lock nor SQLite's: a deferred ``BEGIN`` in WAL
        mode reads a snapshot while a writer writes, so a reload never waits behind a log batch and
        never holds up a management write (a management write's own reload took the lock a second
        time, behind whatever batch came first). Nothing in it may write: SQLite would have to upgrade
        a stale snapshot, which fails."""
        if self._writer is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self.engine.connect() as conn:
            await conn.execution_options(**{READ_ONLY: True})
            async with conn.begin():
                yield conn

    async def write_batch(self, work: Callable[[Connection], T], *, background: bool = False) -> T:
        """Run ``work`` on a synchronous connection inside one write transaction.

        For bulk background writes (request logs). On SQLite the whole transaction runs in one hop
        to a dedicated thread with its own connection, holding the in-process writer lock: through
        aiosqlite every statement is a hop of its own, and each hop waits a full event-loop
        iteration when the gateway is busy (measured: the log writer fell behind under load). On
        PostgreSQL ``work`` runs through ``run_sync`` on a pooled asyncpg connection.

        ``background`` (SQLite): the thread runs the batch at idle CPU priority, moved back to normal
        by ``hurry_batch`` or after ``batch_thread.PATIENCE_S`` (``BatchThread``).
        """
        if self._writer is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(work)
        if _IN_TRANSACTION.get():
            raise RuntimeError("Database.write_batch() inside another transaction of the same task "
                               "would deadlock")
        if self._batch_engine is None:
            self._batch_engine = create_engine("sqlite:///" + str(_sqlite_path(self.url)),
                                               poolclass=StaticPool,
                                               connect_args={"check_same_thread": False,
                                                             "cached_statements": 1})
            _configure_sqlite(self._batch_engine)
            self._batch_thread = BatchThread("sluice-db-batch")
        engine, thread = self._batch_engine, self._batch_thread
        assert thread is not None

        def transaction() -> T:
            with engine.begin() as conn:
                return work(conn)

        async with self._writer:
            # Shielded: if the caller is cancelled the lock is held until the thread has finished.
            future = thread.submit(transaction, background=background and not self._waiting)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                await asyncio.wait([future])
                raise

    def hurry_batch(self) -> None:
        """The batch being written in the background, if any, continues at normal priority."""
        if self._batch_thread is not None:
            self._batch_thread.hurry()

    async def ping(self, timeout_s: float = 2.0) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                async with self.begin() as conn:
                    await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 — any failure means not ready
            return False

    async def migrate(self) -> None:
        if await self._at_head():
            return  # nothing to do, and Alembic (~11 MiB of modules) is never imported
        async with self.begin() as conn:
            if self.dialect == "postgresql":
                # Several instances may start at once; one migrates, the others wait.
                await conn.execute(text("SELECT pg_advisory_xact_lock(7466324)"))
            await conn.run_sync(_upgrade)

    async def _at_head(self) -> bool:
        try:
            async with self.begin() as conn:
                result = await conn.execute(text("SELECT version_num FROM alembic_version"))
                versions = result.scalars().all()
        except Exception:  # noqa: BLE001 — no table yet: a new database
            return False
        return list(versions) == [HEAD_REVISION]

    async def close(self) -> None:
        if self._batch_thread is not None:
            self._batch_thread.shutdown()
            assert self._batch_engine is not None
            self._batch_engine.dispose()
            self._batch_engine = self._batch_thread = None
        await self.engine.dispose()


# What a database outage surfaces as (``is_outage`` tells which of these really are one): handlers
# catch these without knowing the driver.
OUTAGE_CANDIDATES: tuple[type[BaseException], ...] = (DBAPIError, PoolTimeout, OSError)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) means the database cannot be reached right now, as opposed
    to a bug or a constraint: refused or lost connection, a server shutting down or starting up, a
    pool or connect timeout. Such errors are answered 503 and retried later, not 500."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _network_error(current) or isinstance(current, PoolTimeout) or _asyncpg_connection_error(current):
            return True
        if isinstance(current, DBAPIError):
            if current.connection_invalidated:
                return True
            current = current.orig or current.__cause__
            continue
        current = current.__cause__ or current.__context__
    return False


NETWORK_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT,
                            errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EPIPE})


def _network_error(exc: BaseException) -> bool:
    """A socket that could not reach the server; not any OSError (a file's PermissionError is a bug)."""
    return isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)) or (
        isinstance(exc, OSError) and exc.errno in NETWORK_ERRNOS)


def _asyncpg_connection_error(exc: BaseException) -> bool:
    try:
        from asyncpg import exceptions as pg
    except ImportError:  # SQLite-only install
        return False
    return isinstance(exc, (pg.PostgresConnectionError, pg.ConnectionDoesNotExistError,
                            pg.CannotConnectNowError, pg.OperatorInterventionError))


def _upgrade(sync_conn: object) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


def _configure_sqlite(engine: AsyncEngine | Engine) -> None:
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see on_begin)
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # before WAL: it takes only on a new file
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # 256 KiB of page cache per connection instead of SQLite's 2 MiB: the log writer appends at
        # the right edge of its B-trees and reads come from the OS page cache (measured: ~4 MiB
        # less resident, no change in write cost).
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


async def open_database(url: str, *, migrate: bool = True) -> Database:
    if url.startswith("sqlite:///"):
        path = _sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            # Created 0600 before SQLite touches it; WAL/SHM files inherit the mode.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        # One thread hop per statement instead of three or four (store/sqlite_driver.py).
        engine = create_async_engine(engine_url(url), pool_size=5, max_overflow=5,
                                     module=sqlite_driver.dbapi())
        _configure_sqlite(engine)
    else:
        # A bounded connect: when the server is away, management requests answer 503 within seconds
        # instead of hanging on asyncpg's 60 s default.
        engine = create_async_engine(engine_url(url), pool_size=10, max_overflow=10, pool_pre_ping=True,
                                     pool_timeout=CONNECT_TIMEOUT_S,
                                     connect_args={"timeout": CONNECT_TIMEOUT_S})
    database = Database(url, engine)
    if migrate:
        await database.migrate()
    return database
