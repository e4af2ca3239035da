"""Every failure, whatever the route, is the same v4 envelope with the code docs/api.md#errors lists."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.control.assertions import assert_ok, assert_v4_error
from tests.support.server import Server

NOPE = "0" * 32
# (method, path under /accounts/{id}, JSON body or raw bytes, status, code)
FAILURES: list[tuple[str, str, Any, int, int]] = [
    ("GET", "/ai-gateway/gateways/missing", None, 404, 7002),
    ("PUT", "/ai-gateway/gateways/missing", {"cache_ttl": 1}, 404, 7002),
    ("DELETE", "/ai-gateway/gateways/missing", None, 404, 7002),
    ("POST", "/ai-gateway/gateways", {"id": "BAD"}, 400, 7001),
    ("POST", "/ai-gateway/gateways", b"{nope", 400, 7001),
    ("GET", "/ai-gateway/gateways?per_page=1000", None, 400, 7001),
    ("GET", "/ai-gateway/gateways/missing/provider_configs", None, 404, 7002),
    ("POST", "/ai-gateway/gateways/missing/provider_configs",
     {"provider_slug": "openai", "alias": "a", "default_config": False, "secret": "sk-123456"}, 404, 7002),
    ("GET", f"/ai-gateway/gateways/missing/provider_configs/{NOPE}", None, 404, 7002),
    ("GET", f"/secrets_store/stores/{NOPE}", None, 404, 7002),
    ("DELETE", f"/secrets_store/stores/{NOPE}", None, 404, 7002),
    ("POST", "/secrets_store/stores", b"[]", 400, 7001),
    ("GET", f"/secrets_store/stores/{NOPE}/secrets", None, 404, 7002),
    ("POST", f"/secrets_store/stores/{NOPE}/secrets", [{"name": "a", "value": "b", "scopes": ["workers"]}],
     404, 7002),
    ("PATCH", f"/secrets_store/stores/{NOPE}/secrets/{NOPE}", {"comment": "x"}, 404, 7002),
    ("POST", f"/secrets_store/stores/{NOPE}/secrets/{NOPE}/duplicate", {"name": "a", "scopes": ["workers"]},
     404, 7002),
    ("GET", f"/tokens/{NOPE}", None, 404, 7002),
    ("POST", "/tokens", {"name": "x", "permissions": []}, 400, 7001),
    ("GET", "/no-such-thing", None, 404, 7003),
    ("GET", "/ai-gateway/gateways/x/y/z", None, 404, 7003),
    ("PATCH", "/ai-gateway/gateways", {}, 405, 7005),
    ("POST", "/ai-gateway/gateways/some-id", {}, 405, 7005),
    ("PATCH", f"/ai-gateway/gateways/some-id/provider_configs/{NOPE}", {}, 405, 7005),
    ("PUT", "/secrets_store/stores", {}, 405, 7005),
    ("DELETE", "/secrets_store/quota", None, 405, 7005),
    ("POST", "/ai-gateway/gateways", b'{"id": "' + b"a" * (1024 * 1024 + 10) + b'"}', 413, 7010),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), FAILURES,
                         ids=[f"{m} {p[:60]} -> {s}" for m, p, _, s, _ in FAILURES])
def test_failure_envelope(api: httpx.Client, method: str, path: str, body: Any, status: int,
                          code: int) -> None:
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    assert_v4_error(api.request(method, path, **kwargs), status, code)


@pytest.mark.parametrize("path", ["/client/v4/nope", "/client/v4/", "/client/v4/accounts", "/nothing-here",
                                  "/client/v4/user/tokens"])
def test_unknown_routes_outside_accounts(server: Server, path: str) -> None:
    assert_v4_error(httpx.get(f"{server.url}{path}", headers=server.headers()), 404, 7003)


def test_wrong_method_on_verify(server: Server) -> None:
    assert_v4_error(httpx.post(f"{server.api}/user/tokens/verify", headers=server.headers()), 405, 7005)


def test_list_success_carries_result_info(api: httpx.Client, gateway: str) -> None:
    for path in ("/ai-gateway/gateways", f"/ai-gateway/gateways/{gateway}/provider_configs",
                 "/secrets_store/stores", "/tokens"):
        body = api.get(path, params={"per_page": 3}).json()
        assert set(body) == {"result", "success", "errors", "messages", "result_info"}, body
        assert set(body["result_info"]) == {"page", "per_page", "count", "total_count", "total_pages"}
        assert body["result_info"]["per_page"] == 3 and body["result_info"]["count"] == len(body["result"])


def test_single_success_has_no_result_info(api: httpx.Client, gateway: str) -> None:
    body = api.get(f"/ai-gateway/gateways/{gateway}").json()
    assert set(body) == {"result", "success", "errors", "messages"}
    assert assert_ok(api.get(f"/ai-gateway/gateways/{gateway}"))["id"] == gateway


@pytest.mark.parametrize("path", ["/ai-gateway/gateways", "/secrets_store/stores", "/tokens"])
def test_credentials_are_checked_before_the_query(server: Server, path: str) -> None:
    """An anonymous caller with a bad query learns only that it must authenticate."""
    response = httpx.get(f"{server.api}/accounts/{server.account_id}{path}",
                         params={"page": "x", "per_page": "0"})
    assert response.status_code == 401 and response.json()["errors"][0]["code"] == 10000


def test_delete_on_token_verify_is_method_not_allowed(api: httpx.Client) -> None:
    response = api.delete("/tokens/verify")
    assert response.status_code == 405 and response.json()["errors"][0]["code"] == 7005
    assert "GET" in response.headers["allow"] and "DELETE" not in response.headers["allow"]
