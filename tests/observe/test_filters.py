"""Logs API filters as the official SDK sends them, parsed back into what the caller meant."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from cloudflare import Cloudflare

from sluice.errors import ValidationError
from sluice.logs import filters
from sluice.logs.filters import MAX_QUERY_BYTES, MAX_QUERY_PARAMS, Filter, check_query, parse_filters


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


def test_the_python_sdk_sends_columns() -> None:
    # httpx groups repeated names: every key, then every operator, then every value.
    query = sdk_query(filters=[{"key": "provider", "operator": "eq", "value": ["openai", "anthropic"]},
                               {"key": "model", "operator": "eq", "value": ["gpt-4o"]}])
    names = ["filters.key"] * 2 + ["filters.operator"] * 2 + ["filters.value"] * 3
    assert [name for name, _ in query] == names


def test_two_multi_valued_filters_in_the_sdk_form() -> None:
    # provider values are provider slugs, model values are not: one split fits.
    query = sdk_query(filters=[{"key": "provider", "operator": "eq", "value": ["openai", "anthropic"]},
                               {"key": "model", "operator": "eq", "value": ["gpt-4o", "claude-3-5-haiku"]},
                               {"key": "id", "operator": "neq", "value": ["01" + "A" * 24, "01" + "B" * 24]},
                               {"key": "cost", "operator": "gt", "value": [0.5]},
                               {"key": "cached", "operator": "eq", "value": [False, True]}])
    assert parse_filters(query) == [Filter("provider", "eq", ("openai", "anthropic")),
                                    Filter("model", "eq", ("gpt-4o", "claude-3-5-haiku")),
                                    Filter("id", "neq", ("01" + "A" * 24, "01" + "B" * 24)),
                                    Filter("cost", "gt", (0.5,)), Filter("cached", "eq", (False, True))]


def test_two_multi_valued_text_filters_that_cannot_be_told_apart_are_refused() -> None:
    query = sdk_query(filters=[{"key": "model", "operator": "eq", "value": ["a", "b"]},
                               {"key": "event_id", "operator": "eq", "value": ["c"]}])
    with pytest.raises(ValidationError) as caught:
        parse_filters(query)
    assert caught.value.path == ["query", "filters.value"]
    assert "filters[0][key]" in caught.value.message


def test_filters_sent_one_after_another_are_grouped_whatever_the_order_of_their_fields() -> None:
    # The order other clients (e.g. a query built by hand, or the TypeScript SDK) send.
    interleaved = [("filters.key", "model"), ("filters.operator", "eq"), ("filters.value", "a"),
                   ("filters.value", "b"), ("filters.key", "event_id"), ("filters.operator", "neq"),
                   ("filters.value", "c"), ("filters.value", "d"), ("filters.key", "model_type"),
                   ("filters.operator", "eq"), ("filters.key", "tokens"), ("filters.operator", "gt"),
                   ("filters.value", "5")]
    assert parse_filters(interleaved) == [
        Filter("model", "eq", ("a", "b")), Filter("event_id", "neq", ("c", "d")),
        Filter("model_type", "eq", (None,)), Filter("tokens", "gt", (5.0,))]
    values_first = [("filters.value", "a"), ("filters.value", "b"), ("filters.key", "model"),
                    ("filters.operator", "eq"), ("filters.value", "c"), ("filters.operator", "neq"),
                    ("filters.key", "event_id")]
    assert parse_filters(values_first) == [Filter("model", "eq", ("a", "b")),
                                           Filter("event_id", "neq", ("c",))]


def test_the_column_form_pairs_one_value_per_filter() -> None:
    columns = [("filters.key", "model"), ("filters.key", "provider"), ("filters.operator", "contains"),
               ("filters.operator", "neq"), ("filters.value", "gpt"), ("filters.value", "groq")]
    assert parse_filters(columns) == [Filter("model", "contains", ("gpt",)),
                                      Filter("provider", "neq", ("groq",))]
    with pytest.raises(ValidationError) as caught:
        parse_filters([*columns, ("filters.value", "three")])
    assert caught.value.path == ["query", "filters.value"]
    assert "filters[0][key]" in caught.value.message


@pytest.mark.parametrize(("query", "field"), [
    (sdk_query(filters=[{"key": "cost", "operator": "eq", "value": [{"a": 1}]}]), "filters.value.a"),
    ([("filters", '[{"key":"cost","operator":"eq","value":[{"a":1}]}]')], "filters[0].value"),
    ([("filters", '[{"key":"model","operator":"eq","value":[["x"]]}]')], "filters[0].value"),
    ([("filters", '{"key":"tokens","operator":"eq","value":{"n":1}}')], "filters[0].value"),
    ([("filters.key", "model"), ("filters.operator", "eq"), ("filters.value[]", "x")], "filters.value[]"),
])
def test_a_value_that_is_not_a_scalar_is_refused_naming_the_field(query: list[tuple[str, str]],
                                                                   field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_filters(query)
    assert caught.value.path == ["query", field]


@pytest.mark.parametrize(("query", "field"), [
    ([("filters.key", "model"), ("filters.operator", "eq")] + [("filters.value", str(i)) for i in range(101)],
     "filters.value"),
    ([("filters[0][key]", "model"), ("filters[0][operator]", "eq")] + [("filters[0][value][]", "v")] * 101,
     "filters.value"),
    ([("filters.key", "model"), ("filters.operator", "eq"), ("filters.value", "x")] * 21, "filters"),
    ([("filters", '[' + ','.join(['{"key":"model","operator":"eq","value":["x"]}'] * 21) + ']')], "filters"),
    ([("filters", '[{"key":"model","operator":"eq","value":[' + ','.join(['"x"'] * 101) + ']}]')], "filters"),
])
def test_caps_on_filters_and_values(query: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_filters(query)
    assert caught.value.path == ["query", field]


def test_caps_are_counted_before_any_value_is_parsed() -> None:
    # A bad first value would be reported by the parse; the count refuses the query first.
    query = [("filters.key", "cost"), ("filters.operator", "eq")] + [("filters.value", "x")] * 600
    with pytest.raises(ValidationError) as caught:
        parse_filters(query)
    assert "600 filter values; at most 100" in caught.value.message


def test_the_column_split_looks_at_each_value_once_per_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    # Linear in the values: at most two passes (by what a log holds, then by type) per filter.
    calls = 0
    real = filters._fits

    def counted(*args: object) -> bool:
        nonlocal calls
        calls += 1
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(filters, "_fits", counted)
    keys = ["model", "event_id", "user_agent"] * 6
    query = [("filters.key", k) for k in keys] + [("filters.operator", "eq")] * len(keys)
    query += [("filters.value", f"v{i}") for i in range(100)]
    with pytest.raises(ValidationError):
        parse_filters(query)  # text filters with many values each: ambiguous
    assert calls <= 2 * len(keys) * 100


def test_query_string_size_and_parameter_count_are_capped() -> None:
    check_query(b"filters.key=model&" * 100)
    with pytest.raises(ValidationError) as caught:
        check_query(b"x" * (MAX_QUERY_BYTES + 1))
    assert caught.value.path == ["query", "query"]
    with pytest.raises(ValidationError) as caught:
        check_query(b"&" * MAX_QUERY_PARAMS)
    assert caught.value.path == ["query", "query"]


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
    ([("filters.value", "x")], "filters.key"),
    ([("filters.key", "model"), ("filters.key", "provider"), ("filters.operator", "eq"),
      ("filters.operator", "eq"),
      ("filters.value", "x")], "filters.value"),
])
def test_bad_filters_name_the_field(items: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_filters(items)
    assert caught.value.path == ["query", field]
    assert caught.value.message.startswith(field)


def test_unrelated_parameters_are_not_filters() -> None:
    assert parse_filters([("page", "2"), ("order_by", "model"), ("search", "x")]) == []


def test_custom_provider_slugs_are_providers_in_the_sdk_form() -> None:
    # a custom provider (custom-{slug}) is told apart from a model like a catalog slug is
    query = sdk_query(filters=[{"key": "provider", "operator": "eq", "value": ["custom-mine", "openai"]},
                               {"key": "model", "operator": "eq", "value": ["m-1", "m-2"]}])
    assert parse_filters(query) == [Filter("provider", "eq", ("custom-mine", "openai")),
                                    Filter("model", "eq", ("m-1", "m-2"))]
