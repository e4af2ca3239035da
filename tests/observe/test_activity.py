"""Provider-key activity: counted in memory, persisted additively, flagged stale after 90 days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from sluice.observe.activity import ActivityTracker
from sluice.store import queries
from sluice.store.log_tables import provider_config_activity as A
from tests.observe.support import add_config, exchange, suite_db

CONFIG = "c" * 32
CREATED = "2026-01-01T00:00:00.000Z"
T0 = datetime(2026, 3, 1, tzinfo=UTC).timestamp()


def wire(config_id: str = CONFIG) -> dict:
    return {"id": config_id, "alias": "default", "created_at": CREATED}


async def test_counts_uses_and_errors_of_a_key(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "a.db", "gw")
    tracker = ActivityTracker(db)
    await tracker.start()
    tracker.record(exchange(config_id=CONFIG, started_at=T0))
    tracker.record(exchange(config_id=CONFIG, started_at=T0 + 60, success=False, status_code=500))
    tracker.record(exchange(config_id=CONFIG, started_at=T0 + 120, rejected_by="key_rate_limit",
                            success=False))
    tracker.record(exchange(config_id=CONFIG, started_at=T0 + 180, cached=True))
    tracker.record(exchange(config_id=None, started_at=T0 + 240))  # the caller's own key: no config
    seen = tracker.annotate(wire())
    assert (seen["request_count"], seen["error_count"]) == (2, 1)
    assert seen["last_used_at"] == "2026-03-01T00:01:00.000Z"
    assert seen["alias"] == "default"  # the wire dict is extended, not replaced
    await tracker.close()
    await db.close()


async def test_totals_persist_and_add_up_across_processes(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "a.db", "gw")
    await add_config(db, CONFIG)
    one, two = ActivityTracker(db), ActivityTracker(db)
    await one.start()
    await two.start()
    one.record(exchange(config_id=CONFIG, started_at=T0))
    two.record(exchange(config_id=CONFIG, started_at=T0 + 10, success=False))
    two.record(exchange(config_id=CONFIG, started_at=T0 + 5))
    await one.flush()
    await two.flush()
    await one.flush()  # reload sees the other process's writes
    for tracker in (one, two):
        seen = tracker.annotate(wire())
        assert (seen["request_count"], seen["error_count"]) == (3, 1)
        assert seen["last_used_at"] == "2026-03-01T00:00:10.000Z"
    await one.close()
    await two.close()
    fresh = ActivityTracker(db)  # a restart
    await fresh.start()
    assert fresh.annotate(wire())["request_count"] == 3
    await fresh.close()
    await db.close()


async def test_stale_after_ninety_days_from_use_or_creation(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "a.db", "gw")
    now = datetime(2026, 3, 1, tzinfo=UTC)
    tracker = ActivityTracker(db, clock=lambda: now)
    never_used = tracker.annotate(wire())  # created 2026-01-01: 59 days ago
    assert never_used["stale"] is False and never_used["last_used_at"] is None
    assert never_used["request_count"] == 0
    now += timedelta(days=31)
    assert tracker.annotate(wire())["stale"] is True
    tracker.record(exchange(config_id=CONFIG, started_at=now.timestamp() - 86400))
    assert tracker.annotate(wire())["stale"] is False
    now += timedelta(days=90)
    assert tracker.annotate(wire())["stale"] is True
    await db.close()


async def test_gateway_delete_forgets_its_keys(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "a.db", "gw", "other")
    await add_config(db, CONFIG)
    await add_config(db, "d" * 32, "other")
    tracker = ActivityTracker(db)
    await tracker.start()
    tracker.record(exchange(config_id=CONFIG))
    tracker.record(exchange("other", config_id="d" * 32))
    await tracker.flush()
    async with db.begin() as conn:
        await tracker.forget_gateway(conn, "a" * 32, "gw")
    await tracker.load()
    assert tracker.annotate(wire())["request_count"] == 0
    assert tracker.annotate(wire("d" * 32))["request_count"] == 1
    await tracker.close()
    await db.close()


async def stored_configs(db) -> list[str]:  # type: ignore[no-untyped-def]
    async with db.begin() as conn:
        return sorted((await conn.execute(select(A.c.config_id))).scalars())


async def test_config_delete_forgets_its_counts(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "a.db", "gw")
    await add_config(db, CONFIG)
    await add_config(db, "d" * 32)
    tracker = ActivityTracker(db)
    await tracker.start()
    tracker.record(exchange(config_id=CONFIG))
    tracker.record(exchange(config_id="d" * 32))
    await tracker.flush()
    tracker.record(exchange(config_id=CONFIG))  # not yet written when the config goes
    async with db.begin() as conn:
        await queries.delete_config(conn, CONFIG)
        await tracker.forget_config(conn, CONFIG)
    assert tracker.annotate(wire())["request_count"] == 0
    await tracker.flush()
    assert await stored_configs(db) == ["d" * 32]
    assert tracker.annotate(wire("d" * 32))["request_count"] == 1
    await tracker.close()
    await db.close()


async def test_a_use_ending_after_its_config_was_deleted_leaves_no_row(tmp_path: Path) -> None:
    db = await suite_db(tmp_path / "a.db", "gw")
    await add_config(db, CONFIG)
    here, elsewhere = ActivityTracker(db), ActivityTracker(db)  # two processes
    await here.start()
    await elsewhere.start()
    async with db.begin() as conn:
        await queries.delete_config(conn, CONFIG)
        await here.forget_config(conn, CONFIG)
    elsewhere.record(exchange(config_id=CONFIG))  # its request was in flight during the delete
    await elsewhere.flush()
    assert await stored_configs(db) == []
    assert elsewhere.annotate(wire())["request_count"] == 0
    await here.close()
    await elsewhere.close()
    await db.close()
