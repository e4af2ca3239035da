"""SQLite's in-process writer lock and the log batch: a transaction that has to wait for a batch
written in the background (idle CPU priority) does not wait at that priority.

Before, a management write arriving while a log batch held the lock waited until the batch finished
at idle priority, which on a busy core is up to the batch's patience (1 s).
"""

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
    database = await open_database(f"sqlite:///{tmp_path / 'writer.db'}")
    await database.write_batch(lambda conn: None)  # the batch thread exists from here on
    yield database
    await database.close()


async def until(condition, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("urgent", [True, False])
async def test_a_transaction_waiting_for_a_background_batch_hurries_it_unless_it_is_background_work(
        db: Database, monkeypatch: pytest.MonkeyPatch, urgent: bool) -> None:
    """``urgent=False`` (feed pruning, activity flushes) waits as the batch would: at c=1
    those jobs hurried batches often enough to double p99 (make bench-latency)."""
    hurried: list[bool] = []
    original = db.hurry_batch

    def hurry() -> None:
        hurried.append(True)
        original()

    monkeypatch.setattr(db, "hurry_batch", hurry)
    started, go_on = threading.Event(), threading.Event()

    def batch(conn: object) -> None:
        started.set()
        go_on.wait(10)

    writing = asyncio.create_task(db.write_batch(batch, background=True))
    await asyncio.to_thread(started.wait, 10)
    assert hurried == []

    async def transaction() -> int:
        async with db.begin(urgent=urgent) as conn:
            return int((await conn.execute(text("SELECT 1"))).scalar_one())

    waiting = asyncio.create_task(transaction())
    if urgent:
        await until(lambda: bool(hurried))  # hurried while it waits, not after the batch is done
    else:
        await until(lambda: db._writer is not None and bool(db._writer._waiters))
        await asyncio.sleep(0.05)
        assert hurried == [] and db._waiting == 0
    assert not waiting.done()
    go_on.set()
    await writing
    assert await waiting == 1


async def test_a_batch_that_takes_the_lock_while_a_transaction_waits_is_not_background(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    thread = db._batch_thread
    assert thread is not None
    submitted: list[bool] = []
    original = thread.submit

    def submit(work, *, background=False):  # type: ignore[no-untyped-def]
        submitted.append(background)
        return original(work, background=background)

    monkeypatch.setattr(thread, "submit", submit)
    release = asyncio.Event()

    async def holder() -> None:
        async with db.begin():
            await release.wait()

    async def management_write() -> None:
        async with db.begin() as conn:
            await conn.execute(text("SELECT 1"))

    holding = asyncio.create_task(holder())
    await until(lambda: db._writer is not None and db._writer.locked())
    batch = asyncio.create_task(db.write_batch(lambda conn: None, background=True))  # queued first
    await asyncio.sleep(0)
    waiting = asyncio.create_task(management_write())  # queued behind the batch
    await until(lambda: db._waiting == 1)
    release.set()
    await asyncio.gather(holding, batch, waiting)
    assert submitted == [False]  # someone was waiting: the batch ran at normal priority

    await db.write_batch(lambda conn: None, background=True)  # nobody waiting: background again
    assert submitted == [False, True]
