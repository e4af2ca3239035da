"""``Database.read()``: on SQLite a read-only transaction takes neither the process's writer lock
nor SQLite's, so a reload never waits behind a request-log batch (docs/architecture.md, Storage)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from sluice.store.database import Database, open_database


@pytest.fixture()
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(f"sqlite:///{tmp_path / 'read.db'}", migrate=False)
    async with database.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    yield database
    await database.close()


async def test_a_read_runs_while_a_batch_holds_the_write_locks_and_sees_a_snapshot(db: Database) -> None:
    started, go_on = threading.Event(), threading.Event()

    def batch(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        started.set()
        go_on.wait(10)

    writing = asyncio.create_task(db.write_batch(batch))
    try:
        await asyncio.to_thread(started.wait, 10)
        async with asyncio.timeout(5):
            async with db.read() as conn:  # SQLite's write lock and the writer lock are both held
                assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
        assert not writing.done()
        with pytest.raises(TimeoutError):  # a write transaction does wait, as it must
            async with asyncio.timeout(0.2):
                async with db.begin() as conn:
                    await conn.execute(text("SELECT 1"))
    finally:
        go_on.set()
        await writing
    async with db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 2


async def test_a_read_inside_a_write_of_the_same_task_does_not_deadlock(db: Database) -> None:
    async with asyncio.timeout(5):
        async with db.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (3)"))
            async with db.read() as reading:
                assert (await reading.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
        async with db.read() as reading:
            assert (await reading.execute(text("SELECT count(*) FROM t"))).scalar_one() == 2
