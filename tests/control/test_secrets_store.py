"""Secrets Store endpoints (docs/api.md); ``value`` is write-only everywhere."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.control.assertions import assert_ok, assert_v4_error
from tests.support.server import Server
from tests.support.stored import secret_value

SS = "/secrets_store/stores"


@pytest.fixture()
def store(api: httpx.Client) -> dict[str, Any]:
    return assert_ok(api.post(SS, json={"name": "store-" + secrets.token_hex(4)}))


def add(api: httpx.Client, store_id: str, *items: dict[str, Any]) -> list[dict[str, Any]]:
    return assert_ok(api.post(f"{SS}/{store_id}/secrets", json=list(items)))


def test_store_lifecycle(api: httpx.Client, server: Server) -> None:
    name = "life-" + secrets.token_hex(4)
    created = assert_ok(api.post(SS, json={"name": name}))
    assert created["name"] == name and created["account_id"] == server.account_id and len(created["id"]) == 32
    assert created["id"] in [s["id"] for s in assert_ok(api.get(SS, params={"per_page": 100}))]
    assert assert_ok(api.get(f"{SS}/{created['id']}")) == created
    response = api.post(SS, json={"name": name})
    assert_v4_error(response, 409, 7009)
    assert response.headers["x-should-retry"] == "false"
    assert_v4_error(api.post(SS, json={"name": ""}), 400, 7001, path=["body", "name"])
    assert_v4_error(api.post(SS, json={"name": "x", "extra": 1}), 400, 7001, path=["body", "extra"])
    assert assert_ok(api.delete(f"{SS}/{created['id']}"))["id"] == created["id"]
    assert_v4_error(api.get(f"{SS}/{created['id']}"), 404, 7002)


def test_store_with_secrets_needs_force(api: httpx.Client, store: dict[str, Any], server: Server) -> None:
    secret = add(api, store["id"], {"name": "a", "value": "value-a-123", "scopes": ["workers"]})[0]
    assert_v4_error(api.delete(f"{SS}/{store['id']}"), 409, 7009, says="store_not_empty")
    assert_ok(api.get(f"{SS}/{store['id']}"))
    assert_v4_error(api.delete(f"{SS}/{store['id']}", params={"force": "maybe"}), 400, 7001,
                    path=["query", "force"])
    assert_ok(api.delete(f"{SS}/{store['id']}", params={"force": "true"}))
    assert secret_value(server, secret["id"]) is None


def test_bulk_create_get_and_value_is_never_returned(api: httpx.Client, store: dict[str, Any],
                                                     server: Server) -> None:
    values = {f"s{i}": f"write-only-{secrets.token_hex(12)}" for i in range(3)}
    response = api.post(f"{SS}/{store['id']}/secrets", json=[
        {"name": name, "value": value, "scopes": ["ai_gateway"], "comment": f"c-{name}"}
        for name, value in values.items()])
    created = assert_ok(response)
    assert [s["name"] for s in created] == list(values)
    assert set(created[0]) == {"id", "name", "status", "store_id", "created", "modified", "comment", "scopes"}
    texts = [response.text, api.get(f"{SS}/{store['id']}/secrets").text,
             *(api.get(f"{SS}/{store['id']}/secrets/{s['id']}").text for s in created)]
    for text in texts:
        assert not any(value in text for value in values.values())
    for secret in created:
        assert secret_value(server, secret["id"]) == values[secret["name"]]


@pytest.mark.parametrize(("payload", "path"), [
    ({"name": "ok", "value": "v-1234", "scopes": ["nope"]}, ["body", 0, "scopes", 0]),
    ({"name": "ok", "value": "v-1234", "scopes": []}, ["body", 0, "scopes"]),
    ({"name": "bad name", "value": "v-1234", "scopes": ["workers"]}, ["body", 0, "name"]),
    ({"name": "ok", "value": "", "scopes": ["workers"]}, ["body", 0, "value"]),
    ({"name": "ok", "value": "a\rb", "scopes": ["workers"]}, ["body", 0, "value"]),
    ({"name": "ok", "value": "x" * 65537, "scopes": ["workers"]}, ["body", 0, "value"]),
    ({"name": "ok", "scopes": ["workers"]}, ["body", 0, "value"]),
    ({"name": "ok", "value": "v-1234", "scopes": ["workers"], "owner": "me"}, ["body", 0, "owner"]),
], ids=["bad-scope", "no-scopes", "bad-name", "empty-value", "control-char", "too-big", "missing-value",
        "extra"])
def test_bulk_create_validation(api: httpx.Client, store: dict[str, Any], payload: dict[str, Any],
                                path: list[Any]) -> None:
    assert_v4_error(api.post(f"{SS}/{store['id']}/secrets", json=[payload]), 400, 7001, path=path)
    assert assert_ok(api.get(f"{SS}/{store['id']}/secrets")) == []


def test_bulk_create_is_all_or_nothing(api: httpx.Client, store: dict[str, Any]) -> None:
    add(api, store["id"], {"name": "taken", "value": "v-1234", "scopes": ["workers"]})
    good = {"name": "fresh", "value": "v-5678", "scopes": ["workers"]}
    # the second item is invalid: error names index 1, and the first is not created either
    assert_v4_error(api.post(f"{SS}/{store['id']}/secrets",
                             json=[good, {"name": "x", "value": "", "scopes": []}]),
                    400, 7001, path=["body", 1, "value"])
    assert_v4_error(api.post(f"{SS}/{store['id']}/secrets", json=[good, {**good, "name": "taken"}]), 409,
                    7009)
    assert_v4_error(api.post(f"{SS}/{store['id']}/secrets", json=[good, good]), 400, 7001, path=["body"])
    assert_v4_error(api.post(f"{SS}/{store['id']}/secrets", json={"name": "x"}), 400, 7001, path=["body"])
    assert_v4_error(api.post(f"{SS}/{store['id']}/secrets", json=[]), 400, 7001, path=["body"])
    assert [s["name"] for s in assert_ok(api.get(f"{SS}/{store['id']}/secrets"))] == ["taken"]


def test_list_search_scopes_order_paging(api: httpx.Client, store: dict[str, Any]) -> None:
    add(api, store["id"],
        {"name": "alpha_key", "value": "v-1111", "scopes": ["ai_gateway"]},
        {"name": "beta_key", "value": "v-2222", "scopes": ["workers"], "comment": "find-me"},
        {"name": "gamma", "value": "v-3333", "scopes": ["workers", "ai_gateway"]})
    url = f"{SS}/{store['id']}/secrets"
    names = lambda **params: [s["name"] for s in assert_ok(api.get(url, params=params))]  # noqa: E731
    assert names() == ["alpha_key", "beta_key", "gamma"]
    assert names(search="_key") == ["alpha_key", "beta_key"]
    assert names(search="find-me") == ["beta_key"]
    assert names(scopes="ai_gateway") == ["alpha_key", "gamma"]
    assert names(order="name", direction="desc") == ["gamma", "beta_key", "alpha_key"]
    assert names(per_page=2, page=2) == ["gamma"]
    assert names(per_page=2, page=3) == []
    assert_v4_error(api.get(url, params={"order": "value"}), 400, 7001, path=["query", "order"])
    assert_v4_error(api.get(url, params={"direction": "up"}), 400, 7001, path=["query", "direction"])


def test_patch_delete_duplicate(api: httpx.Client, store: dict[str, Any], server: Server) -> None:
    secret = add(api, store["id"], {"name": "orig", "value": "first-value-1", "scopes": ["workers"]})[0]
    url = f"{SS}/{store['id']}/secrets/{secret['id']}"
    patched = assert_ok(api.patch(url,
                                  json={"value": "second-value-2", "scopes": ["ai_gateway"],
                                        "comment": "new"}))
    assert patched["scopes"] == ["ai_gateway"] and patched["comment"] == "new"
    assert "second-value" not in str(patched)
    assert secret_value(server, secret["id"]) == "second-value-2"
    assert_v4_error(api.patch(url, json={}), 400, 7001, path=["body"])
    assert_v4_error(api.patch(url, json={"value": " "}), 400, 7001, path=["body", "value"])
    assert_v4_error(api.patch(url, json={"name": "rename"}), 400, 7001, path=["body", "name"])

    copy = assert_ok(api.post(f"{url}/duplicate", json={"name": "copy", "scopes": ["workers"]}))
    assert copy["name"] == "copy" and copy["id"] != secret["id"]
    assert secret_value(server, copy["id"]) == "second-value-2"
    assert_v4_error(api.post(f"{url}/duplicate", json={"name": "copy", "scopes": ["workers"]}), 409, 7009)

    assert assert_ok(api.delete(url))["id"] == secret["id"]
    assert_v4_error(api.get(url), 404, 7002)
    assert_v4_error(api.delete(url), 404, 7002)
    assert secret_value(server, secret["id"]) is None
    # a secret id under the wrong store is not found
    other = assert_ok(api.post(SS, json={"name": "other-" + secrets.token_hex(4)}))
    assert_v4_error(api.get(f"{SS}/{other['id']}/secrets/{copy['id']}"), 404, 7002)


def test_secret_used_by_a_config_cannot_be_deleted(api: httpx.Client, store: dict[str, Any],
                                                   gateway: str) -> None:
    secret = add(api, store["id"], {"name": "in_use", "value": "sk-in-use-123", "scopes": ["ai_gateway"]})[0]
    assert_ok(api.post(f"/ai-gateway/gateways/{gateway}/provider_configs", json={
        "provider_slug": "openai", "alias": "uses", "default_config": False, "secret_id": secret["id"]}))
    assert_v4_error(api.delete(f"{SS}/{store['id']}/secrets/{secret['id']}"), 409, 7009)


def test_quota_counts_secrets(api: httpx.Client, store: dict[str, Any]) -> None:
    before = assert_ok(api.get("/secrets_store/quota"))["secrets"]
    add(api, store["id"], {"name": "q1", "value": "v-1234", "scopes": ["workers"]},
        {"name": "q2", "value": "v-5678", "scopes": ["workers"]})
    after = assert_ok(api.get("/secrets_store/quota"))["secrets"]
    assert after == {"quota": before["quota"], "usage": before["usage"] + 2}


def test_force_deleting_a_store_removes_configs_that_used_its_secrets(api: httpx.Client,
                                                                      gateway: str) -> None:
    """No provider config is left pointing at a secret that no longer exists."""
    store = assert_ok(api.post(SS, json={"name": "forced-" + secrets.token_hex(4)}))
    forced = {"name": "k", "value": "sk-forced-0123456789", "scopes": ["ai_gateway"]}
    secret = add(api, store["id"], forced)[0]
    configs = f"/ai-gateway/gateways/{gateway}/provider_configs"
    config = assert_ok(api.post(configs,
                                json={"provider_slug": "openai", "alias": "forced", "default_config": False,
                                               "secret_id": secret["id"]}))
    assert_ok(api.delete(f"{SS}/{store['id']}", params={"force": "true"}))
    assert_v4_error(api.get(f"{configs}/{config['id']}"), 404, 7002)
    assert config["id"] not in [c["id"] for c in assert_ok(api.get(configs))]
