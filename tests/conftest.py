"""Shared fixtures: one real server (SQLite) with every provider pointed at a mock upstream.

Fixtures that need PostgreSQL or Redis fail — never skip — when the server is unreachable.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from sluice.providers.registry import CATALOG_SLUGS
from tests.support.server import MockUpstream, Server, upstream_env

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def mock_upstream() -> Iterator[MockUpstream]:
    mock = MockUpstream()
    yield mock
    mock.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, mock_upstream: MockUpstream) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("sluice") / "data"
    srv = Server(data_dir, env=upstream_env(mock_upstream.url, list(CATALOG_SLUGS))).start()
    yield srv
    srv.stop()


@pytest.fixture()
def api(server: Server) -> Iterator[httpx.Client]:
    """httpx client on the management API with the admin token."""
    with httpx.Client(base_url=f"{server.api}/accounts/{server.account_id}", headers=server.headers(),
                      timeout=30) as client:
        yield client


@pytest.fixture()
def cf(server: Server):  # type: ignore[no-untyped-def]
    from cloudflare import Cloudflare

    client = Cloudflare(api_token=server.token, base_url=server.api, max_retries=0)
    yield client
    client.close()


def unique_id(prefix: str = "gw") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture()
def gateway(api: httpx.Client) -> str:
    """A fresh gateway with authentication off (data-plane tests turn it on where they test it)."""
    gateway_id = unique_id()
    response = api.post("/ai-gateway/gateways", json={"id": gateway_id, "authentication": False})
    assert response.status_code == 200, response.text
    return gateway_id


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped afterwards)."""
    import asyncio

    import asyncpg

    name = f"sluice_test_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:  # connection refused and friends: fail loudly, never skip
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is unreachable: {exc}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis on 127.0.0.1:6379 (fails, never skips, when unreachable). What tests store there
    is scoped by account ids that are unique to this session, and expires."""
    import redis

    url = "redis://127.0.0.1:6379/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis on 127.0.0.1:6379 is unreachable: {type(exc).__name__}")
    finally:
        client.close()
    return url
