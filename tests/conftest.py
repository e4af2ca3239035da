"""Shared fixtures: one real server with every provider pointed at a mock upstream.

The server runs on SQLite, or on a fresh PostgreSQL database under ``SLUICE_TEST_BACKEND=postgres``
(``tests/support/backend.py``). Fixtures that need PostgreSQL or Redis fail — never skip — when the
server is unreachable.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from sluice.providers.registry import CATALOG_SLUGS
from tests.support import backend as test_backend
from tests.support.server import MockUpstream, Server, upstream_env



def pytest_report_header(config: pytest.Config) -> str:
    redis = test_backend.redis_url() or "off"
    return f"sluice test servers: backend={test_backend.suite_backend()}, redis={redis}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
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
