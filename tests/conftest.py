"""Shared fixtures: one real server with every provider pointed at a mock upstream.

The server runs on SQLite, or on a fresh PostgreSQL database under ``SLUICE_TEST_BACKEND=postgres``
(``tests/support/backend.py``). Fixtures that need PostgreSQL or Redis fail — never skip — when the
server is unreachable.
"""

from __future__ import annotations

import inspect
import os
import secrets
import subprocess
import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sluice.providers.registry import CATALOG_SLUGS
from tests.support import backend as test_backend
from tests.support.server import MockUpstream, Server, upstream_env


def pytest_report_header(config: pytest.Config) -> str:
    redis = test_backend.redis_url() or "off"
    return f"sluice test servers: backend={test_backend.suite_backend()}, redis={redis}"


def _skip_not_on_postgres(items: list[pytest.Item]) -> None:
    """``not_on_postgres(reason)``: the few tests that cannot run in the PostgreSQL configuration
    are skipped there with their reason, which ``-rs`` reports — never silently."""
    if not test_backend.on_postgres():
        return
    for item in items:
        marker = item.get_closest_marker("not_on_postgres")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            assert reason, f"{item.nodeid}: not_on_postgres needs a reason"
            item.add_marker(pytest.mark.skip(reason=f"not on PostgreSQL: {reason}"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    test_backend.drop_created_databases()


# Test tiers. `make test-fast` runs `-m "not server and not postgres"`: pure and in-process tests.
# The two marks are applied here from what a test uses, so nobody has to remember them: `server`
# when the test or one of its fixtures uses a server fixture or names a subprocess starter,
# `postgres` when it uses `pg_url` or is parametrised on PostgreSQL, `redis` when it uses `redis_prefix`
# (through `redis_url` or `redis_env` too).
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
    _skip_not_on_postgres(items)
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
        if "redis_prefix" in fixtures:
            item.add_marker(pytest.mark.redis)


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
    try:
        url = test_backend.create_database("sluice_test_")
    except RuntimeError as exc:  # fail loudly, never skip
        pytest.fail(str(exc))
    yield url
    test_backend.drop_database(url)


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test session's own on the shared Redis; its keys are deleted afterwards."""
    import redis

    prefix = f"sluice-test-{secrets.token_hex(4)}:"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:  # fail loudly, never skip
        pytest.fail(f"Redis on 127.0.0.1:6379 is unreachable: {exc}")
    yield prefix
    keys = list(client.scan_iter(f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def redis_url(redis_prefix: str) -> str:
    """The real Redis; use ``redis_prefix`` (``SLUICE_REDIS_KEY_PREFIX`` for servers) for every key."""
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_env(redis_url: str, redis_prefix: str) -> dict[str, str]:
    """Environment for a server sharing its rate limits through this session's Redis keys."""
    return {"SLUICE_REDIS_URL": redis_url, "SLUICE_REDIS_KEY_PREFIX": redis_prefix}
