"""The change feed on PostgreSQL, where sequence values commit out of order: a row whose commit lands
after a higher-numbered one is still read (real SQL, the real cursor; no server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sluice.clock import new_id
from sluice.proxy.feed import FeedCursor
from sluice.store import queries
from sluice.store.database import Database, open_database


@pytest.fixture()
async def db(pg_url: str) -> AsyncIterator[Database]:
    database = await open_database(pg_url)
    yield database
    await database.close()


async def _read(db: Database, cursor: FeedCursor, account: str) -> tuple[list[str], FeedCursor]:
    """The kinds of this account's unread rows (the database is shared with other tests, and other
    sessions on the same server may hold the horizon back), and the cursor after the read."""
    async with db.begin() as conn:
        horizon = await queries.feed_horizon(conn)
        rows = await queries.changes_from(conn, cursor.horizon)
    kinds = [row["kind"] for row in cursor.unread(rows) if row["account_id"] == account]
    return kinds, cursor.advance(rows, horizon)


async def test_a_change_committed_after_a_later_numbered_one_is_read(db: Database) -> None:
    account = new_id()
    async with db.begin() as conn:
        cursor = FeedCursor(await queries.feed_horizon(conn))
    first_took_its_seq, second_committed = asyncio.Event(), asyncio.Event()

    async def slow_writer() -> None:  # takes the lower seq, commits last
        async with db.begin() as conn:
            await queries.record_change(conn, account, "gateway")
            first_took_its_seq.set()
            await second_committed.wait()

    slow = asyncio.create_task(slow_writer())
    await first_took_its_seq.wait()
    async with db.begin() as conn:
        await queries.record_change(conn, account, "token")
    second_committed_kinds, cursor = await _read(db, cursor, account)
    assert second_committed_kinds == ["token"]  # the open transaction's row is not visible yet
    second_committed.set()
    await slow
    late, cursor = await _read(db, cursor, account)
    assert late == ["gateway"]  # the lower seq, committed last, is not skipped
    again, cursor = await _read(db, cursor, account)
    assert again == []  # and each row is applied once


async def test_a_rolled_back_writer_leaves_no_row_and_no_wait(db: Database) -> None:
    account = new_id()
    async with db.begin() as conn:
        cursor = FeedCursor(await queries.feed_horizon(conn))
    with pytest.raises(RuntimeError):
        async with db.begin() as conn:
            await queries.record_change(conn, account, "gateway")
            raise RuntimeError("rolled back")
    async with db.begin() as conn:
        await queries.record_change(conn, account, "token")
    kinds, cursor = await _read(db, cursor, account)
    assert kinds == ["token"]
    again, cursor = await _read(db, cursor, account)
    assert again == []
