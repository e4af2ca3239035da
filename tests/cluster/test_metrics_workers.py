"""Build 5: under ``sluice serve --workers 3`` /metrics sums every worker, so a counter never goes
backwards between scrapes (before: each scrape showed the one worker that answered: 100, 22, 100)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sluice.providers.registry import CATALOG_SLUGS
from tests.conftest import unique_id
from tests.support.server import MockUpstream, Server, upstream_env

WORKERS = 3
REQUESTS = 90


@pytest.fixture()
def workers_server(tmp_path: Path, mock_upstream: MockUpstream) -> Iterator[Server]:
    srv = Server(tmp_path / "data", env=upstream_env(mock_upstream.url, list(CATALOG_SLUGS)),
                 serve_args=("--workers", str(WORKERS), "--allow-per-process-limits")).start(timeout=60)
    yield srv
    srv.stop()


def requests_total(server: Server) -> float:
    """``sluice_requests_total`` summed over its series, from one scrape on a new connection (so
    successive scrapes land on different workers)."""
    text = httpx.get(f"{server.url}/metrics", headers={"connection": "close"}, timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               if family.name == "sluice_requests" for sample in family.samples
               if sample.name == "sluice_requests_total")


def test_request_counter_is_the_sum_of_all_workers_and_never_goes_backwards(workers_server: Server) -> None:
    srv = workers_server
    headers = srv.headers()
    gateway = unique_id()
    api = f"{srv.api}/accounts/{srv.account_id}/ai-gateway/gateways"
    created = httpx.post(api, json={"id": gateway, "authentication": False}, headers=headers, timeout=10)
    assert created.status_code == 200
    config = {"provider_slug": "openai", "alias": "default", "default_config": True,
              "secret": "sk-test-metrics"}
    created = httpx.post(f"{api}/{gateway}/provider_configs", json=config, headers=headers, timeout=10)
    assert created.status_code == 200
    url = f"{srv.url}/v1/{srv.account_id}/{gateway}/openai/chat/completions"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    seen: list[float] = []
    for sent in range(1, REQUESTS + 1):
        # A new connection each time: uvicorn's workers share the socket, so requests spread over them.
        httpx.post(url, json=body, headers={"connection": "close"}, timeout=30)
        if sent % 10 == 0:
            seen.extend(requests_total(srv) for _ in range(3))
    seen.extend(requests_total(srv) for _ in range(10))
    assert seen == sorted(seen), f"a scrape went backwards: {seen}"
    assert seen[-10:] == [REQUESTS] * 10, seen
    run_dirs = list((srv.data_dir / "metrics").iterdir())
    assert len(run_dirs) == 1
    counter_files = list(run_dirs[0].glob("counter_*.db"))
    assert len(counter_files) >= 2, f"requests were not spread over the workers: {counter_files}"
