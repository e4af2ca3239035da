"""cf-aig-metadata, cf-aig-custom-cost and the price table: bad input is ignored, never fatal."""

from __future__ import annotations

import pytest

from sluice.logs.custom import CustomCost, metadata_text, parse_custom_cost, parse_metadata
from sluice.logs.pricing import default_table
from sluice.logs.records import log_row, model_type
from tests.observe.support import exchange


def test_metadata_keeps_five_flat_entries() -> None:
    header = '{"a":1,"b":"x","c":true,"d":2.5,"e":"y","f":"dropped"}'
    assert parse_metadata(header) == {"a": 1, "b": "x", "c": True, "d": 2.5, "e": "y"}
    assert metadata_text({"b": 1, "a": "x"}) == '{"a":"x","b":1}'  # canonical: sorted, no spaces


@pytest.mark.parametrize("header",
                         [None, "", "not json", "[1,2]", '"text"', '{"a":{"nested":1}}', '{"a":[1]}',
                                    '{"a":null}', '{"":1}', '{"a":"' + "x" * 5000 + '"}'])
def test_invalid_metadata_is_ignored(header: str | None) -> None:
    assert parse_metadata(header) is None


def test_custom_cost_forms() -> None:
    assert parse_custom_cost('{"per_token_in":0.001,"per_token_out":0.002}') == CustomCost(0.001, 0.002)
    assert parse_custom_cost('{"total_cost":1.5}') == CustomCost(total_cost=1.5)
    assert CustomCost(0.001, 0.002).cost(10, 5) == pytest.approx(0.02)
    assert CustomCost(total_cost=1.5).cost(10, 5) == 1.5


@pytest.mark.parametrize("header", ["", "x", "[]", "{}", '{"total_cost":-1}', '{"total_cost":"1"}',
                                    '{"per_token_in":true}', '{"per_token_in":1,"total_cost":2}',
                                    '{"other":1}'])
def test_invalid_custom_cost_is_ignored(header: str) -> None:
    assert parse_custom_cost(header) is None


def test_price_lookup_exact_prefix_and_fallbacks() -> None:
    prices = default_table()
    assert prices.price("openai", "gpt-4o").per_token_in == pytest.approx(2.5e-6)
    # the longest prefix wins
    assert prices.price("openai", "gpt-4o-mini-2024-07-18").per_token_in == pytest.approx(0.15e-6)
    assert prices.price("openai", "gpt-4o-2024-08-06").per_token_out == pytest.approx(10e-6)
    assert prices.price("azure-openai", "gpt-4o") == prices.price("openai", "gpt-4o")  # alias
    assert prices.price("openrouter", "anthropic/claude-3-5-sonnet-20241022") == prices.price("anthropic",
                                                                                                "claude-3-5-sonnet")
    assert prices.price("google-ai-studio", "models/gemini-2.0-flash") is not None
    assert prices.price("anthropic", "mock-model").per_token_out == pytest.approx(2e-6)  # any provider
    assert prices.price("openai", "gpt-4oz") is None  # a prefix must end at a separator
    assert prices.price("openai", None) is None


def test_price_memo_answers_alike_and_stays_bounded() -> None:
    from sluice.logs import pricing

    prices = pricing.PriceTable({"openai": {"gpt-4o": {"in": 2.5, "out": 10}},
                                 "*": {"mock": {"in": 1, "out": 2}}})
    first = prices.price("openai", "gpt-4o-2024-08-06")
    assert first is not None and prices.price("openai", "gpt-4o-2024-08-06") is first  # remembered
    assert prices.price("openai", "gpt-4oz") is None and prices.price("openai", "gpt-4oz") is None
    for i in range(pricing.FOUND_MAX + 10):  # caller-chosen model names never grow it past the bound
        assert prices.price("openai", f"mock-{i}") == prices.price("x", "mock")
    assert len(prices._found) <= pricing.FOUND_MAX


def test_cost_of_a_log() -> None:
    assert log_row(exchange(tokens=(1000, 500)))["cost"] == pytest.approx(1000 * 1e-6 + 500 * 2e-6)
    assert log_row(exchange(model="unknown-model"))["cost"] is None
    assert log_row(exchange(tokens=None))["cost"] is None
    custom = log_row(exchange(headers={"cf-aig-custom-cost": '{"total_cost":0.25}'}))
    assert (custom["cost"], custom["custom_cost"]) == (0.25, True)
    hit = log_row(exchange(cached=True, headers={"cf-aig-custom-cost": '{"total_cost":0.25}'}))
    assert (hit["cost"], hit["custom_cost"]) == (0.0, False)  # a cache hit was not billed


def test_log_row_fields_and_redaction() -> None:
    key = "sk-proj-" + "A1b2C3d4" * 6
    row = log_row(exchange(path="v1beta/models/x:generateContent?key=AIzaSyNOTAREALKEY0000000000000000000",
                           request_body=b'{"note":"' + key.encode() + b'"}', stream=True,
                           headers={"cf-aig-metadata": '{"team":"red"}', "cf-aig-event-id": "ev-1",
                                    "user-agent": "sdk/1"}))
    assert row["path"] == "v1beta/models/x:generateContent"
    assert key.encode() not in row["request_body"] and b"[REDACTED]" in row["request_body"]
    assert (row["metadata"], row["event_id"], row["user_agent"]) == ('{"team":"red"}', "ev-1", "sdk/1")
    assert (row["model_type"], row["request_type"], row["stream"]) == ("chat", "stream", True)
    assert row["created_at"].endswith("Z") and len(row["created_at"]) == 24


@pytest.mark.parametrize(("path", "kind"), [("chat/completions", "chat"), ("v1/messages", "chat"),
                                            ("embeddings", "embedding"), ("images/generations", "image"),
                                            ("audio/transcriptions", "speech-to-text"), ("other", None)])
def test_model_type(path: str, kind: str | None) -> None:
    assert model_type(path) == kind
