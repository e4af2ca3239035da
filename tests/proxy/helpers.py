"""Small helpers shared by the data-plane tests: configs, tokens and gateway URLs."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.support.server import MockUpstream, Server

RUN = "AI Gateway Run"


def new_key(prefix: str = "sk-test") -> str:
    """A unique provider key, so a test can recognise exactly its own key upstream."""
    return f"{prefix}-{secrets.token_hex(12)}"


def add_config(api: httpx.Client, gateway: str, provider: str = "openai", alias: str = "default",
               default: bool = True, secret: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"provider_slug": provider, "alias": alias, "default_config": default,
            "secret": secret or new_key(), **extra}
    response = api.post(f"/ai-gateway/gateways/{gateway}/provider_configs", json=body)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def create_token(api: httpx.Client, permissions: list[str] | None = None, **extra: Any) -> str:
    response = api.post("/tokens",
                        json={"name": f"t-{secrets.token_hex(3)}", "permissions": permissions or [RUN],
                                         **extra})
    assert response.status_code == 200, response.text
    return response.json()["result"]["value"]


def gateway_url(server: Server, gateway: str, provider: str = "openai") -> str:
    return f"{server.url}/v1/{server.account_id}/{gateway}/{provider}"


def upstream_requests(mock: MockUpstream, prefix: str = "") -> list[dict[str, Any]]:
    """Requests the mock recorded (control-path requests excluded), optionally only under ``prefix``."""
    return [r for r in mock.requests()
            if r["path"].startswith(prefix) and not r["path"].startswith("/__mock__")]


def set_gateway(api: httpx.Client, gateway: str, **fields: Any) -> None:
    response = api.put(f"/ai-gateway/gateways/{gateway}", json=fields)
    assert response.status_code == 200, response.text
