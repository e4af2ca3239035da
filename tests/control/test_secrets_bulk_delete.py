"""Bulk secret delete, ``DELETE …/stores/{s}/secrets`` (issue 15, item 16): Cloudflare's body, a JSON array of
``{"id"}``, as the official SDK's ``secrets.bulk_delete`` sends it (through ``extra_body``); all or nothing,
under the same key-write lock and rules as deleting one secret (one still used by a provider config: 409)."""

from __future__ import annotations

import secrets
from typing import Any

import cloudflare
import httpx
import pytest

from tests.control.assertions import assert_ok, assert_v4_error
from tests.support.server import Server
from tests.support.stored import secret_value

SS = "/secrets_store/stores"


@pytest.fixture()
def store(api: httpx.Client) -> dict[str, Any]:
    return assert_ok(api.post(SS, json={"name": "bulk-" + secrets.token_hex(4)}))


def add(api: httpx.Client, store_id: str, *names: str) -> list[dict[str, Any]]:
    return assert_ok(api.post(f"{SS}/{store_id}/secrets", json=[
        {"name": name, "value": f"sk-{name}-{secrets.token_hex(8)}", "scopes": ["ai_gateway"]}
        for name in names]))


def names(api: httpx.Client, store_id: str) -> list[str]:
    return [s["name"] for s in assert_ok(api.get(f"{SS}/{store_id}/secrets"))]


def delete(api: httpx.Client, store_id: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    return api.request("DELETE", f"{SS}/{store_id}/secrets", json=body, **kwargs)


def test_bulk_delete_through_the_sdk(cf: Any, api: httpx.Client, server: Server,
                                     store: dict[str, Any]) -> None:
    made = add(api, store["id"], "one", "two", "three")
    result = cf.secrets_store.stores.secrets.bulk_delete(
        store["id"], account_id=server.account_id, extra_body=[{"id": made[0]["id"]}, {"id": made[2]["id"]}])
    assert [s["id"] for s in result] == [made[0]["id"], made[2]["id"]]
    assert all("value" not in s for s in result)
    assert names(api, store["id"]) == ["two"]
    assert secret_value(server, made[0]["id"]) is None
    assert secret_value(server, made[1]["id"]) is not None
    # the SDK's call as generated sends no body: refused, naming what is needed
    with pytest.raises(cloudflare.BadRequestError) as info:
        cf.secrets_store.stores.secrets.bulk_delete(store["id"], account_id=server.account_id)
    assert info.value.body["errors"][0]["path"] == ["body"]
    assert names(api, store["id"]) == ["two"]


def test_a_secret_in_use_refuses_the_whole_request(api: httpx.Client, store: dict[str, Any], gateway: str,
                                                   server: Server) -> None:
    free, used = add(api, store["id"], "free", "used")
    assert_ok(api.post(f"/ai-gateway/gateways/{gateway}/provider_configs", json={
        "provider_slug": "openai", "alias": "bulk", "default_config": False, "secret_id": used["id"]}))
    response = delete(api, store["id"], [{"id": free["id"]}, {"id": used["id"]}])
    assert_v4_error(response, 409, 7009, says=used["id"])
    assert response.headers["x-should-retry"] == "false"
    assert names(api, store["id"]) == ["free", "used"]  # nothing was deleted
    assert secret_value(server, free["id"]) is not None


def test_an_unknown_or_foreign_secret_refuses_the_whole_request(api: httpx.Client,
                                                                store: dict[str, Any]) -> None:
    [mine] = add(api, store["id"], "mine")
    other = assert_ok(api.post(SS, json={"name": "other-" + secrets.token_hex(4)}))
    [theirs] = add(api, other["id"], "theirs")
    for missing in ("0" * 32, theirs["id"]):  # no such secret; a secret of another store
        response = delete(api, store["id"], [{"id": mine["id"]}, {"id": missing}])
        assert_v4_error(response, 404, 7002, says=missing)
    assert names(api, store["id"]) == ["mine"] and names(api, other["id"]) == ["theirs"]
    assert_v4_error(delete(api, "0" * 32, [{"id": mine["id"]}]), 404, 7002)


@pytest.mark.parametrize(("body", "path"), [
    (None, ["body"]),
    ([], ["body"]),
    ({"id": "x"}, ["body"]),
    (["abc"], ["body", 0]),
    ([{}], ["body", 0, "id"]),
    ([{"id": 7}], ["body", 0, "id"]),
    ([{"id": ""}], ["body", 0, "id"]),
    ([{"id": "a" * 33}], ["body", 0, "id"]),
    ([{"id": "a" * 32, "name": "x"}], ["body", 0, "name"]),
    ([{"id": "a" * 32}, {"id": "a" * 32}], ["body"]),
    ([{"id": f"{i:032x}"} for i in range(1001)], ["body"]),
], ids=["no-body", "empty", "object", "not-object", "no-id", "id-number", "id-empty", "id-long",
        "unknown-field", "duplicate", "too-many"])
def test_malformed_bodies_are_refused_naming_the_field(api: httpx.Client, store: dict[str, Any], body: Any,
                                                       path: list[str | int]) -> None:
    add(api, store["id"], "stays")
    assert_v4_error(delete(api, store["id"], body), 400, 7001, path=path)
    assert names(api, store["id"]) == ["stays"]


def test_malformed_json_and_a_read_only_token(api: httpx.Client, store: dict[str, Any],
                                              server: Server) -> None:
    [secret] = add(api, store["id"], "kept")
    response = delete(api, store["id"], content=b"[{", headers={"content-type": "application/json"})
    assert_v4_error(response, 400, 7001, path=["body"])
    reader = assert_ok(api.post("/tokens", json={"name": "ss-read", "permissions": ["Secrets Store Read"]}))
    response = delete(api, store["id"], [{"id": secret["id"]}], headers=server.headers(reader["value"]))
    assert_v4_error(response, 403, 10000, says="Secrets Store Write")
    assert names(api, store["id"]) == ["kept"]
