"""Logs API filters as the official SDK sends them, parsed back into what the caller meant."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from cloudflare import Cloudflare

from sluice.errors import ValidationError
from sluice.observe.filters import Filter, parse_filters


def sdk_query(**params) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """The query string the official SDK builds for logs.list(**params), as (name, value) pairs."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"result": [], "success": True, "errors": [], "messages": []})

    client = Cloudflare(api_token="t", base_url="http://sdk.test/client/v4",
                        http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    client.ai_gateway.logs.list("gw", account_id="a" * 32, **params)
    return parse_qsl(urlsplit(seen[0]).query, keep_blank_values=True)


def test_one_filter_with_several_values() -> None:
    query = sdk_query(filters=[{"key": "provider", "operator": "eq", "value": ["openai", "anthropic"]}])
    assert ("filters.key", "provider") in query  # the SDK's dotted, repeated format
    assert parse_filters(query) == [Filter("provider", "eq", ("openai", "anthropic"))]


def test_several_filters_split_by_type() -> None:
    query = sdk_query(filters=[
        {"key": "provider", "operator": "eq", "value": ["openai", "anthropic"]},
        {"key": "cost", "operator": "gt", "value": [0.5]},
        {"key": "success", "operator": "eq", "value": [True]},
        {"key": "created_at", "operator": "lt", "value": ["2030-01-01T00:00:00Z"]},
    ])
    assert parse_filters(query) == [
        Filter("provider", "eq", ("openai", "anthropic")),
        Filter("cost", "gt", (0.5,)),
        Filter("success", "eq", (True,)),
        Filter("created_at", "lt", ("2030-01-01T00:00:00.000Z",)),
    ]


def test_one_value_each_pairs_in_order() -> None:
    query = sdk_query(filters=[{"key": "model", "operator": "contains", "value": ["gpt"]},
                               {"key": "provider", "operator": "neq", "value": ["groq"]}])
    assert parse_filters(query) == [Filter("model", "contains", ("gpt",)),
                                    Filter("provider", "neq", ("groq",))]


def test_ambiguous_split_is_refused_not_guessed() -> None:
    query = sdk_query(filters=[{"key": "provider", "operator": "eq", "value": ["openai", "anthropic"]},
                               {"key": "model", "operator": "eq", "value": ["gpt-4o"]}])
    with pytest.raises(ValidationError) as caught:
        parse_filters(query)
    assert caught.value.path == ["query", "filters.value"]
    assert "filters[0][key]" in caught.value.message


def test_indexed_and_json_forms_are_unambiguous() -> None:
    indexed = [("filters[0][key]", "provider"), ("filters[0][operator]", "eq"),
               ("filters[0][value][]", "openai"),
               ("filters[0][value][]", "anthropic"), ("filters[1][key]", "model"),
               ("filters[1][operator]", "eq"),
               ("filters[1][value]", "gpt-4o")]
    expected = [Filter("provider", "eq", ("openai", "anthropic")), Filter("model", "eq", ("gpt-4o",))]
    assert parse_filters(indexed) == expected
    as_json = '[{"key":"provider","operator":"eq","value":["openai","anthropic"]},' \
              '{"key":"model","operator":"eq","value":["gpt-4o"]}]'
    assert parse_filters([("filters", as_json)]) == expected


def test_sdk_none_value_means_is_null() -> None:
    query = sdk_query(filters=[{"key": "model", "operator": "eq", "value": [None]}])
    assert parse_filters(query) == [Filter("model", "eq", (None,))]


@pytest.mark.parametrize(("items", "field"), [
    ([("filters.key", "nope"), ("filters.operator", "eq"), ("filters.value", "x")], "filters.key"),
    ([("filters.key", "model"), ("filters.operator", "like"), ("filters.value", "x")], "filters.operator"),
    ([("filters.key", "cost"), ("filters.operator", "gt"), ("filters.value", "cheap")], "filters.value"),
    ([("filters.key", "success"), ("filters.operator", "eq"), ("filters.value", "maybe")], "filters.value"),
    ([("filters.key", "created_at"), ("filters.operator", "gt"), ("filters.value", "yesterday")],
     "filters.value"),
    ([("filters.key", "model"), ("filters.operator", "lt"), ("filters.value", "a")], "filters.operator"),
    ([("filters.key", "cost"), ("filters.operator", "gt"), ("filters.value", "1"), ("filters.value", "2")],
     "filters.value"),
    ([("filters.key", "model"), ("filters.key", "provider"), ("filters.operator", "eq"),
      ("filters.value", "x"),
      ("filters.value", "y")], "filters.operator"),
    ([("filters", "not json")], "filters"),
])
def test_bad_filters_name_the_field(items: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_filters(items)
    assert caught.value.path == ["query", field]
    assert caught.value.message.startswith(field)


def test_unrelated_parameters_are_not_filters() -> None:
    assert parse_filters([("page", "2"), ("order_by", "model"), ("search", "x")]) == []
