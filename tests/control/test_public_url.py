"""Issue 15 item 11: the gateway URL helper is built on SLUICE_PUBLIC_URL, never on a client's Host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cloudflare import Cloudflare

from tests.support.server import Server

PUBLIC = "https://gateway.example.com/ai"


@pytest.fixture(scope="module")
def public_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("public") / "data", env={"SLUICE_PUBLIC_URL": PUBLIC + "/"}).start()
    yield srv
    srv.stop()


def test_a_hostile_host_header_is_not_reflected(public_server: Server) -> None:
    srv = public_server
    account = srv.account_id
    created = httpx.post(f"{srv.api}/accounts/{account}/ai-gateway/gateways", headers=srv.headers(),
                         json={"id": "public"}, timeout=30)
    assert created.status_code == 200, created.text
    hostile = httpx.get(f"{srv.api}/accounts/{account}/ai-gateway/gateways/public/url/openai", timeout=30,
                        headers={**srv.headers(), "Host": "evil.example:666"})
    assert hostile.status_code == 200, hostile.text
    assert hostile.json()["result"] == f"{PUBLIC}/v1/{account}/public/openai"
    assert "evil" not in hostile.text
    with Cloudflare(api_token=srv.token, base_url=srv.api, max_retries=0) as cf:  # the official SDK
        url = cf.ai_gateway.urls.get("anthropic", account_id=account, gateway_id="public")
    assert url == f"{PUBLIC}/v1/{account}/public/anthropic"


def test_without_the_setting_the_request_is_the_fallback(server: Server, api: httpx.Client,
                                                         gateway: str) -> None:
    reflected = api.get(f"/ai-gateway/gateways/{gateway}/url/openai", headers={"Host": "other.example:8080"})
    assert reflected.json()["result"] == f"http://other.example:8080/v1/{server.account_id}/{gateway}/openai"


def test_public_url_is_documented() -> None:
    settings_doc = (Path(__file__).parents[2] / "docs" / "settings.md").read_text()
    assert "SLUICE_PUBLIC_URL" in settings_doc and "Host" in settings_doc
