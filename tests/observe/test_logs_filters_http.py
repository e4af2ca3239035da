"""Logs API filters over HTTP: every form the official SDK sends, and hostile queries that must
neither stall the process nor run long (issue 15, items 1 and 15)."""

from __future__ import annotations

import threading
import time
from typing import Any

import cloudflare
import httpx
import pytest

from tests.control.assertions import assert_v4_error
from tests.observe.support import exchange
from tests.observe.test_logs_api import T0, write_logs
from tests.proxy.helpers import add_config, create_token, gateway_url
from tests.support.server import Server

READ = "AI Gateway Read"


def _rows(server: Server, gateway: str) -> list[str]:
    account = server.account_id
    return write_logs(server, [
        exchange(gateway, account_id=account, started_at=T0 + i, provider=provider, model=model)
        for i, (provider, model) in enumerate([("openai", "gpt-4o"), ("anthropic", "claude-3-5-haiku"),
                                                ("openai", "gpt-4o-mini"), ("groq", "gpt-4o"),
                                                ("anthropic", "gpt-4o")])
    ])


def test_sdk_two_multi_valued_filters_return_the_right_rows(  # type: ignore[no-untyped-def]
        cf, server: Server, gateway: str) -> None:
    ids = _rows(server, gateway)
    found = cf.ai_gateway.logs.list(gateway, account_id=server.account_id, filters=[
        {"key": "provider", "operator": "eq", "value": ["openai", "anthropic"]},
        {"key": "model", "operator": "eq", "value": ["gpt-4o", "claude-3-5-haiku"]},
    ])
    assert sorted(log.id for log in found) == sorted([ids[0], ids[1], ids[4]])
    found = cf.ai_gateway.logs.list(gateway, account_id=server.account_id, filters=[
        {"key": "model", "operator": "neq", "value": ["gpt-4o-mini", "claude-3-5-haiku"]},
        {"key": "provider", "operator": "neq", "value": ["groq", "anthropic"]},
    ])
    assert [log.id for log in found] == [ids[0]]


@pytest.mark.parametrize(("params", "field"), [
    ([("filters", '[{"key":"cost","operator":"eq","value":[{"a":1}]}]')], "filters[0].value"),
    ([("filters", '[{"key":"model","operator":"eq","value":{"a":1}}]')], "filters[0].value"),
    ([("filters.key", "cost"), ("filters.operator", "eq"), ("filters.value.a", "1")], "filters.value.a"),
])
def test_a_non_scalar_filter_value_is_a_400_naming_the_field(
        api: httpx.Client, gateway: str, params: list[tuple[str, str]], field: str) -> None:
    assert_v4_error(api.get(f"/ai-gateway/gateways/{gateway}/logs", params=params), 400, 7001,
                    path=["query", field])


def test_the_sdk_sending_an_object_as_a_value_gets_a_400(  # type: ignore[no-untyped-def]
        cf, server: Server, gateway: str) -> None:
    with pytest.raises(cloudflare.BadRequestError) as caught:
        list(cf.ai_gateway.logs.list(gateway, account_id=server.account_id,
                                     filters=[{"key": "cost", "operator": "eq", "value": [{"a": 1}]}]))
    assert "filters.value.a" in str(caught.value)


def _hostile(values: int) -> list[tuple[str, str]]:
    """Two multi-valued filters in the SDK's flattened (column) form."""
    return [("filters.key", "model"), ("filters.key", "event_id"), ("filters.operator", "eq"),
            ("filters.operator", "eq")] + [("filters.value", f"m{i:03d}") for i in range(values)]


def test_a_hostile_filter_query_is_refused_fast_and_stalls_nothing(server: Server, gateway: str,
                                                                   api: httpx.Client) -> None:
    add_config(api, gateway, "openai")
    run_token = create_token(api)
    read_token = create_token(api, [READ])
    url = f"{server.api}/accounts/{server.account_id}/ai-gateway/gateways/{gateway}/logs"
    outcome: dict[str, Any] = {}

    def attack() -> None:
        started = time.monotonic()
        with httpx.Client(headers=server.headers(read_token), timeout=120) as reader:
            outcome["response"] = reader.get(url, params=_hostile(600))
        outcome["seconds"] = time.monotonic() - started

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        time.sleep(0.2)  # the attack is under way
        started = time.monotonic()
        assert httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200
        chat = httpx.post(f"{gateway_url(server, gateway)}/chat/completions", timeout=1.0,
                          headers={"authorization": f"Bearer {run_token}"},
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code == 200, chat.text
        assert time.monotonic() - started < 1.0
    finally:
        attacker.join(timeout=120)
    assert outcome["seconds"] < 1.0
    assert_v4_error(outcome["response"], 400, 7001, path=["query", "query"], says="query parameters")


@pytest.mark.parametrize("params", [
    [("search", "x" * 20_000)],
    [("page", "1")] * 500,
    [("filters", "[" + ",".join(['{"key":"model","operator":"eq","value":["x"]}'] * 21) + "]")],
])
def test_oversized_queries_are_refused_before_parsing(api: httpx.Client, gateway: str,
                                                      params: list[tuple[str, str]]) -> None:
    for method in ("GET", "DELETE"):
        started = time.monotonic()
        response = api.request(method, f"/ai-gateway/gateways/{gateway}/logs", params=params)
        assert time.monotonic() - started < 1.0
        assert response.status_code == 400, response.text
