"""Build 7, PostgreSQL: with the database down the data plane keeps answering from memory, the
management API answers 503 in the v4 envelope, /readyz 503 naming the database; after the database
comes back everything recovers without restarting Sluice.

The server runs on a PostgreSQL cluster of the test's own, which the test stops and restarts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluice.providers.registry import CATALOG_SLUGS
from tests.conftest import unique_id
from tests.support.pg_cluster import PgCluster
from tests.support.server import MockUpstream, Server, sluice_cli, upstream_env

DURING_OUTAGE = 40
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture()
def cluster() -> Iterator[PgCluster]:
    pg = PgCluster().init()
    pg.start()
    yield pg
    pg.destroy()


@pytest.fixture()
def outage_server(tmp_path: Path, cluster: PgCluster, mock_upstream: MockUpstream,
                  cluster_master_key: str) -> Iterator[Server]:
    env = {**upstream_env(mock_upstream.url, list(CATALOG_SLUGS)), "SLUICE_DATABASE_URL": cluster.url,
           "SLUICE_MASTER_KEY": cluster_master_key, "SLUICE_LOG_FLUSH_INTERVAL_S": "0.1"}
    srv = Server(tmp_path / "data", env=env).start(timeout=60)
    yield srv
    srv.stop()


def _until(check, timeout_s: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_database_outage_data_plane_serves_management_503_and_all_recover(
        outage_server: Server, cluster: PgCluster) -> None:
    srv = outage_server
    api = httpx.Client(base_url=f"{srv.api}/accounts/{srv.account_id}/ai-gateway", headers=srv.headers(),
                       timeout=30)
    gateway = unique_id()
    assert api.post("/gateways", json={"id": gateway, "authentication": False}).status_code == 200
    config = {"provider_slug": "openai", "alias": "default", "default_config": True,
              "secret": "sk-test-outage"}
    assert api.post(f"/gateways/{gateway}/provider_configs", json=config).status_code == 200
    chat = f"{srv.url}/v1/{srv.account_id}/{gateway}/openai/chat/completions"
    assert httpx.post(chat, json=BODY, timeout=30).status_code == 200
    ready = httpx.get(f"{srv.url}/readyz", timeout=10)
    assert ready.status_code == 200
    redis = {"redis": "up"} if srv.env.get("SLUICE_REDIS_URL") else {}  # make test-pg gives servers one
    assert ready.json() == {"status": "ready", "dependencies": {"database": "up", **redis}}

    cluster.stop()

    during = [httpx.post(chat, json=BODY, timeout=30) for _ in range(DURING_OUTAGE)]
    assert [r.status_code for r in during] == [200] * DURING_OUTAGE  # from memory: no DB on the data plane
    for response in (api.get("/gateways"), api.get(f"/gateways/{gateway}"),
                     api.post("/gateways", json={"id": unique_id(), "authentication": False}),
                     api.get(f"/gateways/{gateway}/logs")):
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["success"] is False and body["result"] is None
        assert [e["code"] for e in body["errors"]] == [7503], body
        assert "database" in body["errors"][0]["message"]
        assert response.headers["retry-after"] == "5"
        assert str(cluster.port) not in response.text  # nothing of the driver's message
    ready = httpx.get(f"{srv.url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json() == {"status": "database unreachable", "dependencies": {"database": "down", **redis}}
    assert httpx.get(f"{srv.url}/healthz", timeout=10).status_code == 200  # alive, just not ready

    cluster.start()

    readyz = f"{srv.url}/readyz"
    assert _until(lambda: httpx.get(readyz, timeout=10).status_code == 200), "readyz never recovered"
    assert _until(lambda: api.get("/gateways").status_code == 200), "management never recovered"
    second = unique_id()
    assert api.post("/gateways", json={"id": second, "authentication": False}).status_code == 200
    assert api.post(f"/gateways/{second}/provider_configs", json=config).status_code == 200
    second_chat = f"{srv.url}/v1/{srv.account_id}/{second}/openai/chat/completions"
    response = httpx.post(second_chat, json=BODY, timeout=30)
    assert response.status_code == 200
    log_id = response.headers["cf-aig-log-id"]
    # The log writer survived the outage and writes again, the logs of the outage too (kept buffered).
    assert _until(lambda: api.get(f"/gateways/{second}/logs/{log_id}").status_code == 200), "no log written"
    for response in (during[0], during[-1]):
        assert api.get(f"/gateways/{gateway}/logs/{response.headers['cf-aig-log-id']}").status_code == 200
    # The change poll survived too: a token created by another process (the CLI) works on the data plane.
    assert api.put(f"/gateways/{second}", json={"authentication": True}).status_code == 200
    assert httpx.post(second_chat, json=BODY, timeout=30).status_code == 401
    created = sluice_cli("tokens", "create", "--account", srv.account_id, "--name", "after-outage",
                         "--permission", "AI Gateway Run", "--data-dir", str(srv.data_dir), "--json",
                         env=srv.env)
    auth = {"cf-aig-authorization": f"Bearer {json.loads(created.stdout)['value']}"}
    assert _until(lambda: httpx.post(second_chat, json=BODY, headers=auth, timeout=30).status_code == 200,
                  10), "the change poll never recovered"
    assert srv.proc is not None and srv.proc.poll() is None
