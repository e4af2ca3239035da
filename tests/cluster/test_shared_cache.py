"""The response cache shared through Redis: cached through A is a HIT on B; invalidate-on-update
through A reaches B; Redis unreachable is a MISS, never a 5xx."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluice.providers.registry import CATALOG_SLUGS
from tests.proxy.helpers import add_config, gateway_url
from tests.support.cluster import Cluster, account_api, running_cluster
from tests.support.server import MockUpstream, Server, free_port, upstream_env

CHAT = {"model": "mock-model", "messages": [{"role": "user", "content": "cache me"}]}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, mock_upstream: MockUpstream,
         redis_url: str) -> Iterator[Cluster]:
    env = {**upstream_env(mock_upstream.url, list(CATALOG_SLUGS)), "SLUICE_REDIS_URL": redis_url}
    with running_cluster(tmp_path_factory.mktemp("cache"), 2, env) as group:
        yield group



def _chat(server: Server, gateway: str, content: str) -> httpx.Response:
    body = {**CHAT, "messages": [{"role": "user", "content": content}]}
    return httpx.post(gateway_url(server, gateway) + "/chat/completions", json=body, timeout=30)


def _caching_gateway(server: Server, others: list[Server], **extra: object) -> str:
    gateway = "cache-" + secrets.token_hex(4)
    with account_api(server) as api:
        response = api.post("/ai-gateway/gateways", json={"id": gateway, "authentication": False,
                                                          "cache_ttl": 300,
                                                           **extra})
        assert response.status_code == 200, response.text
        add_config(api, gateway, "openai")
    for other in others:  # the gateway has reached the others (change feed)
        deadline = time.monotonic() + 10
        while httpx.get(gateway_url(other, gateway) + "/models").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    return gateway


def test_a_response_cached_through_a_is_a_hit_on_b(pair: Cluster, mock_upstream: MockUpstream) -> None:
    a, b = pair.servers
    gateway = _caching_gateway(a, [b])
    mock_upstream.clear()
    first = _chat(a, gateway, "shared")
    assert first.status_code == 200 and first.headers["cf-aig-cache-status"] == "MISS"
    second = _chat(b, gateway, "shared")
    assert second.status_code == 200 and second.headers["cf-aig-cache-status"] == "HIT"
    assert second.json() == first.json()
    assert len([r for r in mock_upstream.requests() if r["path"].endswith("/chat/completions")]) == 1


def test_invalidate_on_update_through_a_reaches_b(pair: Cluster) -> None:
    a, b = pair.servers
    gateway = _caching_gateway(a, [b], cache_invalidate_on_update=True)
    assert _chat(b, gateway, "stale?").headers["cf-aig-cache-status"] == "MISS"
    assert _chat(b, gateway, "stale?").headers["cf-aig-cache-status"] == "HIT"
    with account_api(a) as api:
        response = api.put(f"/ai-gateway/gateways/{gateway}", json={"cache_ttl": 300,
                                                                    "cache_invalidate_on_update": True,
                                                                    "collect_logs": False})
        assert response.status_code == 200, response.text
    assert _chat(b, gateway, "stale?").headers["cf-aig-cache-status"] == "MISS"


def test_an_unreachable_redis_is_a_miss_never_a_5xx(tmp_path: Path, mock_upstream: MockUpstream) -> None:
    env = {**upstream_env(mock_upstream.url, list(CATALOG_SLUGS)),
           "SLUICE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens there
    server = Server(tmp_path / "data", env=env).start()
    try:
        gateway = _caching_gateway(server, [])
        statuses = [_chat(server, gateway, "no redis") for _ in range(3)]
        assert [(r.status_code, r.headers.get("cf-aig-cache-status")) for r in statuses] == [(200,
                                                                                              "MISS")] * 3
        with account_api(server) as api:  # management writes that invalidate do not fail either
            response = api.put(f"/ai-gateway/gateways/{gateway}", json={"cache_ttl": 300,
                                                                        "cache_invalidate_on_update": True})
            assert response.status_code == 200, response.text
            assert api.delete(f"/ai-gateway/gateways/{gateway}").status_code == 200
    finally:
        server.stop()
