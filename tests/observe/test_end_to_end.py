"""Through the real data plane: an OpenAI SDK call is logged, costed and counted on its key.

Logs are written by the server's background flush; the test waits for the log id from the
``cf-aig-log-id`` header to appear (a condition with a generous deadline, not a timing claim).
"""

from __future__ import annotations

import time
from typing import Any

import cloudflare
import httpx
import openai
import pytest

from tests.control.assertions import assert_ok, assert_v4_error
from tests.proxy.helpers import add_config, create_token, gateway_url, new_key, upstream_requests
from tests.support.server import Server
from tests.support.stored import database_bytes, execute

MESSAGES = [{"role": "user", "content": "hello"}]


def wait_for_log(cf, server: Server, gateway: str, log_id: str) -> Any:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 20
    while True:
        try:
            return cf.ai_gateway.logs.get(log_id, account_id=server.account_id, gateway_id=gateway)
        except cloudflare.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_request_is_logged_with_cost_alias_and_no_key(cf, server: Server, gateway: str,  # type: ignore[no-untyped-def]
                                                        api: httpx.Client) -> None:
    key = new_key("sk-proj")
    config = add_config(api, gateway, alias="team-a", secret=key)
    token = create_token(api)
    client = openai.OpenAI(base_url=gateway_url(server, gateway), api_key=token, max_retries=0,
                           default_headers={"cf-aig-metadata": '{"user":"ann","n":1}',
                                            "cf-aig-event-id": "e-7"})
    raw = client.chat.completions.with_raw_response.create(model="mock-model", messages=MESSAGES)
    completion = raw.parse()
    log_id = raw.headers["cf-aig-log-id"]

    log = wait_for_log(cf, server, gateway, log_id)
    usage = completion.usage
    assert (log.provider, log.model, log.path, log.success, log.status_code) == (
        "openai", "mock-model", "chat/completions", True, 200)
    assert (log.tokens_in, log.tokens_out) == (usage.prompt_tokens, usage.completion_tokens)
    assert log.cost == pytest.approx(usage.prompt_tokens * 1e-6 + usage.completion_tokens * 2e-6)
    assert log.metadata == '{"n":1,"user":"ann"}'
    detail = assert_ok(api.get(f"/ai-gateway/gateways/{gateway}/logs/{log_id}"))
    assert (detail["alias"], detail["event_id"]) == ("team-a", "e-7")
    stored = cf.ai_gateway.logs.request(log_id, account_id=server.account_id, gateway_id=gateway)
    assert stored["messages"] == MESSAGES
    everything = str(assert_ok(api.get(f"/ai-gateway/gateways/{gateway}/logs/{log_id}")))
    everything += httpx.get(f"{server.url}/metrics", timeout=10).text
    assert key not in everything and token not in everything

    seen = assert_ok(api.get(f"/ai-gateway/gateways/{gateway}/provider_configs/{config['id']}"))
    assert (seen["request_count"], seen["error_count"], seen["stale"]) == (1, 0, False)
    assert seen["last_used_at"] is not None


def test_collect_log_false_is_honoured(cf, server: Server, gateway: str, api: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    add_config(api, gateway)
    client = openai.OpenAI(base_url=gateway_url(server, gateway), api_key=create_token(api), max_retries=0)
    skipped = client.chat.completions.with_raw_response.create(
        model="mock-model", messages=MESSAGES, extra_headers={"cf-aig-collect-log": "false"})
    kept = client.chat.completions.with_raw_response.create(model="mock-model", messages=MESSAGES)
    wait_for_log(cf, server, gateway, kept.headers["cf-aig-log-id"])  # flushed after the skipped one
    ids = [log.id for log in cf.ai_gateway.logs.list(gateway, account_id=server.account_id)]
    assert ids == [kept.headers["cf-aig-log-id"]]
    assert skipped.headers["cf-aig-log-id"] not in ids


def test_collect_log_payload_false_logs_metadata_never_bodies(  # type: ignore[no-untyped-def]
        cf, server: Server, gateway: str, api: httpx.Client, mock_upstream) -> None:
    add_config(api, gateway)
    client = openai.OpenAI(base_url=gateway_url(server, gateway), api_key=create_token(api), max_retries=0,
                           default_headers={"cf-aig-collect-log-payload": "false"})
    secret = f"private-prompt-{time.time_ns()}"
    messages = [{"role": "user", "content": secret}]
    plain = client.chat.completions.with_raw_response.create(model="mock-model", messages=messages)
    streamed = client.chat.completions.with_raw_response.create(
        model="mock-model", messages=messages, stream=True, stream_options={"include_usage": True})
    chunks = list(streamed.parse())
    answer_id = plain.parse().id
    for raw, response_id in ((plain, answer_id), (streamed, chunks[0].id)):
        log_id = raw.headers["cf-aig-log-id"]
        log = wait_for_log(cf, server, gateway, log_id)  # the metadata is all there
        assert (log.provider, log.model, log.status_code, log.success) == ("openai", "mock-model", 200, True)
        assert log.tokens_in and log.tokens_out and log.cost
        assert (log.request_head, log.response_head) == (None, None)
        assert (log.request_head_complete, log.response_head_complete) == (False, False)
        for which in ("request", "response"):
            response = api.get(f"/ai-gateway/gateways/{gateway}/logs/{log_id}/{which}")
            error = assert_v4_error(response, 404, 7002, says="cf-aig-collect-log-payload: false")
            assert f"{which} body was not stored" in error["message"]
            with pytest.raises(cloudflare.NotFoundError):
                getattr(cf.ai_gateway.logs, which)(log_id, account_id=server.account_id, gateway_id=gateway)
        _, rows = execute(server, "SELECT request_body, response_body FROM request_logs WHERE id = :id",
                          id=log_id)
        assert rows == [(None, None)]
        stored = database_bytes(server)
        assert secret.encode() not in stored and response_id.encode() not in stored
    # the header is Sluice's: it never reaches the provider
    assert all("cf-aig-collect-log-payload" not in r["headers"] for r in upstream_requests(mock_upstream))
