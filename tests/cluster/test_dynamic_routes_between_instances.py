"""A deployment made through one instance routes the next requests of another within 1 s (the change
feed, LISTEN/NOTIFY on PostgreSQL; the poll is set to 30 s so only the fast path can meet the bound),
and a roll-back likewise."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from sluice.providers.registry import CATALOG_SLUGS
from tests.proxy.helpers import add_config
from tests.routing.graphs import single_model
from tests.support.cluster import Cluster, running_cluster
from tests.support.server import MockUpstream, Server, upstream_env

BOUND_S = 1.0


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, mock_upstream: MockUpstream) -> Iterator[Cluster]:
    env = {**upstream_env(mock_upstream.url, list(CATALOG_SLUGS)), "SLUICE_CHANGE_POLL_INTERVAL_S": "30"}
    with running_cluster(tmp_path_factory.mktemp("routes"), 2, env) as group:
        yield group


def _model_within(client: httpx.Client, server: Server, gateway: str, expected: str) -> float:
    """Seconds until ``dynamic/live`` on ``server`` answers from ``expected`` (polled every 10 ms)."""
    url = f"{server.url}/v1/{server.account_id}/{gateway}/compat/chat/completions"
    started = time.monotonic()
    while True:
        response = client.post(url, json={"model": "dynamic/live", "messages": [{"role": "user",
                                                                                   "content": "x"}]})
        elapsed = time.monotonic() - started
        if response.headers.get("cf-aig-model") == expected or elapsed > 10:
            return elapsed
        time.sleep(0.01)


def test_deploy_and_roll_back_reach_the_other_instance(pair: Cluster) -> None:
    a, b = pair.servers
    gateway = "dr-" + secrets.token_hex(4)
    with httpx.Client(base_url=f"{a.api}/accounts/{a.account_id}", headers=a.headers(), timeout=30) as api, \
            httpx.Client(timeout=30) as client:
        created = api.post("/ai-gateway/gateways", json={"id": gateway, "authentication": False})
        assert created.status_code == 200
        add_config(api, gateway, "openai")
        route = api.post(f"/ai-gateway/gateways/{gateway}/routes",
                         json={"name": "live", "elements": single_model("openai", "m-v1")}).json()["result"]
        assert _model_within(client, b, gateway, "m-v1") < BOUND_S
        base = f"/ai-gateway/gateways/{gateway}/routes/{route['id']}"
        v2 = api.post(f"{base}/versions", json={"elements": single_model("openai", "m-v2")}).json()["result"]
        assert api.post(f"{base}/deployments", json={"version_id": v2["version_id"]}).status_code == 200
        assert _model_within(client, b, gateway, "m-v2") < BOUND_S
        v1 = route["version"]["version_id"]
        assert api.post(f"{base}/deployments", json={"version_id": v1}).status_code == 200
        assert _model_within(client, b, gateway, "m-v1") < BOUND_S
