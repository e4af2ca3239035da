"""The ``log_management`` cap is exact across processes: several log writers on one database never
store more than the gateway's limit (before: each process checked a count cached for itself, so the
second writer's stale count let a batch through: 110 stored for a limit of 100)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluice.logs.retention import DELETE_OLDEST, STOP_INSERTING
from sluice.observe.sink import LogSink
from sluice.providers.registry import CATALOG_SLUGS
from sluice.store import logs as logstore
from sluice.store.database import Database, open_database
from tests.conftest import unique_id
from tests.observe.support import ACCOUNT, add_gateways, exchange
from tests.support.server import MockUpstream, Server, upstream_env

LIMIT = 100


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'logs.db'}"
    return request.getfixturevalue("fresh_pg_url")


async def _stored(db: Database, gateway_id: str = "gw") -> int:
    async with db.begin() as conn:
        return await conn.run_sync(lambda sync: logstore.count_logs_sync(sync, ACCOUNT, gateway_id))


async def _two_writers(url: str, strategy: str) -> tuple[Database, Database, LogSink, LogSink]:
    """Two log writers, each with its own database handle (pool, connections): two processes."""
    first, second = await open_database(url), await open_database(url)
    await add_gateways(first, ("gw", {"collect_logs": True, "log_management": LIMIT,
                                      "log_management_strategy": strategy}))
    sinks = [LogSink(db, interval_s=3600, body_max_bytes=1024) for db in (first, second)]
    return first, second, sinks[0], sinks[1]


async def _record_and_flush(sink: LogSink, count: int) -> None:
    for _ in range(count):
        sink.record(exchange())
    await sink.flush()


async def test_alternating_writers_stop_exactly_at_the_limit(db_url: str) -> None:
    first, second, a, b = await _two_writers(db_url, STOP_INSERTING)
    try:
        for sink, count in ((a, 40), (b, 40), (a, 30), (b, 30)):
            await _record_and_flush(sink, count)
        assert await _stored(first) == LIMIT
        assert a.dropped.get("log_limit", 0) + b.dropped.get("log_limit", 0) == 40
    finally:
        await first.close()
        await second.close()


async def test_simultaneous_writers_stop_exactly_at_the_limit(db_url: str) -> None:
    first, second, a, b = await _two_writers(db_url, STOP_INSERTING)
    try:
        for _ in range(3):
            await asyncio.gather(_record_and_flush(a, 45), _record_and_flush(b, 45))
        assert await _stored(first) == LIMIT
    finally:
        await first.close()
        await second.close()


async def test_delete_oldest_writers_never_keep_more_than_the_limit(db_url: str) -> None:
    first, second, a, b = await _two_writers(db_url, DELETE_OLDEST)
    try:
        for _ in range(4):
            await asyncio.gather(_record_and_flush(a, 45), _record_and_flush(b, 45))
            assert await _stored(first) <= LIMIT
        assert await _stored(first) >= LIMIT - 2 * 45  # room was made, not everything dropped
    finally:
        await first.close()
        await second.close()


async def test_a_log_delete_elsewhere_lowers_the_count_the_next_check_uses(db_url: str) -> None:
    first, second, a, b = await _two_writers(db_url, STOP_INSERTING)
    try:
        await _record_and_flush(a, LIMIT)
        async with second.begin() as conn:  # the Logs API deleting every log of the gateway
            await logstore.delete_logs(conn, logstore.where(ACCOUNT, "gw", []))
        await _record_and_flush(b, 10)
        assert await _stored(first) == 10
    finally:
        await first.close()
        await second.close()


# -- two real gateway processes on PostgreSQL ---------------------------------------------------------

@pytest.fixture()
def two_servers(tmp_path: Path, fresh_pg_url: str, mock_upstream: MockUpstream,
                cluster_master_key: str) -> Iterator[list[Server]]:
    env = {**upstream_env(mock_upstream.url, list(CATALOG_SLUGS)), "SLUICE_DATABASE_URL": fresh_pg_url,
           "SLUICE_MASTER_KEY": cluster_master_key, "SLUICE_LOG_FLUSH_INTERVAL_S": "0.05",
           "SLUICE_CHANGE_POLL_INTERVAL_S": "0.1"}
    first = Server(tmp_path / "a", env=env).start(timeout=60)
    second = Server(tmp_path / "b", env=env)
    second.creds = first.creds
    try:
        second.start(timeout=60)
        yield [first, second]
    finally:
        first.stop()
        second.stop()


CAP, ROOM = 10_000, 50


async def _prefill(url: str, account_id: str, gateway_id: str, count: int) -> None:
    """``count`` old logs straight into the table (as if written long ago; no writer's bound knows them)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO request_logs (id, account_id, gateway_id, created_at, provider, path, method, "
            "success, cached, stream, duration, custom_cost, request_size, response_size, body_codec) "
            "SELECT lpad(i::text, 26, '0'), $1, $2, '2026-01-01T00:00:00.000Z', 'openai', "
            "'chat/completions', 'POST', true, false, false, 1, false, 0, 0, 0 "
            "FROM generate_series(1, $3::int) AS i",
            account_id, gateway_id, count)
    finally:
        await conn.close()


@pytest.mark.postgres
def test_two_processes_on_postgres_store_exactly_the_limit(two_servers: list[Server],
                                                           fresh_pg_url: str) -> None:
    first, second = two_servers
    api = f"{first.api}/accounts/{first.account_id}/ai-gateway/gateways"
    gateway = unique_id()
    settings = {"id": gateway, "authentication": False, "collect_logs": True, "log_management": CAP,
                "log_management_strategy": "STOP_INSERTING"}
    assert httpx.post(api, json=settings, headers=first.headers(), timeout=10).status_code == 200
    asyncio.run(_prefill(fresh_pg_url, first.account_id, gateway, CAP - ROOM))  # the smallest cap is 10,000
    config = {"provider_slug": "openai", "alias": "default", "default_config": True, "secret": "sk-test-cap"}
    assert httpx.post(f"{api}/{gateway}/provider_configs", json=config, headers=first.headers(),
                      timeout=10).status_code == 200
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    deadline = time.monotonic() + 10  # the second process learns of the gateway from the change feed
    while httpx.post(f"{second.url}/v1/{second.account_id}/{gateway}/openai/chat/completions", json=body,
                     timeout=30).status_code != 200:
        assert time.monotonic() < deadline, "the gateway never reached the second process"
        time.sleep(0.1)
    for sent in range(150):
        srv = (first, second)[sent % 2]
        response = httpx.post(f"{srv.url}/v1/{srv.account_id}/{gateway}/openai/chat/completions", json=body,
                              timeout=30)
        assert response.status_code == 200
        time.sleep(0.01)  # let both writers flush several small batches each
    first.stop()
    second.stop()  # SIGTERM flushes what is buffered

    async def count() -> int:
        db = await open_database(fresh_pg_url)
        try:
            async with db.begin() as conn:
                return await conn.run_sync(lambda c: logstore.count_logs_sync(c, first.account_id, gateway))
        finally:
            await db.close()

    assert asyncio.run(count()) == CAP
