"""Log queries behave the same on SQLite and PostgreSQL (PostgreSQL must be reachable: never skipped)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from sluice.logs import bodies
from sluice.logs.filters import parse_filters
from sluice.observe.activity import ActivityTracker
from sluice.observe.sink import LogSink
from sluice.store import log_tables as tables
from sluice.store import logs as logstore
from sluice.store import queries
from sluice.store.database import Database, open_database
from sluice.store.log_tables import provider_config_activity as A
from tests.observe.support import ACCOUNT, add_config, add_gateways, exchange

T0 = 1_750_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'q.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture()
async def db(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    database = await open_database(db_url)
    gateway = f"gw-{tmp_path.name[-12:].lower().replace('_', '-')}".rstrip("-")
    await add_gateways(database, gateway)
    sink = LogSink(database, interval_s=3600, body_max_bytes=1024)
    rows = [
        exchange(gateway, started_at=T0, provider="openai", model="gpt-4o", tokens=(100, 50), duration_ms=10,
                 headers={"cf-aig-metadata": '{"team":"red","tier":3}', "cf-aig-event-id": "ev-1"}),
        exchange(gateway, started_at=T0 + 1, provider="anthropic", model="claude-3-5-sonnet",
                 tokens=(200, 20),
                 duration_ms=30, success=False, status_code=500,
                 headers={"cf-aig-metadata": '{"team":"blue"}'}),
        exchange(gateway, started_at=T0 + 2, provider="openai", model=None, tokens=None, duration_ms=20,
                 cached=True),
    ]
    for row in rows:
        sink.record(row)
    await sink.flush()
    database.test_gateway = gateway  # type: ignore[attr-defined]
    database.test_ids = [r.log_id for r in rows]  # type: ignore[attr-defined]
    yield database
    await database.close()


async def matching(db: Database, items: list[tuple[str, str]], search: str | None = None) -> list[int]:
    ids = db.test_ids  # type: ignore[attr-defined]
    async with db.begin() as conn:
        condition = logstore.where(ACCOUNT, db.test_gateway, parse_filters(items), search)  # type: ignore[attr-defined]
        rows = await logstore.list_logs(conn, condition, "created_at", False, 1, 50)
    return [ids.index(r["id"]) for r in rows]


def f(key: str, op: str, *values: str) -> list[tuple[str, str]]:
    return [("filters.key", key), ("filters.operator", op), *[("filters.value", v) for v in values]]


async def test_filters(db: Database) -> None:
    assert await matching(db, []) == [0, 1, 2]
    assert await matching(db, f("provider", "eq", "openai")) == [0, 2]
    assert await matching(db, f("provider", "neq", "openai")) == [1]
    assert await matching(db, f("model", "neq", "gpt-4o")) == [1, 2]  # NULL model differs from gpt-4o
    assert await matching(db, f("model", "eq")) == [2]  # no value: is null
    assert await matching(db, f("model", "contains", "SONNET")) == [1]  # case-insensitive
    assert await matching(db, f("success", "eq", "false")) == [1]
    assert await matching(db, f("cached", "eq", "true")) == [2]
    assert await matching(db, f("tokens", "gt", "150")) == [1]
    assert await matching(db, f("duration", "lt", "25")) == [0, 2]
    assert await matching(db, f("cost", "gt", "0")) == [0, 1]
    assert await matching(db, f("created_at", "gt", "2025-06-15T15:06:40.500Z")) == [1, 2]
    assert await matching(db, f("metadata.key", "eq", "tier")) == [0]
    assert await matching(db, f("metadata.value", "eq", "blue")) == [1]
    assert await matching(db, f("metadata.value", "eq", "3")) == [0]
    assert await matching(db, f("metadata.value", "neq", "red")) == [1, 2]
    assert await matching(db, f("event_id", "eq", "ev-1")) == [0]
    assert await matching(db, f("wholesale", "eq", "false")) == [0, 1, 2]
    assert await matching(db, f("authentication", "eq", "true")) == []
    assert await matching(db, f("provider", "eq", "openai") + f("cached", "eq", "false")) == [0]
    assert await matching(db, [], search="claude") == [1]
    assert await matching(db, [], search="red") == [0]
    assert await matching(db, [], search="100%_") == []  # LIKE wildcards are literal


async def test_aggregates_order_and_delete(db: Database) -> None:
    gateway, ids = db.test_gateway, db.test_ids  # type: ignore[attr-defined]
    everything = logstore.where(ACCOUNT, gateway, [])
    async with db.begin() as conn:
        totals = await logstore.aggregates(conn, everything)
        by_provider = await logstore.list_logs(conn, everything, "provider", True, 1, 2)
    assert totals["total_count"] == 3
    assert (totals["min_duration"], totals["max_duration"]) == (10, 30)
    assert (totals["min_total_tokens"], totals["max_total_tokens"]) == (0, 220)
    assert totals["min_cost"] == 0.0 and totals["max_cost"] == pytest.approx(200 * 3e-6 + 20 * 15e-6)
    assert [r["id"] for r in by_provider] == [ids[2], ids[0]]  # openai desc, then id desc
    async with db.begin() as conn:
        deleted = await logstore.delete_logs(conn, logstore.where(ACCOUNT, gateway, parse_filters(
            f("provider", "eq", "openai"))), "created_at", True, limit=1)
    assert deleted == 1 and await matching(db, []) == [0, 1]


async def test_activity_upsert_and_sweep(db: Database) -> None:
    config_id = uuid.uuid4().hex  # the PostgreSQL database is shared between runs
    await add_config(db, config_id, db.test_gateway)  # type: ignore[attr-defined]
    tracker = ActivityTracker(db)
    await tracker.start()
    for _ in range(2):
        tracker.record(exchange(db.test_gateway, config_id=config_id, started_at=T0))  # type: ignore[attr-defined]
        await tracker.flush()
    assert tracker.annotate({"id": config_id, "created_at": "2025-01-01T00:00:00.000Z"})["request_count"] == 2
    async with db.begin() as conn:
        await queries.delete_config(conn, config_id)
    tracker.record(exchange(db.test_gateway, config_id=config_id, started_at=T0))  # type: ignore[attr-defined]
    await tracker.flush()  # the deleted config's row is swept, not updated
    async with db.begin() as conn:
        left = (await conn.execute(select(A.c.config_id).where(A.c.config_id == config_id))).all()
    assert left == []
    await tracker.close()


async def test_fractional_bounds_on_whole_number_columns(db: Database) -> None:
    assert await matching(db, f("duration", "lt", "10.5")) == [0]  # 10 < 10.5, not 10 < 10
    assert await matching(db, f("duration", "gt", "1e12")) == []  # beyond any integer column: no error


async def test_a_large_batch_spans_several_multi_row_inserts(db: Database) -> None:
    gateway = db.test_gateway  # type: ignore[attr-defined]
    count = logstore.SQLITE_ROWS_PER_INSERT * 2 + 7  # three INSERT statements on SQLite
    sink = LogSink(db, interval_s=3600, body_max_bytes=1024, batch_size=count)
    made = [exchange(gateway, started_at=T0 + 10 + i / 1000, duration_ms=i, request_body=b'{"n":%d}' % i,
                     request_size=len(b'{"n":%d}' % i)) for i in range(count)]
    for item in made:
        sink.record(item)
    await sink.flush()
    async with db.begin() as conn:
        assert await logstore.count_logs(conn, ACCOUNT, gateway) == count + 3
        for item in (made[0], made[logstore.SQLITE_ROWS_PER_INSERT], made[-1]):  # each statement's rows
            stored = await logstore.get_log(conn, ACCOUNT, gateway, item.log_id)
            assert stored is not None and stored["duration"] == item.duration_ms
            assert stored["request_body"] == item.request_body


async def test_large_bodies_are_redacted_then_stored_compressed_and_read_back_whole(db: Database) -> None:
    gateway = db.test_gateway  # type: ignore[attr-defined]
    key = b"sk-proj-" + b"Zq9Xw8Vu7T" * 4  # echoed by a provider: redacted before compression
    sse = b"".join(b'data: {"choices":[{"delta":{"content":"w%d"}}]}\n\n' % i for i in range(200)) + key
    item = exchange(gateway, started_at=T0 + 50, response_body=sse, response_size=len(sse), stream=True)
    sink = LogSink(db, interval_s=3600, body_max_bytes=64 * 1024)
    sink.record(item)
    await sink.flush()
    async with db.begin() as conn:
        stored = (await conn.execute(select(tables.request_logs.c.response_body,
                                            tables.request_logs.c.body_codec)
                                     .where(tables.request_logs.c.id == item.log_id))).one()
        assert stored.body_codec == bodies.RESPONSE and len(stored.response_body) < len(sse) // 5
        row = await logstore.get_log(conn, ACCOUNT, gateway, item.log_id)
    assert row is not None and row["request_body"] == item.request_body
    assert row["response_body"] == sse.replace(key, b"[REDACTED]")
    assert "body_codec" not in row


async def test_a_log_without_payload_stores_metadata_and_no_body(db: Database) -> None:
    # cf-aig-collect-log-payload: false — large and small bodies alike are never stored.
    gateway = db.test_gateway  # type: ignore[attr-defined]
    sse = b"".join(b'data: {"choices":[{"delta":{"content":"w%d"}}]}\n\n' % i for i in range(200))
    request = b'{"model":"mock-model","messages":[]}'
    items = [exchange(gateway, started_at=T0 + 60, collect_payload=False, model=None, request_body=request,
                      request_size=len(request)),
             exchange(gateway, started_at=T0 + 61, collect_payload=False, response_body=sse,
                      response_size=len(sse), stream=True)]
    sink = LogSink(db, interval_s=3600, body_max_bytes=64 * 1024)
    for item in items:
        sink.record(item)
    await sink.flush()
    async with db.begin() as conn:
        for item in items:
            stored = (await conn.execute(
                select(tables.request_logs.c.request_body, tables.request_logs.c.response_body,
                       tables.request_logs.c.body_codec)
                .where(tables.request_logs.c.id == item.log_id))).one()
            assert tuple(stored) == (None, None, bodies.OMITTED)
            row = await logstore.get_log(conn, ACCOUNT, gateway, item.log_id)
            assert row is not None and row["payload_collected"] is False
            assert (row["request_size"], row["tokens_in"]) == (item.request_size, 10)
        assert items[0].model is None
        row = await logstore.get_log(conn, ACCOUNT, gateway, items[0].log_id)
        assert row is not None and row["model"] == "mock-model"  # still read from the request body
        kept = await logstore.get_log(conn, ACCOUNT, gateway, db.test_ids[0])  # type: ignore[attr-defined]
        assert kept is not None and kept["payload_collected"] is True and kept["request_body"]


def test_batches_are_cut_into_few_distinct_statement_sizes() -> None:
    # the driver caches one prepared statement per distinct SQL text, each holding its last bound
    # bodies: the sizes must stay few whatever the batch length
    counts = range(3 * logstore.SQLITE_ROWS_PER_INSERT)
    sizes = {size for count in counts for size in logstore._chunk_sizes(count)}
    assert len(sizes) <= logstore.SQLITE_ROWS_PER_INSERT.bit_length()
    for count in (0, 1, 7, logstore.SQLITE_ROWS_PER_INSERT, 2001):
        assert sum(logstore._chunk_sizes(count)) == count


async def test_logs_written_before_the_body_codec_read_back_after_the_upgrade(tmp_path: Path) -> None:
    """A database at 0002 with a stored log: migration 0003 adds body_codec = 0 and the body reads as
    it was."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from sluice.store.database import MIGRATIONS

    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002_request_logs")
        body = b'{"big":"' + b"x" * 5000 + b'"}'  # large, but stored raw before 0003
        conn.execute(text(
            "INSERT INTO request_logs (id, account_id, gateway_id, created_at, provider, path, method, "
            "success, cached, stream, duration, custom_cost, request_size, response_size, request_body, "
            "response_body) VALUES ('01OLD', :a, 'gw', '2025-01-01T00:00:00.000Z', 'openai', "
            "'chat/completions', 'POST', 1, 0, 0, 5, 0, :n, 2, :b, :ok)"),
            {"a": ACCOUNT, "n": len(body), "b": body, "ok": b"ok"})
    engine.dispose()
    db = await open_database(f"sqlite:///{path}")  # migrates to head
    try:
        async with db.begin() as conn:
            row = await logstore.get_log(conn, ACCOUNT, "gw", "01OLD")
        assert row is not None and row["request_body"] == body and row["response_body"] == b"ok"
    finally:
        await db.close()
