"""A custom provider made, changed and deleted through one instance is served accordingly by another
within 1 s (the change feed, LISTEN/NOTIFY on PostgreSQL; the poll is set to 30 s so only the fast
path can meet the bound): its base URL, its sealed extra headers and the stored key that goes with it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from sluice.providers.registry import CATALOG_SLUGS
from tests.proxy.helpers import add_config, new_key, upstream_requests
from tests.support.cluster import Cluster, account_api, running_cluster
from tests.support.server import MockUpstream, upstream_env

BOUND_S = 1.0
BODY = {"model": "m", "messages": [{"role": "user", "content": "x"}]}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, mock_upstream: MockUpstream) -> Iterator[Cluster]:
    env = {**upstream_env(mock_upstream.url, list(CATALOG_SLUGS)), "SLUICE_CHANGE_POLL_INTERVAL_S": "30"}
    with running_cluster(tmp_path_factory.mktemp("custom"), 2, env) as group:
        yield group


def _within(check: Callable[[], bool]) -> float:
    """Seconds until ``check()`` holds (tried every 10 ms, given up after 10 s)."""
    started = time.monotonic()
    while not check() and time.monotonic() - started < 10:
        time.sleep(0.01)
    return time.monotonic() - started


def test_a_custom_provider_changed_on_one_instance_is_served_so_by_the_other(
        pair: Cluster, mock_upstream: MockUpstream) -> None:
    a, b = pair.servers
    gateway = "cp-" + secrets.token_hex(4)
    slug = "own-" + secrets.token_hex(4)
    stored, extra = new_key("sk-custom"), new_key("tenant")
    with account_api(a) as api, httpx.Client(timeout=30) as client:
        made = api.post("/ai-gateway/gateways", json={"id": gateway, "authentication": False})
        assert made.status_code == 200
        created = api.post("/ai-gateway/custom-providers",
                           json={"name": "Own", "slug": slug, "base_url": f"{mock_upstream.url}/{slug}/v1",
                                 "headers": f'{{"x-tenant": "{extra}"}}'})  # a JSON object as a string
        assert created.status_code == 200, created.text
        provider_id = created.json()["result"]["id"]
        add_config(api, gateway, f"custom-{slug}", secret=stored)
        url = f"{b.url}/v1/{b.account_id}/{gateway}/custom-{slug}/chat/completions"

        def served_under(prefix: str) -> bool:
            answered = client.post(url, json=BODY).status_code == 200
            return answered and bool(upstream_requests(mock_upstream, prefix))

        assert _within(lambda: served_under(f"/{slug}/v1/")) < BOUND_S
        seen = upstream_requests(mock_upstream, f"/{slug}/v1/")[-1]
        assert seen["headers"]["authorization"] == f"Bearer {stored}" and seen["headers"]["x-tenant"] == extra
        # a new base URL through A: B sends the next requests there
        moved = api.patch(f"/ai-gateway/custom-providers/{provider_id}",
                          json={"base_url": f"{mock_upstream.url}/{slug}/v2"})
        assert moved.status_code == 200, moved.text
        assert _within(lambda: served_under(f"/{slug}/v2/")) < BOUND_S
        # deleted through A (its config first: a provider in use cannot go): B refuses it
        configs = api.get(f"/ai-gateway/gateways/{gateway}/provider_configs").json()["result"]
        for config in configs:
            gone = api.delete(f"/ai-gateway/gateways/{gateway}/provider_configs/{config['id']}")
            assert gone.status_code == 200
        assert api.delete(f"/ai-gateway/custom-providers/{provider_id}").status_code == 200
        assert _within(lambda: client.post(url, json=BODY).status_code == 400) < BOUND_S
        refused = client.post(url, json=BODY)
        assert refused.status_code == 400 and "unknown provider" in refused.text
        assert stored not in refused.text and extra not in refused.text
