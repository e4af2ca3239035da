"""Redis stopped during traffic and started again (docs/scale-out.md#when-redis-is-down): the data
plane never answers 5xx, rate limits follow SLUICE_RATE_LIMIT_ON_REDIS_ERROR, /readyz, /metrics and
the log show the outage (logged once), and limits are shared again by themselves once Redis is back.

Each test runs its own redis-server on a free port (the shared Redis is never stopped)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.proxy.helpers import add_config, upstream_requests
from tests.proxy.test_rate_limits import _fixed_period
from tests.proxy.test_scale_out_limits import api, new_gateway
from tests.support.redis_server import RedisServer
from tests.support.server import MockUpstream, Server, upstream_env

LIMIT = 5
UNAVAILABLE = re.compile(
    r'sluice_ratelimit_unchecked_total\{policy="(\w+)",store="redis"\} (\S+)')


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def gateway_server(tmp_path: Path, name: str, redis_server: RedisServer, mock: MockUpstream, prefix: str,
                   policy: str) -> Server:
    # 1 s rather than 50 ms: this shared test machine stalls longer than 50 ms at times, and a stall
    # would be an outage too. A stopped Redis refuses connections at once either way.
    return Server(tmp_path / name, env={
        **upstream_env(mock.url, ["openai"]), "SLUICE_REDIS_URL": redis_server.url,
        "SLUICE_REDIS_KEY_PREFIX": prefix, "SLUICE_RATE_LIMIT_ON_REDIS_ERROR": policy,
        "SLUICE_REDIS_TIMEOUT_S": "1"}).start(timeout=60)


def statuses(url: str, count: int) -> list[int]:
    with httpx.Client(timeout=30) as client:
        return [client.get(url).status_code for _ in range(count)]


def redis_dependency(srv: Server) -> str:
    response = httpx.get(f"{srv.url}/readyz", timeout=10)
    assert response.status_code == 200, response.text  # a Redis outage never makes the process unready
    return response.json()["dependencies"]["redis"]


def wait_for_redis(srv: Server, state: str) -> None:
    deadline = time.monotonic() + 10
    while redis_dependency(srv) != state:
        assert time.monotonic() < deadline, f"/readyz never showed redis {state}"
        time.sleep(0.05)


def metric(srv: Server, pattern: re.Pattern[str]) -> dict[str, float]:
    text = httpx.get(f"{srv.url}/metrics", timeout=10).text
    return {m[1]: float(m[2]) for m in pattern.finditer(text)}


def test_allow_keeps_serving_and_recovers(tmp_path: Path, redis_server: RedisServer,
                                          mock_upstream: MockUpstream, redis_prefix: str) -> None:
    srv = gateway_server(tmp_path, "allow", redis_server, mock_upstream, redis_prefix, "allow")
    try:
        with api(srv) as client:
            gateway = new_gateway(client)
            add_config(client, gateway, "openai", rate_limit=LIMIT, rate_limit_period=_fixed_period())
        url = f"{srv.url}/v1/{srv.account_id}/{gateway}/openai/models"
        assert statuses(url, LIMIT + 2) == [200] * LIMIT + [429, 429]
        assert redis_dependency(srv) == "up"

        redis_server.stop()
        during = statuses(url, 30)
        assert during == [200] * 30  # allow: limits are not enforced, nothing fails
        assert redis_dependency(srv) == "down"
        assert "sluice_ratelimit_store_up{store=\"redis\"} 0.0" in httpx.get(f"{srv.url}/metrics").text
        assert metric(srv, UNAVAILABLE) == {"allow": 30.0}
        assert srv.output().count("rate-limit store unreachable") == 1  # once per outage, not per request

        redis_server.start()  # a fresh, empty Redis on the same port
        wait_for_redis(srv, "up")
        assert statuses(url, LIMIT + 1) == [200] * LIMIT + [429]  # shared limits again, counted afresh
        assert srv.output().count("rate-limit store reachable again") == 1
    finally:
        srv.stop()


def test_deny_refuses_limited_requests_only(tmp_path: Path, redis_server: RedisServer,
                                            mock_upstream: MockUpstream, redis_prefix: str) -> None:
    srv = gateway_server(tmp_path, "deny", redis_server, mock_upstream, redis_prefix, "deny")
    try:
        with api(srv) as client:
            limited, unlimited = new_gateway(client), new_gateway(client)
            add_config(client, limited, "openai", rate_limit=1000, rate_limit_period=60)
            add_config(client, unlimited, "openai")
        limited_url = f"{srv.url}/v1/{srv.account_id}/{limited}/openai/models"
        unlimited_url = f"{srv.url}/v1/{srv.account_id}/{unlimited}/openai/models"
        redis_server.stop()
        mock_upstream.clear()
        refused = [httpx.get(limited_url, timeout=30) for _ in range(5)]
        assert [r.status_code for r in refused] == [429] * 5
        assert all(r.headers["retry-after"] == "1" and r.json()["internalCode"] == 2004 for r in refused)
        assert "unreachable" in refused[0].json()["error"][0]["message"]
        assert upstream_requests(mock_upstream, "/openai/") == []
        assert statuses(unlimited_url, 5) == [200] * 5  # no limit: Redis is not needed
        assert metric(srv, UNAVAILABLE) == {"deny": 5.0}
        redis_server.start()
        wait_for_redis(srv, "up")
        assert statuses(limited_url, 3) == [200] * 3
    finally:
        srv.stop()


def test_store_series_under_workers_are_summed_and_never_go_backwards(
        tmp_path: Path, redis_server: RedisServer, mock_upstream: MockUpstream, redis_prefix: str) -> None:
    """Under ``--workers`` every worker feeds the summed files (observe/metrics.py ``StoreSeries``): a
    scrape answered by any worker shows all the outage's unchecked requests, and ``up`` is 0."""
    srv = Server(tmp_path / "workers", env={
        **upstream_env(mock_upstream.url, ["openai"]), "SLUICE_REDIS_URL": redis_server.url,
        "SLUICE_REDIS_KEY_PREFIX": redis_prefix, "SLUICE_REDIS_TIMEOUT_S": "1"},
        serve_args=("--workers", "3")).start(timeout=60)
    try:
        with api(srv) as client:
            gateway = new_gateway(client)
            add_config(client, gateway, "openai", rate_limit=1000, rate_limit_period=60)
        url = f"{srv.url}/v1/{srv.account_id}/{gateway}/openai/models"
        wait_until_every_worker_serves(url)
        redis_server.stop()
        sent = 30
        for _ in range(sent):  # a new connection each time: the requests spread over the workers
            assert httpx.get(url, headers={"connection": "close"}, timeout=30).status_code == 200
        time.sleep(2.5)  # every worker has copied its view (metrics SYNC_S = 1 s)
        scrapes = [httpx.get(f"{srv.url}/metrics", headers={"connection": "close"}, timeout=10).text
                   for _ in range(9)]
        assert [metric_text(text) for text in scrapes] == [{"allow": float(sent)}] * 9
        assert all('sluice_ratelimit_store_up{store="redis"} 0.0' in text for text in scrapes)
    finally:
        srv.stop()


def wait_until_every_worker_serves(url: str) -> None:
    """The new gateway reaches the other workers through the change feed (within a second)."""
    deadline, in_a_row = time.monotonic() + 10, 0
    while in_a_row < 9:
        assert time.monotonic() < deadline, "a worker never learned the new gateway"
        ok = httpx.get(url, headers={"connection": "close"}, timeout=30).status_code == 200
        in_a_row = in_a_row + 1 if ok else 0
        time.sleep(0 if ok else 0.1)


def metric_text(text: str) -> dict[str, float]:
    return {m[1]: float(m[2]) for m in UNAVAILABLE.finditer(text)}
