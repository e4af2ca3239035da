"""Tokens API (docs/api.md): create (value once), list, get, delete; deleted and expired tokens stop
working."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.control.assertions import assert_ok, assert_v4_error
from tests.support.server import Server
from tests.support.stored import age_token


def make(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    return assert_ok(api.post("/tokens", json={"name": "t", "permissions": ["AI Gateway Read"], **fields}))


def test_token_lifecycle(api: httpx.Client, server: Server) -> None:
    created = make(api, name="ci reader")
    value = created["value"]
    assert value.startswith("sluice_") and len(value) >= len("sluice_") + 43
    assert created["status"] == "active" and created["permissions"] == ["AI Gateway Read"]
    assert created["policies"][0]["permission_groups"][0]["name"] == "AI Gateway Read"

    listing = api.get("/tokens", params={"per_page": 50})
    assert created["id"] in [t["id"] for t in assert_ok(listing)]
    got = api.get(f"/tokens/{created['id']}")
    for response in (listing, got):
        assert value not in response.text and '"value"' not in response.text
    assert assert_ok(got)["name"] == "ci reader"

    reader = server.headers(value)
    gateways = f"{server.api}/accounts/{server.account_id}/ai-gateway/gateways"
    assert_ok(httpx.get(gateways, headers=reader))
    assert assert_ok(api.delete(f"/tokens/{created['id']}")) == {"id": created["id"]}
    assert_v4_error(httpx.get(gateways, headers=reader), 401, 10000)
    assert_v4_error(api.get(f"/tokens/{created['id']}"), 404, 7002)
    assert_v4_error(api.delete(f"/tokens/{created['id']}"), 404, 7002)


def test_two_tokens_never_share_a_value(api: httpx.Client) -> None:
    assert make(api)["value"] != make(api)["value"]


def test_cloudflare_policy_form(api: httpx.Client) -> None:
    created = assert_ok(api.post("/tokens", json={"name": "cf-form", "policies": [
        {"effect": "allow", "resources": {}, "permission_groups": [{"name": "Secrets Store Read"},
                                                                   {"id": "AI Gateway Run"}]}]}))
    assert created["permissions"] == ["AI Gateway Run", "Secrets Store Read"]


def test_expired_token_is_refused(api: httpx.Client, server: Server) -> None:
    expired = make(api, expires_on="2999-01-01T00:00:00Z")
    age_token(server, expired["id"], "2020-01-01T00:00:00.000Z")
    assert assert_ok(api.get(f"/tokens/{expired['id']}"))["status"] == "expired"
    assert_v4_error(httpx.get(f"{server.api}/accounts/{server.account_id}/ai-gateway/gateways",
                              headers=server.headers(expired["value"])), 401, 10000)
    assert_v4_error(httpx.get(f"{server.api}/user/tokens/verify", headers=server.headers(expired["value"])),
                    401, 10000)
    future = make(api, expires_on="2999-01-01T00:00:00Z")
    assert assert_ok(httpx.get(f"{server.api}/user/tokens/verify",
                               headers=server.headers(future["value"])))["expires_on"].startswith("2999-01-01T00:00:00")


@pytest.mark.parametrize(("payload", "path"), [
    ({"permissions": ["AI Gateway Read"]}, ["body", "name"]),
    ({"name": "", "permissions": ["AI Gateway Read"]}, ["body", "name"]),
    ({"name": "x", "permissions": ["Root"]}, ["body", "permissions", 0]),
    ({"name": "x"}, ["body", "permissions"]),
    ({"name": "x", "policies": [{"permission_groups": [{"name": "Root"}]}]},
     ["body", "policies", 0, "permission_groups", 0]),
    ({"name": "x", "permissions": ["AI Gateway Read"], "expires_on": "tomorrow"}, ["body", "expires_on"]),
    ({"name": "x", "permissions": ["AI Gateway Read"], "expires_on": "2030-01-01T00:00:00"},
     ["body", "expires_on"]),
    ({"name": "x", "permissions": ["AI Gateway Read"], "value": "sluice_mine"}, ["body", "value"]),
], ids=["no-name", "empty-name", "unknown-group", "no-permissions", "unknown-policy-group", "bad-expiry",
        "naive-expiry", "chosen-value"])
def test_create_validation(api: httpx.Client, payload: dict[str, Any], path: list[Any]) -> None:
    before = api.get("/tokens", params={"per_page": 50}).json()["result_info"]["total_count"]
    assert_v4_error(api.post("/tokens", json=payload), 400, 7001, path=path)
    assert api.get("/tokens", params={"per_page": 50}).json()["result_info"]["total_count"] == before
