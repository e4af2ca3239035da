"""Logs API against the real server, driven by the official ``cloudflare`` SDK.

Logs are written straight into the running server's database through a LogSink (on SQLite, WAL lets
a second process write) — the same code path the data plane feeds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import cloudflare
import httpx
import pytest

from sluice.exchange import Exchange
from sluice.observe.sink import LogSink
from sluice.store.database import open_database
from tests.conftest import unique_id
from tests.control.assertions import assert_ok, assert_v4_error
from tests.observe.support import exchange
from tests.support.server import Server
from tests.support.stored import execute

T0 = 1_760_000_000
REQUEST = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'


def write_logs(server: Server, exchanges: list[Exchange]) -> list[str]:
    async def run() -> None:
        db = await open_database(server.database_url)
        try:
            sink = LogSink(db, interval_s=3600, body_max_bytes=64 * 1024)
            for item in exchanges:
                sink.record(item)
            await sink.flush()
            assert sink.dropped == {}
        finally:
            await db.close()

    asyncio.run(run())
    return [e.log_id for e in exchanges]


def sample(server: Server, gateway: str) -> list[str]:
    account = server.account_id
    return write_logs(server, [
        exchange(gateway, account_id=account, started_at=T0, provider="openai", model="gpt-4o",
                 tokens=(1000, 100),
                 duration_ms=100, alias="prod", config_id="c" * 32,
                 headers={"cf-aig-metadata": '{"user":"ann"}', "cf-aig-event-id": "ev-1"},
                 request_body=REQUEST,
                 response_body=b'{"id":"chatcmpl-1","choices":[]}'),
        exchange(gateway, account_id=account, started_at=T0 + 1, provider="anthropic",
                 model="claude-3-5-haiku",
                 tokens=(10, 20), duration_ms=300, path="v1/messages", success=False, status_code=529,
                 response_body=b"overloaded", response_content_type="text/plain"),
        exchange(gateway, account_id=account, started_at=T0 + 2, provider="groq",
                 model="llama-3.1-8b-instant",
                 tokens=(5, 5), duration_ms=200, stream=True,
                 response_body=b'data: {"x":1}\n\n', response_content_type="text/event-stream"),
    ])


def test_list_with_sdk_filters_order_and_paging(cf, server: Server, gateway: str, api: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    ids = sample(server, gateway)
    account = server.account_id
    every = list(cf.ai_gateway.logs.list(gateway, account_id=account, per_page=2))  # SDK pages until empty
    assert [log.id for log in every] == ids[::-1]  # newest first by default
    first = every[-1]
    assert (first.provider, first.model, first.path, first.success, first.cached) == (
        "openai", "gpt-4o", "chat/completions", True, False)
    assert (first.tokens_in, first.tokens_out, first.duration, first.status_code) == (1000, 100, 100, 200)
    assert first.cost == pytest.approx(1000 * 2.5e-6 + 100 * 10e-6) and first.metadata == '{"user":"ann"}'
    assert first.ai_model_type == "chat"

    two_providers = cf.ai_gateway.logs.list(gateway, account_id=account, filters=[
        {"key": "provider", "operator": "eq", "value": ["openai", "anthropic"]},
        {"key": "duration", "operator": "gt", "value": [150]},
    ])
    assert [log.id for log in two_providers] == [ids[1]]
    by_model = cf.ai_gateway.logs.list(gateway, account_id=account, order_by="model",
                                       order_by_direction="asc")
    assert [log.model for log in by_model] == ["claude-3-5-haiku", "gpt-4o", "llama-3.1-8b-instant"]
    assert [log.id for log in cf.ai_gateway.logs.list(gateway, account_id=account, search="ann")] == [ids[0]]
    assert [log.id for log in cf.ai_gateway.logs.list(gateway, account_id=account, success=False)] == [ids[1]]

    body = assert_ok_body(api.get(f"/ai-gateway/gateways/{gateway}/logs", params={"per_page": 1, "page": 2}))
    info = body["result_info"]
    assert (info["page"], info["per_page"], info["count"], info["total_count"]) == (2, 1, 1, 3)
    assert (info["min_duration"], info["max_duration"]) == (100, 300)
    assert (info["min_tokens_in"], info["max_tokens_in"]) == (5, 1000)
    assert (info["min_total_tokens"], info["max_total_tokens"]) == (10, 1100)
    assert info["max_cost"] == pytest.approx(first.cost)


def assert_ok_body(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def test_get_request_response(cf, server: Server, gateway: str) -> None:  # type: ignore[no-untyped-def]
    ids = sample(server, gateway)
    account = server.account_id
    one = cf.ai_gateway.logs.get(ids[0], account_id=account, gateway_id=gateway)
    assert one.request_head.startswith('{"model":"gpt-4o"') and one.request_head_complete is True
    assert (one.request_size, one.response_size) == (len(REQUEST), 32)
    assert one.response_head == '{"id":"chatcmpl-1","choices":[]}'
    assert cf.ai_gateway.logs.request(ids[0], account_id=account, gateway_id=gateway)["model"] == "gpt-4o"
    assert cf.ai_gateway.logs.response(ids[0], account_id=account, gateway_id=gateway) == {
        "id": "chatcmpl-1", "choices": []}
    assert cf.ai_gateway.logs.response(ids[1], account_id=account, gateway_id=gateway) == "overloaded"
    assert cf.ai_gateway.logs.response(ids[2], account_id=account, gateway_id=gateway) == 'data: {"x":1}\n\n'
    with pytest.raises(cloudflare.NotFoundError):
        cf.ai_gateway.logs.get("01" + "0" * 24, account_id=account, gateway_id=gateway)


def test_a_damaged_stored_body_reads_as_missing(cf, server: Server, gateway: str, api: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    sse = b"".join(b'data: {"choices":[{"delta":{"content":"w%d"}}]}\n\n' % i for i in range(100))
    [log_id] = write_logs(server, [exchange(gateway, account_id=server.account_id, started_at=T0, stream=True,
                                            response_body=sse, response_size=len(sse),
                                            response_content_type="text/event-stream")])
    damaged, _ = execute(server, "UPDATE request_logs SET response_body = substr(response_body, 1, 12) "
                                 "WHERE id = :id AND body_codec = 2", id=log_id)  # a frame damaged on disk
    assert damaged == 1
    one = cf.ai_gateway.logs.get(log_id, account_id=server.account_id, gateway_id=gateway)
    assert (one.response_head, one.response_head_complete, one.response_size) == ("", False, len(sse))
    assert one.request_head.startswith('{"model":"mock-model"')  # the rest of the log is intact
    raw = api.get(f"/ai-gateway/gateways/{gateway}/logs/{log_id}/response")
    assert raw.status_code == 200 and raw.content == b"" and raw.headers["x-sluice-body-complete"] == "false"


def test_edit_feedback_score_metadata(cf, server: Server, gateway: str, api: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    ids = sample(server, gateway)
    account = server.account_id
    cf.ai_gateway.logs.edit(ids[0], account_id=account, gateway_id=gateway, feedback=1, score=87,
                            metadata={"reviewed": True, "by": "qa"})
    raw = assert_ok_body(api.get(f"/ai-gateway/gateways/{gateway}/logs/{ids[0]}"))["result"]
    assert (raw["feedback"], raw["score"], raw["metadata"]) == (1, 87, '{"by":"qa","reviewed":true}')
    liked = cf.ai_gateway.logs.list(gateway, account_id=account,
                                    filters=[{"key": "feedback", "operator": "eq", "value": [1]}])
    assert [log.id for log in liked] == [ids[0]]
    url = f"/ai-gateway/gateways/{gateway}/logs/{ids[0]}"
    assert_v4_error(api.patch(url, json={"feedback": 5}), 400, 7001, path=["body", "feedback"])
    assert_v4_error(api.patch(url, json={"score": 101}), 400, 7001, path=["body", "score"])
    assert_v4_error(api.patch(url, json={"metadata": {"a": {"b": 1}}}), 400, 7001, path=["body", "metadata"])
    assert_v4_error(api.patch(url, json={"colour": "red"}), 400, 7001, path=["body", "colour"])


def test_delete_with_filters(cf, server: Server, gateway: str) -> None:  # type: ignore[no-untyped-def]
    ids = sample(server, gateway)
    account = server.account_id
    result = cf.ai_gateway.logs.delete(gateway, account_id=account,
                                       filters=[{"key": "success", "operator": "eq", "value": [True]}],
                                       limit=1)
    assert result.success is True
    assert {log.id for log in cf.ai_gateway.logs.list(gateway, account_id=account)} == {ids[1], ids[2]}
    cf.ai_gateway.logs.delete(gateway, account_id=account)
    assert list(cf.ai_gateway.logs.list(gateway, account_id=account)) == []


def test_bad_parameters_name_the_field(api: httpx.Client, gateway: str) -> None:
    url = f"/ai-gateway/gateways/{gateway}/logs"
    assert_v4_error(api.get(url, params={"per_page": 51}), 400, 7001, path=["query", "per_page"])
    assert_v4_error(api.get(url, params={"order_by": "cost"}), 400, 7001, path=["query", "order_by"])
    assert_v4_error(api.get(url, params={"min_cost": "cheap"}), 400, 7001, path=["query", "min_cost"])
    assert_v4_error(api.get(url, params=[("filters.key", "nope"), ("filters.operator", "eq"),
                                         ("filters.value", "x")]), 400, 7001, path=["query", "filters.key"])
    assert_v4_error(api.get("/ai-gateway/gateways/no-such-gateway/logs"), 404, 7002)


def test_logs_are_per_gateway_and_go_with_it(cf, server: Server, api: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    account = server.account_id
    one, two = unique_id(), unique_id()
    for gateway_id in (one, two):
        assert_ok(api.post("/ai-gateway/gateways", json={"id": gateway_id}))
    ids = sample(server, one)
    assert list(cf.ai_gateway.logs.list(two, account_id=account)) == []
    with pytest.raises(cloudflare.NotFoundError):
        cf.ai_gateway.logs.get(ids[0], account_id=account, gateway_id=two)
    assert_ok(api.delete(f"/ai-gateway/gateways/{one}"))
    assert_ok(api.post("/ai-gateway/gateways", json={"id": one}))  # same id again: a fresh gateway
    assert list(cf.ai_gateway.logs.list(one, account_id=account)) == []


def test_read_permission_reads_write_permission_edits(server: Server, gateway: str,
                                                      api: httpx.Client) -> None:
    ids = sample(server, gateway)
    reader = {"name": "reader", "permissions": ["AI Gateway Read"]}
    token = assert_ok(api.post("/tokens", json=reader))["value"]
    url = f"{server.api}/accounts/{server.account_id}/ai-gateway/gateways/{gateway}/logs"
    with httpx.Client(headers=server.headers(token), timeout=30) as reader:
        assert reader.get(url).status_code == 200
        assert reader.get(f"{url}/{ids[0]}/request").status_code == 200
        assert_v4_error(reader.patch(f"{url}/{ids[0]}", json={"feedback": 1}), 403, 10000)
        assert_v4_error(reader.delete(url), 403, 10000)
    assert len(assert_ok(api.get(f"/ai-gateway/gateways/{gateway}/logs"))) == 3
