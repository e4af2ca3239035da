"""The server starts, answers health checks and the seed page's create call."""

from tests.support.server import Server


def test_health_and_ready(server: Server) -> None:
    import httpx

    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    redis = {"redis": "up"} if server.env.get("SLUICE_REDIS_URL") else {}  # make test-pg gives servers one
    assert ready.json() == {"status": "ready", "dependencies": {"database": "up", **redis}}


def test_seed_page_create_returns_documented_shape(api, gateway) -> None:  # type: ignore[no-untyped-def]
    response = api.post(f"/ai-gateway/gateways/{gateway}/provider_configs",
                        json={"alias": "default", "default_config": True, "provider_slug": "openai",
                              "secret": "sk-test-0123456789abcdefghij", "rate_limit": 10,
                              "rate_limit_period": 60})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    result = body["result"]
    assert set(result) >= {"id", "alias", "default_config", "gateway_id", "modified_at", "provider_slug",
                           "secret_id", "secret_preview", "rate_limit", "rate_limit_period"}
    assert result["gateway_id"] == gateway and result["alias"] == "default"
    assert "0123456789abcdefghij" not in response.text
