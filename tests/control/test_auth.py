"""Who may call what (docs/api.md#authentication). 401 without valid credentials, 403/10000 naming the missing
permission, 403/9109 on another account's path (never revealing whether it exists)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest

from sluice.identity.permissions import (
    ALL_GROUPS,
    CONFIG_READ,
    CONFIG_WRITE,
    GATEWAY_READ,
    GATEWAY_WRITE,
    STORE_READ,
    STORE_WRITE,
    TOKEN_READ,
    TOKEN_WRITE,
)
from tests.control.assertions import assert_ok, assert_v4_error
from tests.support.server import Server, sluice_cli

NOPE = "0" * 32
# (method, path under /accounts/{id}, JSON body, accepted permission groups) — every management route.
ROUTES: list[tuple[str, str, Any, tuple[str, ...]]] = [
    ("GET", "/ai-gateway/gateways", None, GATEWAY_READ),
    ("POST", "/ai-gateway/gateways", {}, GATEWAY_WRITE),
    ("GET", "/ai-gateway/gateways/nope", None, GATEWAY_READ),
    ("PUT", "/ai-gateway/gateways/nope", {}, GATEWAY_WRITE),
    ("DELETE", "/ai-gateway/gateways/nope", None, GATEWAY_WRITE),
    ("GET", "/ai-gateway/gateways/nope/url/openai", None, GATEWAY_READ),
    ("GET", "/ai-gateway/gateways/nope/provider_configs", None, CONFIG_READ),
    ("POST", "/ai-gateway/gateways/nope/provider_configs", {}, CONFIG_WRITE),
    ("GET", f"/ai-gateway/gateways/nope/provider_configs/{NOPE}", None, CONFIG_READ),
    ("PUT", f"/ai-gateway/gateways/nope/provider_configs/{NOPE}", {}, CONFIG_WRITE),
    ("DELETE", f"/ai-gateway/gateways/nope/provider_configs/{NOPE}", None, CONFIG_WRITE),
    ("GET", "/ai-gateway/gateways/nope/routes", None, GATEWAY_READ),
    ("POST", "/ai-gateway/gateways/nope/routes", {}, GATEWAY_WRITE),
    ("GET", f"/ai-gateway/gateways/nope/routes/{NOPE}", None, GATEWAY_READ),
    ("PATCH", f"/ai-gateway/gateways/nope/routes/{NOPE}", {}, GATEWAY_WRITE),
    ("DELETE", f"/ai-gateway/gateways/nope/routes/{NOPE}", None, GATEWAY_WRITE),
    ("GET", f"/ai-gateway/gateways/nope/routes/{NOPE}/versions", None, GATEWAY_READ),
    ("POST", f"/ai-gateway/gateways/nope/routes/{NOPE}/versions", {}, GATEWAY_WRITE),
    ("GET", f"/ai-gateway/gateways/nope/routes/{NOPE}/versions/{NOPE}", None, GATEWAY_READ),
    ("GET", f"/ai-gateway/gateways/nope/routes/{NOPE}/deployments", None, GATEWAY_READ),
    ("POST", f"/ai-gateway/gateways/nope/routes/{NOPE}/deployments", {}, GATEWAY_WRITE),
    ("GET", "/ai-gateway/gateways/nope/logs", None, GATEWAY_READ),
    ("DELETE", "/ai-gateway/gateways/nope/logs", None, GATEWAY_WRITE),
    ("GET", f"/ai-gateway/gateways/nope/logs/{NOPE}", None, GATEWAY_READ),
    ("PATCH", f"/ai-gateway/gateways/nope/logs/{NOPE}", {}, GATEWAY_WRITE),
    ("GET", f"/ai-gateway/gateways/nope/logs/{NOPE}/request", None, GATEWAY_READ),
    ("GET", f"/ai-gateway/gateways/nope/logs/{NOPE}/response", None, GATEWAY_READ),
    ("GET", "/ai-gateway/gateways/nope/timeseries", None, GATEWAY_READ),
    ("GET", "/secrets_store/stores", None, STORE_READ),
    ("POST", "/secrets_store/stores", {}, STORE_WRITE),
    ("GET", f"/secrets_store/stores/{NOPE}", None, STORE_READ),
    ("DELETE", f"/secrets_store/stores/{NOPE}", None, STORE_WRITE),
    ("GET", f"/secrets_store/stores/{NOPE}/secrets", None, STORE_READ),
    ("POST", f"/secrets_store/stores/{NOPE}/secrets", [], STORE_WRITE),
    ("GET", f"/secrets_store/stores/{NOPE}/secrets/{NOPE}", None, STORE_READ),
    ("PATCH", f"/secrets_store/stores/{NOPE}/secrets/{NOPE}", {}, STORE_WRITE),
    ("DELETE", f"/secrets_store/stores/{NOPE}/secrets/{NOPE}", None, STORE_WRITE),
    ("POST", f"/secrets_store/stores/{NOPE}/secrets/{NOPE}/duplicate", {}, STORE_WRITE),
    ("GET", "/secrets_store/quota", None, STORE_READ),
    ("GET", "/tokens", None, TOKEN_READ),
    ("POST", "/tokens", {}, TOKEN_WRITE),
    ("GET", f"/tokens/{NOPE}", None, TOKEN_READ),
    ("DELETE", f"/tokens/{NOPE}", None, TOKEN_WRITE),
    ("DELETE", f"/secrets_store/stores/{NOPE}/secrets", [{"id": NOPE}], STORE_WRITE),
    ("GET", "/tokens/permission_groups", None, TOKEN_READ),
    ("PUT", f"/tokens/{NOPE}", {}, TOKEN_WRITE),
    ("PUT", f"/tokens/{NOPE}/value", None, TOKEN_WRITE),
    ("GET", "/ai-gateway/custom-providers", None, GATEWAY_READ),
    ("POST", "/ai-gateway/custom-providers", {}, GATEWAY_WRITE),
    ("GET", f"/ai-gateway/custom-providers/{NOPE}", None, GATEWAY_READ),
    ("PATCH", f"/ai-gateway/custom-providers/{NOPE}", {}, GATEWAY_WRITE),
    ("PUT", f"/ai-gateway/custom-providers/{NOPE}", {}, GATEWAY_WRITE),
    ("DELETE", f"/ai-gateway/custom-providers/{NOPE}", None, GATEWAY_WRITE),
]
ROUTE_IDS = [f"{m} {p}" for m, p, _, _ in ROUTES]


@pytest.fixture(scope="module")
def group_tokens(server: Server) -> dict[str, str]:
    """One token per permission group, each holding only that group."""
    out = {}
    base_url = f"{server.api}/accounts/{server.account_id}"
    with httpx.Client(base_url=base_url, headers=server.headers()) as client:
        for group in ALL_GROUPS:
            body = {"name": f"only {group}", "permissions": [group]}
            out[group] = assert_ok(client.post("/tokens", json=body))["value"]
    return out


@pytest.fixture(scope="module")
def other_account(server: Server) -> dict[str, str]:
    """A second account with an all-permissions token, made with the CLI while the server runs."""
    data_dir = ["--data-dir", str(server.data_dir), "--json"]
    account = json.loads(sluice_cli("accounts", "create", "tenant-b", *data_dir, env=server.env).stdout)
    perms = [arg for group in ALL_GROUPS for arg in ("--permission", group)]
    token = json.loads(sluice_cli("tokens", "create", "--account", account["id"], "--name", "b-admin", *perms,
                                  *data_dir, env=server.env).stdout)
    assert token["value"].startswith("sluice_") and token["permissions"] == sorted(ALL_GROUPS)
    return {"id": account["id"], "token": token["value"]}


def call(server: Server, method: str, path: str, body: Any, headers: dict[str, str],
         account: str | None = None) -> httpx.Response:
    url = f"{server.api}/accounts/{account or server.account_id}{path}"
    return httpx.request(method, url, headers=headers, json=body, timeout=30)


@pytest.mark.parametrize(("method", "path", "body", "accepted"), ROUTES, ids=ROUTE_IDS)
def test_every_route_needs_credentials(server: Server, method: str, path: str, body: Any,
                                       accepted: tuple[str, ...]) -> None:
    assert_v4_error(call(server, method, path, body, {}), 401, 10000)
    bad = "sluice_" + secrets.token_urlsafe(32)
    for headers in ({"Authorization": f"Bearer {bad}"}, {"Authorization": "Bearer"},
                    {"Authorization": f"Basic {bad}"}, {"Authorization": server.token}):
        assert_v4_error(call(server, method, path, body, headers), 401, 10000)


@pytest.mark.parametrize(("method", "path", "body", "accepted"), ROUTES, ids=ROUTE_IDS)
def test_every_route_checks_the_permission(server: Server, group_tokens: dict[str, str], method: str,
                                           path: str,
                                           body: Any, accepted: tuple[str, ...]) -> None:
    for group, token in group_tokens.items():
        response = call(server, method, path, body, server.headers(token))
        if group in accepted:
            assert response.status_code not in (401, 403), f"{group}: {response.text}"
        else:
            error = assert_v4_error(response, 403, 10000)
            assert any(name in error["message"] for name in accepted), error["message"]


@pytest.mark.parametrize(("method", "path", "body", "accepted"), ROUTES, ids=ROUTE_IDS)
def test_another_accounts_path_is_9109(server: Server, other_account: dict[str, str], method: str, path: str,
                                       body: Any, accepted: tuple[str, ...]) -> None:
    mine = server.headers(other_account["token"])
    answers = []
    for account in (server.account_id, NOPE, "not-an-account-id", "F" * 32):
        response = call(server, method, path, body, mine, account=account)
        assert_v4_error(response, 403, 9109)
        answers.append(response.content)
    assert len(set(answers)) == 1, "the answer does not reveal whether the account exists"


def test_token_without_secrets_store_write_cannot_create_a_config(server: Server, gateway: str,
                                                                  group_tokens: dict[str, str]) -> None:
    response = call(server, "POST", f"/ai-gateway/gateways/{gateway}/provider_configs",
                    {"provider_slug": "openai", "alias": "a", "default_config": False,
                     "secret": "sk-123456789"},
                    server.headers(group_tokens["AI Gateway Read"]))
    assert_v4_error(response, 403, 10000, says="Secrets Store Write")
    configs_url = f"{server.api}/accounts/{server.account_id}/ai-gateway/gateways/{gateway}/provider_configs"
    reader = server.headers(group_tokens["AI Gateway Read"])
    assert assert_ok(httpx.get(configs_url, headers=reader)) == []


def test_other_account_is_isolated(server: Server, other_account: dict[str, str]) -> None:
    headers = server.headers(other_account["token"])
    gateway_id = "b-" + secrets.token_hex(4)
    created = call(server, "POST", "/ai-gateway/gateways", {"id": gateway_id}, headers,
                   account=other_account["id"])
    assert_ok(created)
    # the same gateway id is free in the first account, and B's gateway is not visible there
    admin_list = call(server, "GET", "/ai-gateway/gateways", None, server.headers())
    assert gateway_id not in [g["id"] for g in assert_ok(admin_list)]
    assert_v4_error(call(server, "GET", f"/ai-gateway/gateways/{gateway_id}", None, server.headers()), 404,
                    7002)
    # the bootstrap token is not valid on B's path
    assert_v4_error(call(server, "GET", "/ai-gateway/gateways", None, server.headers(),
                         account=other_account["id"]),
                    403, 9109)


def legacy(server: Server, key: str | None = None, email: str | None = None) -> dict[str, str]:
    return {"X-Auth-Email": email or server.creds["email"], "X-Auth-Key": key or server.creds["api_key"]}


def test_legacy_global_api_key(server: Server, other_account: dict[str, str]) -> None:
    assert_ok(call(server, "GET", "/ai-gateway/gateways", None, legacy(server)))
    assert_ok(call(server, "GET", "/secrets_store/quota", None, legacy(server)))
    assert_v4_error(call(server, "GET", "/ai-gateway/gateways", None, legacy(server, key="0" * 40)), 401,
                    10000)
    assert_v4_error(call(server, "GET", "/ai-gateway/gateways", None,
                         legacy(server, email="nobody@example.com")), 401, 10000)
    assert_v4_error(call(server, "GET", "/ai-gateway/gateways", None,
                         {"X-Auth-Email": server.creds["email"]}),
                    401, 10000)
    # the user is not a member of account B
    assert_v4_error(call(server, "GET", "/ai-gateway/gateways", None, legacy(server),
                         account=other_account["id"]),
                    403, 9109)


def test_token_verify(server: Server, other_account: dict[str, str]) -> None:
    for url in (f"{server.api}/user/tokens/verify",
                f"{server.api}/accounts/{server.account_id}/tokens/verify"):
        result = assert_ok(httpx.get(url, headers=server.headers()))
        assert set(result) == {"id", "status", "expires_on", "not_before"} and result["status"] == "active"
        assert_v4_error(httpx.get(url), 401, 10000)
        assert_v4_error(httpx.get(url, headers=server.headers("sluice_" + "x" * 43)), 401, 10000)
    assert_ok(httpx.get(f"{server.api}/user/tokens/verify", headers=server.headers(other_account["token"])))
    assert_v4_error(httpx.get(f"{server.api}/accounts/{server.account_id}/tokens/verify",
                              headers=server.headers(other_account["token"])), 403, 9109)


def test_verify_via_sdk(cf) -> None:  # type: ignore[no-untyped-def]
    assert cf.user.tokens.verify().status == "active"


def test_matrix_covers_every_account_route() -> None:
    """A new management route must join the matrix above (and so get its permission checked)."""
    from sluice.control.routes import ENDPOINTS, starlette_routes

    account_path = f"/accounts/{NOPE}"
    for route in starlette_routes(ENDPOINTS):
        if not route.path.startswith("/accounts/{account_id}") or route.path.endswith("/tokens/verify"):
            continue
        for method in (route.methods or set()) - {"HEAD"}:
            assert any(m == method and route.path_regex.match(account_path + p) for m, p, _, _ in ROUTES), \
                f"{method} {route.path} is not in the auth matrix"
