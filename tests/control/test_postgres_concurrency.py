"""Concurrent provider-config writes against a server on PostgreSQL (SQLite serialises writers with
BEGIN IMMEDIATE; PostgreSQL's READ COMMITTED does not, so the invariants need their own proof)."""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import asyncpg
import httpx
import pytest

from tests.control.assertions import assert_ok
from tests.support.server import Server

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
WORKERS = 12


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Its own fresh database: ``sluice init`` needs one with no account yet."""
    name = f"sluice_conc_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is unreachable: {exc}")
    srv = Server(tmp_path_factory.mktemp("pg") / "data",
                 env={"SLUICE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}"}).start()
    yield srv
    srv.stop()
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _burst(srv: Server, url: str, bodies: list[dict]) -> list[httpx.Response]:
    def post(body: dict) -> httpx.Response:
        return httpx.post(url, json=body, headers=srv.headers(), timeout=60)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def _gateway(srv: Server) -> str:
    gateway_id = "conc-" + secrets.token_hex(4)
    assert_ok(httpx.post(f"{srv.api}/accounts/{srv.account_id}/ai-gateway/gateways", json={"id": gateway_id},
                         headers=srv.headers()))
    return gateway_id


def test_concurrent_defaults_leave_exactly_one(pg_server: Server) -> None:
    srv = pg_server
    url = f"{srv.api}/accounts/{srv.account_id}/ai-gateway/gateways/{_gateway(srv)}/provider_configs"
    responses = _burst(srv, url, [{"provider_slug": "openai", "alias": f"d{i}", "default_config": True,
                                   "secret": f"sk-default-{i}-123456"} for i in range(WORKERS)])
    assert [r.status_code for r in responses] == [200] * WORKERS, [r.text for r in responses if r.status_code != 200]
    configs = assert_ok(httpx.get(url, headers=srv.headers()))
    assert len(configs) == WORKERS
    assert sum(c["default_config"] for c in configs) == 1, configs


def test_concurrent_duplicate_alias_is_one_create_and_conflicts(pg_server: Server) -> None:
    srv = pg_server
    url = f"{srv.api}/accounts/{srv.account_id}/ai-gateway/gateways/{_gateway(srv)}/provider_configs"
    responses = _burst(srv, url, [{"provider_slug": "openai", "alias": "same", "default_config": False,
                                   "secret": f"sk-same-{i}-123456"} for i in range(WORKERS)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * (WORKERS - 1), [r.text for r in responses]
    assert len(assert_ok(httpx.get(url, headers=srv.headers()))) == 1


def test_concurrent_first_configs_share_one_default_store(pg_server: Server) -> None:
    """Each gateway's first config creates or reuses the account's default store, at the same moment."""
    srv = pg_server
    gateways = [_gateway(srv) for _ in range(WORKERS)]
    base = f"{srv.api}/accounts/{srv.account_id}/ai-gateway/gateways"

    def post(gateway_id: str) -> httpx.Response:
        return httpx.post(f"{base}/{gateway_id}/provider_configs", headers=srv.headers(), timeout=60,
                          json={"provider_slug": "groq", "alias": "k", "default_config": True, "secret": "gsk-12345678"})

    with ThreadPoolExecutor(WORKERS) as pool:
        responses = list(pool.map(post, gateways))
    assert [r.status_code for r in responses] == [200] * WORKERS, [r.text for r in responses if r.status_code != 200]
    stores = {assert_ok(httpx.get(f"{base}/{g}", headers=srv.headers()))["store_id"] for g in gateways}
    assert len(stores) == 1
