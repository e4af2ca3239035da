"""Provider configs (docs/api.md): the four secret sources, uniqueness, defaults, preview, update, get,
delete."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.control.assertions import assert_ok, assert_v4_error
from tests.support.server import Server
from tests.support.stored import secret_value


def configs_url(gateway: str) -> str:
    return f"/ai-gateway/gateways/{gateway}/provider_configs"


def create(api: httpx.Client, gateway: str, **fields: Any) -> dict[str, Any]:
    payload = {"provider_slug": "openai", "default_config": False, **fields}
    return assert_ok(api.post(configs_url(gateway), json=payload))


def new_key() -> str:
    return "sk-proj-" + secrets.token_urlsafe(24)


def store_secrets(api: httpx.Client, store_id: str) -> dict[str, dict[str, Any]]:
    rows = assert_ok(api.get(f"/secrets_store/stores/{store_id}/secrets", params={"per_page": 100}))
    return {r["name"]: r for r in rows}


def test_secret_only_creates_the_conventional_secret_in_the_gateways_store(api: httpx.Client, gateway: str,
                                                                         server: Server) -> None:
    assert assert_ok(api.get(f"/ai-gateway/gateways/{gateway}"))["store_id"] is None
    key = new_key()
    config = create(api, gateway, alias="prod", secret=key)
    store_id = assert_ok(api.get(f"/ai-gateway/gateways/{gateway}"))["store_id"]
    assert store_id, "the gateway's store_id is recorded"
    secret = store_secrets(api, store_id)[f"{gateway}_openai_prod"]
    assert secret["id"] == config["secret_id"] and secret["scopes"] == ["ai_gateway"]
    assert secret_value(server, config["secret_id"]) == key


def test_secret_id_only_uses_that_secret(api: httpx.Client, gateway: str, server: Server) -> None:
    store = assert_ok(api.post("/secrets_store/stores", json={"name": f"own-{gateway}"}))
    key = new_key()
    secret = assert_ok(api.post(f"/secrets_store/stores/{store['id']}/secrets",
                                json=[{"name": "openai_key", "value": key, "scopes": ["ai_gateway"]}]))[0]
    config = create(api, gateway, alias="byid", secret_id=secret["id"])
    assert config["secret_id"] == secret["id"]
    assert config["secret_preview"] == create_preview(key)
    assert secret_value(server, secret["id"]) == key


def test_secret_and_secret_id_rotate_that_secret(api: httpx.Client, gateway: str, server: Server) -> None:
    store = assert_ok(api.post("/secrets_store/stores", json={"name": f"rot-{gateway}"}))
    old, new = new_key(), new_key()
    secret = assert_ok(api.post(f"/secrets_store/stores/{store['id']}/secrets",
                                json=[{"name": "rotate_me", "value": old, "scopes": ["ai_gateway"]}]))[0]
    config = create(api, gateway, alias="rot", secret_id=secret["id"], secret=new)
    assert config["secret_id"] == secret["id"]
    assert secret_value(server, secret["id"]) == new
    assert len(store_secrets(api, store["id"])) == 1, "rotated in place, no new secret"


def test_neither_uses_the_conventionally_named_secret(api: httpx.Client, gateway: str) -> None:
    store = assert_ok(api.post("/secrets_store/stores", json={"name": f"conv-{gateway}"}))
    assert_ok(api.put(f"/ai-gateway/gateways/{gateway}", json={"store_id": store["id"]}))
    secret = assert_ok(api.post(f"/secrets_store/stores/{store['id']}/secrets",
                                json=[{"name": f"{gateway}_anthropic_team", "value": new_key(),
                                       "scopes": ["ai_gateway"]}]))[0]
    config = create(api, gateway, alias="team", provider_slug="anthropic")
    assert config["secret_id"] == secret["id"]


def test_duplicate_alias_is_a_conflict_and_leaves_one_row(api: httpx.Client, gateway: str) -> None:
    create(api, gateway, alias="dup", secret=new_key())
    response = api.post(configs_url(gateway), json={"provider_slug": "openai", "alias": "dup",
                                                    "default_config": False, "secret": new_key()})
    assert_v4_error(response, 409, 7009, says="dup")
    assert response.headers["x-should-retry"] == "false"
    assert [c["alias"] for c in assert_ok(api.get(configs_url(gateway)))] == ["dup"]
    # the same alias for another provider is a different key
    other_provider = create(api, gateway, alias="dup", provider_slug="groq", secret=new_key())
    assert other_provider["provider_slug"] == "groq"


def defaults(api: httpx.Client, gateway: str) -> dict[str, bool]:
    configs = assert_ok(api.get(configs_url(gateway)))
    return {f"{c['provider_slug']}/{c['alias']}": c["default_config"] for c in configs}


def test_new_default_demotes_the_previous_one(api: httpx.Client, gateway: str) -> None:
    create(api, gateway, alias="a", default_config=True, secret=new_key())
    create(api, gateway, alias="x", provider_slug="anthropic", default_config=True, secret=new_key())
    create(api, gateway, alias="b", default_config=True, secret=new_key())
    assert defaults(api, gateway) == {"openai/a": False, "anthropic/x": True, "openai/b": True}
    first = assert_ok(api.get(configs_url(gateway)))[0]
    assert_ok(api.put(f"{configs_url(gateway)}/{first['id']}", json={"default_config": True}))
    assert defaults(api, gateway) == {"openai/a": True, "anthropic/x": True, "openai/b": False}


def create_preview(secret: str) -> str:
    from sluice.secrets.crypto import preview

    return preview(secret)


@pytest.mark.parametrize("length", [1, 4, 15, 16, 20, 31, 32, 51, 200])
def test_secret_preview_shows_little(api: httpx.Client, gateway: str, length: int) -> None:
    key = (secrets.token_hex(length) * 2)[:length]
    preview = create(api, gateway, alias=f"len{length}", secret=key)["secret_preview"]
    shown = preview.replace("…", "").replace("*", "")
    assert len(shown) <= 8 and len(shown) <= length // 4, preview
    if shown:
        head, _, tail = preview.partition("…")
        assert key.startswith(head) and key.endswith(tail)


def test_update_rotates_secret_and_limits(api: httpx.Client, gateway: str, server: Server) -> None:
    first = new_key()
    config = create(api, gateway, alias="upd", secret=first, rate_limit=5)
    url = f"{configs_url(gateway)}/{config['id']}"
    second = new_key()
    updated = assert_ok(api.put(url, json={"secret": second}))
    assert updated["secret_id"] == config["secret_id"] and updated["secret_preview"] == create_preview(second)
    assert secret_value(server, config["secret_id"]) == second
    updated = assert_ok(api.put(url, json={"rate_limit": 100, "rate_limit_period": 3600}))
    assert (updated["rate_limit"], updated["rate_limit_period"]) == (100, 3600)
    assert updated["modified_at"] >= config["modified_at"]
    got = assert_ok(api.get(url))
    assert {k: got[k] for k in ("rate_limit", "rate_limit_period", "alias")} == \
        {"rate_limit": 100, "rate_limit_period": 3600, "alias": "upd"}


@pytest.mark.parametrize(("payload", "path"), [
    ({}, ["body"]),
    ({"secret": ""}, ["body", "secret"]),
    ({"rate_limit": -1}, ["body", "rate_limit"]),
    ({"rate_limit_period": 0}, ["body", "rate_limit_period"]),
    ({"default_config": "yes"}, ["body", "default_config"]),
    ({"alias": "renamed"}, ["body", "alias"]),
], ids=["empty", "secret-empty", "rate-negative", "period-zero", "default-string", "alias-not-updatable"])
def test_update_validation(api: httpx.Client, gateway: str, payload: dict[str, Any], path: list[str]) -> None:
    config = create(api, gateway, alias="val", secret=new_key(), rate_limit=3)
    response = api.put(f"{configs_url(gateway)}/{config['id']}", json=payload)
    assert_v4_error(response, 400, 7001, path=path)
    got = assert_ok(api.get(f"{configs_url(gateway)}/{config['id']}"))
    assert {k: got[k] for k in config} == config, "a refused update changes nothing"


def test_get_update_delete_unknown_config_is_404(api: httpx.Client, gateway: str) -> None:
    url = f"{configs_url(gateway)}/{'f' * 32}"
    assert_v4_error(api.get(url), 404, 7002)
    assert_v4_error(api.put(url, json={"rate_limit": 1}), 404, 7002)
    assert_v4_error(api.delete(url), 404, 7002)
    assert_v4_error(api.get("/ai-gateway/gateways/no-such-gateway/provider_configs"), 404, 7002)


def test_delete_removes_config_and_its_secret(api: httpx.Client, gateway: str, server: Server) -> None:
    config = create(api, gateway, alias="gone", secret=new_key())
    deleted = assert_ok(api.delete(f"{configs_url(gateway)}/{config['id']}"))
    assert deleted["id"] == config["id"]
    assert_v4_error(api.get(f"{configs_url(gateway)}/{config['id']}"), 404, 7002)
    assert assert_ok(api.get(configs_url(gateway))) == []
    assert secret_value(server, config["secret_id"]) is None


def test_delete_keeps_a_secret_still_referenced(api: httpx.Client, gateway: str, server: Server) -> None:
    first = create(api, gateway, alias="one", secret=new_key())
    second = create(api, gateway, alias="two", provider_slug="openai", secret_id=first["secret_id"])
    assert_ok(api.delete(f"{configs_url(gateway)}/{first['id']}"))
    assert secret_value(server, first["secret_id"]) is not None
    assert_ok(api.delete(f"{configs_url(gateway)}/{second['id']}"))
    assert secret_value(server, first["secret_id"]) is None


def test_list_paging(api: httpx.Client, gateway: str) -> None:
    made = [create(api, gateway, alias=f"p{i}", secret=new_key())["id"] for i in range(5)]
    page2 = api.get(configs_url(gateway), params={"page": 2, "per_page": 2}).json()
    assert [c["id"] for c in page2["result"]] == made[2:4]
    assert page2["result_info"] == {"page": 2, "per_page": 2, "count": 2, "total_count": 5, "total_pages": 3}
    assert assert_ok(api.get(configs_url(gateway), params={"page": 9, "per_page": 2})) == []
    assert_v4_error(api.get(configs_url(gateway), params={"per_page": 101}), 400, 7001,
                    path=["query", "per_page"])
    assert_v4_error(api.get(configs_url(gateway), params={"page": 0}), 400, 7001, path=["query", "page"])
