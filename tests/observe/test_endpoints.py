"""GET /metrics on the real server, open and token-protected; key activity on provider configs."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from tests.control.assertions import assert_ok
from tests.support.server import Server


def test_metrics_are_open_by_default(server: Server) -> None:
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE sluice_requests_total counter" in response.text
    assert "# TYPE sluice_request_duration_seconds histogram" in response.text
    assert server.token not in response.text
    assert httpx.post(f"{server.url}/metrics", timeout=10).status_code == 405


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    token = secrets.token_urlsafe(24)
    data_dir = Path(tmp_path_factory.mktemp("metrics")) / "data"
    srv = Server(data_dir, env={"SLUICE_METRICS_TOKEN": token}).start()
    yield srv, token
    srv.stop()


def test_metrics_token_is_required_when_set(guarded) -> None:  # type: ignore[no-untyped-def]
    srv, token = guarded
    url = f"{srv.url}/metrics"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    ok = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert ok.status_code == 200 and "sluice_requests_total" in ok.text and token not in ok.text


def test_provider_configs_show_key_activity(api: httpx.Client, gateway: str) -> None:
    key = "sk-proj-" + secrets.token_urlsafe(24)
    config = assert_ok(api.post(f"/ai-gateway/gateways/{gateway}/provider_configs",
                                json={"provider_slug": "openai", "alias": "fresh", "default_config": True,
                                      "secret": key}))
    for listed in (assert_ok(api.get(f"/ai-gateway/gateways/{gateway}/provider_configs/{config['id']}")),
                   assert_ok(api.get(f"/ai-gateway/gateways/{gateway}/provider_configs"))[0]):
        assert (listed["last_used_at"], listed["request_count"], listed["error_count"], listed["stale"]) == (
            None, 0, 0, False)
