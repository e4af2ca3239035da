"""U+0000 (NUL) in management input: PostgreSQL text cannot hold it, so it answered 500 there (and was
stored on SQLite). Now every backend refuses it alike with a 400 naming the field."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import unique_id
from tests.control.assertions import assert_ok, assert_v4_error


def test_a_store_name_with_nul_is_refused_naming_it(api: httpx.Client) -> None:
    response = api.post("/secrets_store/stores", json={"name": "a\u0000b"})
    assert_v4_error(response, 400, 7001, path=["body", "name"], says="name: must not contain")


def test_a_token_name_with_nul_is_refused_naming_it(api: httpx.Client) -> None:
    response = api.post("/tokens", json={"name": "t\u0000", "permissions": ["AI Gateway Run"]})
    assert_v4_error(response, 400, 7001, path=["body", "name"], says="U+0000")


def test_a_secret_comment_with_nul_is_refused_and_nothing_is_stored(api: httpx.Client) -> None:
    store = assert_ok(api.post("/secrets_store/stores", json={"name": unique_id("nul")}))
    url = f"/secrets_store/stores/{store['id']}/secrets"
    response = api.post(url, json=[{"name": "ok", "value": "v-123456789", "scopes": ["ai_gateway"]},
                                   {"name": "n", "value": "v-123456789", "scopes": ["ai_gateway"],
                                    "comment": "x\u0000"}])
    assert_v4_error(response, 400, 7001, path=["body", 1, "comment"], says="1.comment: must not contain")
    assert assert_ok(api.get(url)) == []


@pytest.mark.parametrize("body", [{"name\u0000": "x"}, [[["\u0000"]]], {"a": [{"b": "\u0000"}]}])
def test_nul_anywhere_in_a_body_is_a_400(api: httpx.Client, body: object) -> None:
    assert_v4_error(api.post("/secrets_store/stores", json=body), 400, 7001, says="U+0000")


def test_nul_deeper_than_the_recursion_limit_is_a_400_not_a_crash(api: httpx.Client) -> None:
    deep = "[" * 1000 + '"\\u0000"' + "]" * 1000  # orjson's own nesting limit is 1024
    response = api.post("/secrets_store/stores", content=deep.encode(),
                        headers={"content-type": "application/json"})
    assert_v4_error(response, 400, 7001, says="U+0000")


def test_a_logs_search_with_nul_is_refused_naming_it(api: httpx.Client, gateway: str) -> None:
    response = api.get(f"/ai-gateway/gateways/{gateway}/logs", params={"search": "a\u0000"})
    assert_v4_error(response, 400, 7001, path=["query", "search"], says="search: must not contain")
    response = api.get(f"/ai-gateway/gateways/{gateway}/logs",
                       params={"filters[0][key]": "model", "filters[0][operator]": "eq",
                               "filters[0][value][0]": "\u0000"})
    assert_v4_error(response, 400, 7001, path=["query", "filters[0][value][0]"], says="U+0000")


def test_an_anonymous_caller_is_told_401_before_the_nul_400(server, api: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    """POST /tokens reads its body before authenticating (no transaction waits on a client)."""
    url = f"{server.api}/accounts/{server.account_id}/tokens"
    body = {"name": "t\u0000", "permissions": ["AI Gateway Run"]}
    assert_v4_error(httpx.post(url, json=body, timeout=30), 401, 10000)
    assert_v4_error(api.post("/tokens", json=body), 400, 7001, path=["body", "name"])
