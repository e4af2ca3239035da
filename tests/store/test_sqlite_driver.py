"""The SQLite driver: a statement is one call on aiosqlite's thread, and what SQLAlchemy reads back
from it (rows, row counts, last row ids, errors) is what the stock adapter gives.

Each call on that thread is a wait for a turn of the event loop, which on a saturated core is
milliseconds: the stock adapter made four per statement (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from sluice.store.database import Database, open_database


@pytest.fixture()
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(f"sqlite:///{tmp_path / 'driver.db'}", migrate=False)
    async with database.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, word TEXT UNIQUE NOT NULL)"))
    yield database
    await database.close()


@pytest.fixture()
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function sent to an aiosqlite thread, in order."""
    sent: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return sent


async def test_a_transaction_costs_one_hop_per_statement_plus_its_begin_and_commit(
        db: Database, hops: list[str]) -> None:
    statements = 5
    async with db.begin() as conn:
        for n in range(statements):
            await conn.execute(text("INSERT INTO t (word) VALUES (:w)"), {"w": f"w{n}"})
    # BEGIN IMMEDIATE, the statements, COMMIT (and no ROLLBACK when the pool takes it back); the
    # stock adapter sent 3 calls per statement (4 for a query) and one more to roll back (20 here).
    assert hops.count("_one_statement") == statements + 1, hops
    assert len(hops) == statements + 2, hops


async def test_rows_row_counts_and_last_row_ids_come_back(db: Database) -> None:
    async with db.begin() as conn:
        inserted = await conn.execute(text("INSERT INTO t (word) VALUES ('a')"))
        assert inserted.lastrowid == 1
        await conn.execute(text("INSERT INTO t (word) VALUES (:w)"), [{"w": "b"}, {"w": "c"}, {"w": "d"}])
        updated = await conn.execute(text("UPDATE t SET word = word || '!' WHERE n > 1"))
        assert updated.rowcount == 3
        result = await conn.execute(text("SELECT n, word FROM t ORDER BY n"))
        assert list(result.keys()) == ["n", "word"]
        assert [tuple(row) for row in result] == [(1, "a"), (2, "b!"), (3, "c!"), (4, "d!")]
        assert (await conn.execute(text("SELECT word FROM t WHERE n = 99"))).first() is None
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 4


async def test_a_failing_statement_raises_sqlalchemys_error_and_rolls_the_transaction_back(
        db: Database) -> None:
    with pytest.raises(IntegrityError, match="UNIQUE"):
        async with db.begin() as conn:
            await conn.execute(text("INSERT INTO t (word) VALUES ('x')"))
            await conn.execute(text("INSERT INTO t (word) VALUES ('x')"))
    with pytest.raises(OperationalError, match="no such table"):
        async with db.begin() as conn:
            await conn.execute(text("SELECT * FROM missing"))
    async with db.begin() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
