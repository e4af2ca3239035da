"""Gateways (docs/api.md): validation, conflicts, search, paging and the delete cascade."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.control.assertions import assert_ok, assert_v4_error
from tests.support.server import Server
from tests.support.stored import secret_value

GW = "/ai-gateway/gateways"


def test_create_applies_defaults(api: httpx.Client) -> None:
    gateway_id = f"defaults-{secrets.token_hex(3)}"
    result = assert_ok(api.post(GW, json={"id": gateway_id}))
    assert result["id"] == gateway_id and result["authentication"] is True
    assert result["rate_limiting_technique"] == "fixed" and result["collect_logs"] is True
    assert result["created_at"].endswith("Z") and len(result["created_at"]) == len("2025-01-01T00:00:00.000Z")


def test_unacted_fields_are_stored_and_returned(api: httpx.Client) -> None:
    gateway_id = f"extras-{secrets.token_hex(3)}"
    extras = {"dlp": {"action": "FLAG", "enabled": False, "profiles": []},
              "otel": [{"url": "http://collector", "headers": {}, "authorization": "x"}],
              "spend_limits": {"enabled": True,
                               "rules": [{"limit": 5.0, "limitType": "cost", "window": 86400}]}}
    assert_ok(api.post(GW, json={"id": gateway_id, **extras}))
    got = assert_ok(api.get(f"{GW}/{gateway_id}"))
    assert {k: got[k] for k in extras} == extras


@pytest.mark.parametrize(("payload", "path"), [
    ({"id": "Upper"}, ["body", "id"]),
    ({"id": "a--b"}, ["body", "id"]),
    ({"id": "-lead"}, ["body", "id"]),
    ({"id": "trail-"}, ["body", "id"]),
    ({"id": "has space"}, ["body", "id"]),
    ({"id": ""}, ["body", "id"]),
    ({"id": "a" * 65}, ["body", "id"]),
    ({"id": 12}, ["body", "id"]),
    ({}, ["body", "id"]),
    ({"id": "ok", "rate_limiting_technique": "burst"}, ["body", "rate_limiting_technique"]),
    ({"id": "ok", "retry_backoff": "random"}, ["body", "retry_backoff"]),
    ({"id": "ok", "log_management_strategy": "KEEP"}, ["body", "log_management_strategy"]),
    ({"id": "ok", "retry_max_attempts": 6}, ["body", "retry_max_attempts"]),
    ({"id": "ok", "retry_delay": 60001}, ["body", "retry_delay"]),
    ({"id": "ok", "cache_ttl": -1}, ["body", "cache_ttl"]),
    ({"id": "ok", "collect_logs": "yes"}, ["body", "collect_logs"]),
    ({"id": "ok", "authentication": 1}, ["body", "authentication"]),
    ({"id": "ok", "store_id": "0" * 32}, ["body", "store_id"]),
    ({"id": "ok", "nonsense": True}, ["body", "nonsense"]),
], ids=["upper", "double-dash", "leading-dash", "trailing-dash", "space", "empty", "65-chars", "number",
        "missing", "technique", "backoff", "log-strategy", "retries-6", "delay", "ttl-negative",
        "logs-string", "auth-int", "unknown-store", "unknown-field"])
def test_invalid_gateway_is_refused(api: httpx.Client, payload: dict[str, Any], path: list[str]) -> None:
    total = api.get(GW).json()["result_info"]["total_count"]
    assert_v4_error(api.post(GW, json=payload), 400, 7001, path=path)
    assert api.get(GW).json()["result_info"]["total_count"] == total


def test_id_of_64_chars_is_accepted(api: httpx.Client) -> None:
    gateway_id = ("g" + secrets.token_hex(32))[:64]
    assert assert_ok(api.post(GW, json={"id": gateway_id}))["id"] == gateway_id


def test_duplicate_gateway_is_409(api: httpx.Client, gateway: str) -> None:
    response = api.post(GW, json={"id": gateway})
    assert_v4_error(response, 409, 7009, says=gateway)
    assert response.headers["x-should-retry"] == "false"
    assert [g["id"] for g in assert_ok(api.get(GW, params={"search": gateway}))] == [gateway]


def test_update_validates_and_keeps_other_fields(api: httpx.Client, gateway: str) -> None:
    updated = assert_ok(api.put(f"{GW}/{gateway}", json={"cache_ttl": 120, "retry_max_attempts": 3}))
    assert updated["cache_ttl"] == 120 and updated["authentication"] is False
    assert_v4_error(api.put(f"{GW}/{gateway}", json={"rate_limiting_technique": "x"}), 400, 7001,
                    path=["body", "rate_limiting_technique"])
    assert_v4_error(api.put(f"{GW}/{gateway}", json={"id": "other"}), 400, 7001, path=["body", "id"])
    assert assert_ok(api.get(f"{GW}/{gateway}"))["retry_max_attempts"] == 3
    assert_v4_error(api.put(f"{GW}/missing-{gateway}", json={"cache_ttl": 1}), 404, 7002)


def test_search_and_paging(api: httpx.Client) -> None:
    tag = secrets.token_hex(3)
    made = [f"srch{tag}-{i}" for i in range(5)]
    for gateway_id in made:
        assert_ok(api.post(GW, json={"id": gateway_id}))
    response = api.get(GW, params={"search": f"srch{tag}", "per_page": 2, "page": 2})
    assert [g["id"] for g in assert_ok(response)] == made[2:4]
    assert response.json()["result_info"] == {"page": 2, "per_page": 2, "count": 2, "total_count": 5,
                                              "total_pages": 3}
    # A short page ends the list, so its total is counted from it; past the end it is counted anew.
    for page, count in ((3, 1), (4, 0)):
        response = api.get(GW, params={"search": f"srch{tag}", "per_page": 2, "page": page})
        assert [g["id"] for g in assert_ok(response)] == made[4:4 + count]
        assert response.json()["result_info"]["total_count"] == 5
    response = api.get(GW, params={"search": f"srch{tag}", "per_page": 10})
    assert len(assert_ok(response)) == 5 and response.json()["result_info"]["total_count"] == 5
    found = assert_ok(api.get(GW, params={"search": f"srch{tag}-3"}))
    assert found == [assert_ok(api.get(f"{GW}/{made[3]}"))]
    # LIKE wildcards in the search are literal
    assert assert_ok(api.get(GW, params={"search": f"srch{tag}%"})) == []
    assert_v4_error(api.get(GW, params={"per_page": 0}), 400, 7001, path=["query", "per_page"])
    assert_v4_error(api.get(GW, params={"page": "two"}), 400, 7001, path=["query", "page"])


def test_delete_cascades_configs_and_their_secrets(api: httpx.Client, gateway: str, server: Server) -> None:
    store = assert_ok(api.post("/secrets_store/stores", json={"name": f"keep-{gateway}"}))
    shared = {"name": "shared", "value": "sk-shared-123456", "scopes": ["ai_gateway"]}
    outside = assert_ok(api.post(f"/secrets_store/stores/{store['id']}/secrets", json=[shared]))[0]
    created = [assert_ok(api.post(f"{GW}/{gateway}/provider_configs", json={
        "provider_slug": slug, "alias": "k", "default_config": True, "secret": f"sk-{slug}-0123456789"}))
        for slug in ("openai", "anthropic")]
    assert_ok(api.post(f"{GW}/{gateway}/provider_configs", json={
        "provider_slug": "groq", "alias": "byid", "default_config": False, "secret_id": outside["id"]}))
    deleted = assert_ok(api.delete(f"{GW}/{gateway}"))
    assert deleted["id"] == gateway
    assert_v4_error(api.get(f"{GW}/{gateway}"), 404, 7002)
    assert_v4_error(api.get(f"{GW}/{gateway}/provider_configs"), 404, 7002)
    for config in created:
        assert secret_value(server, config["secret_id"]) is None
    # a secret the configs did not create stays
    assert secret_value(server, outside["id"]) == "sk-shared-123456"
    # the id is free again, with no configs
    assert_ok(api.post(GW, json={"id": gateway}))
    assert assert_ok(api.get(f"{GW}/{gateway}/provider_configs")) == []


def test_gateway_url_helper(api: httpx.Client, gateway: str, server: Server) -> None:
    url = assert_ok(api.get(f"{GW}/{gateway}/url/openai"))
    assert url == f"{server.url}/v1/{server.account_id}/{gateway}/openai"
    assert_v4_error(api.get(f"{GW}/{gateway}/url/nope"), 400, 7001, path=["path", "provider"])
