"""Shared fixtures: one real server (SQLite) with every provider pointed at a mock upstream.

Fixtures that need PostgreSQL or Redis fail — never skip — when the server is unreachable.
"""

from __future__ import annotations

import inspect
import os
import secrets
import subprocess
import types
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from sluice.providers.registry import CATALOG_SLUGS
from tests.support.server import MockUpstream, Server, upstream_env

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"

# Test tiers. `make test-fast` runs `-m "not server and not postgres"`: pure and in-process tests.
# The two marks are applied here from what a test uses, so nobody has to remember them: `server`
# when the test or one of its fixtures uses a server fixture or names a subprocess starter,
# `postgres` when it uses `pg_url` or is parametrised on PostgreSQL.
SERVER_FIXTURES = frozenset({"server", "mock_upstream"})
SUBPROCESS_STARTERS = frozenset({"Server", "MockUpstream", "sluice_cli", "subprocess"})
FAST_TIER = os.environ.get("SLUICE_TEST_TIER") == "fast"


def _names(code: types.CodeType) -> set[str]:
    """Global and attribute names a function uses, nested functions included."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _starts_subprocess(func: Any, seen: set[Any] | None = None) -> bool:
    """Whether ``func``, or a helper function of the test suite it calls, names a subprocess starter."""
    func = inspect.unwrap(func)
    code = getattr(func, "__code__", None)
    seen = set() if seen is None else seen
    if code is None or func in seen:
        return False
    seen.add(func)
    names = _names(code)
    if not SUBPROCESS_STARTERS.isdisjoint(names):
        return True
    helpers = (func.__globals__.get(name) for name in names)
    return any(inspect.isfunction(h) and h.__module__.startswith("tests") and _starts_subprocess(h, seen)
               for h in helpers)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        funcs = [getattr(item, "function", None)]
        info = getattr(item, "_fixtureinfo", None)
        if info is not None:
            funcs += [d.func for defs in info.name2fixturedefs.values() for d in defs]
        if fixtures & SERVER_FIXTURES or any(f is not None and _starts_subprocess(f) for f in funcs):
            item.add_marker(pytest.mark.server)
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_postgres = any(isinstance(v, str) and v.startswith("postgres") for v in params.values())
        if "pg_url" in fixtures or on_postgres:
            item.add_marker(pytest.mark.postgres)


class _NoServerProcess(subprocess.Popen):  # type: ignore[type-arg]
    def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
        if any("sluice" in str(arg) for arg in ([args] if isinstance(args, (str, bytes)) else args)):
            raise AssertionError(f"the fast tier starts no server ({args!r}): conftest's automatic "
                                 "`server` mark missed this test; add `@pytest.mark.server` or teach "
                                 "SUBPROCESS_STARTERS")
        super().__init__(args, *rest, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    if FAST_TIER:  # a test the marks missed fails loudly instead of making the fast tier slow
        subprocess.Popen = _NoServerProcess  # type: ignore[misc]


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
