"""The issue's end-to-end check: traffic from the official OpenAI and Anthropic SDKs (plain and
streamed) through a gateway with stored keys, then every Logs API operation through the official
Cloudflare SDK. Token counts must equal the mock's, cost must equal the price table's figure for
those tokens, and each log names the stored key's alias and carries the request's metadata."""

from __future__ import annotations

from typing import Any

import anthropic
import cloudflare
import openai
import pytest

from sluice.logs.pricing import default_table
from sluice.testing.mock_upstream import (
    ANTHROPIC_INPUT_TOKENS,
    ANTHROPIC_OUTPUT_TOKENS,
    CHAT_TEXT,
    OPENAI_COMPLETION_TOKENS,
    OPENAI_PROMPT_TOKENS,
)
from tests.observe.test_end_to_end import wait_for_log
from tests.proxy.helpers import add_config, create_token, gateway_url

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"
MESSAGES = [{"role": "user", "content": "log me"}]
TOKENS = {"openai": (OPENAI_PROMPT_TOKENS, OPENAI_COMPLETION_TOKENS),
          "anthropic": (ANTHROPIC_INPUT_TOKENS, ANTHROPIC_OUTPUT_TOKENS)}
MODELS = {"openai": OPENAI_MODEL, "anthropic": ANTHROPIC_MODEL}
ALIASES = {"openai": "oai-team", "anthropic": "claude-team"}


def _meta(call: str) -> dict[str, str]:
    return {"cf-aig-metadata": f'{{"call":"{call}","team":"qa"}}'}


def _traffic(server, gateway: str, token: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """One call of each kind; returns call name -> cf-aig-log-id."""
    ids: dict[str, str] = {}
    oai = openai.OpenAI(base_url=gateway_url(server, gateway), api_key=token, max_retries=0)
    raw = oai.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=MESSAGES,
                                                        extra_headers=_meta("oai-sync"))
    assert raw.parse().choices[0].message.content == CHAT_TEXT
    assert raw.headers["cf-aig-byok-alias"] == ALIASES["openai"]
    ids["oai-sync"] = raw.headers["cf-aig-log-id"]
    raw = oai.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True},
        extra_headers=_meta("oai-stream"))
    chunks = list(raw.parse())
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == OPENAI_PROMPT_TOKENS
    ids["oai-stream"] = raw.headers["cf-aig-log-id"]
    oai.close()

    claude = anthropic.Anthropic(base_url=gateway_url(server, gateway, "anthropic"), api_key=token,
                                 max_retries=0)
    raw = claude.messages.with_raw_response.create(model=ANTHROPIC_MODEL, max_tokens=50, messages=MESSAGES,
                                                   extra_headers=_meta("ant-sync"))
    assert raw.parse().content[0].text == CHAT_TEXT
    ids["ant-sync"] = raw.headers["cf-aig-log-id"]
    raw = claude.messages.with_raw_response.create(model=ANTHROPIC_MODEL, max_tokens=50, messages=MESSAGES,
                                                   stream=True, extra_headers=_meta("ant-stream"))
    events = list(raw.parse())
    assert events[-1].type == "message_stop"
    ids["ant-stream"] = raw.headers["cf-aig-log-id"]
    claude.close()
    return ids


def _ids(logs: Any) -> set[str]:
    return {log.id for log in logs}


def test_sdk_traffic_is_logged_and_managed_with_the_cloudflare_sdk(  # type: ignore[no-untyped-def]
        cf, server, api, gateway) -> None:
    add_config(api, gateway, "openai", alias=ALIASES["openai"])
    add_config(api, gateway, "anthropic", alias=ALIASES["anthropic"])
    ids = _traffic(server, gateway, create_token(api))
    account = server.account_id

    # every response's cf-aig-log-id finds its log; numbers, cost, alias and metadata are right
    for call, log_id in ids.items():
        provider = "openai" if call.startswith("oai") else "anthropic"
        log = wait_for_log(cf, server, gateway, log_id)
        tokens_in, tokens_out = TOKENS[provider]
        price = default_table().price(provider, MODELS[provider])
        assert price is not None
        assert (log.id, log.provider, log.model, log.success, log.cached) == (
            log_id, provider, MODELS[provider], True, False), call
        assert (log.tokens_in, log.tokens_out) == (tokens_in, tokens_out), call
        assert log.cost == pytest.approx(price.cost(tokens_in, tokens_out)), call
        assert log.cost > 0
        assert log.request_type == ("stream" if call.endswith("stream") else "sync"), call
        assert getattr(log, "alias", None) == ALIASES[provider], call  # a Sluice field the SDK keeps
        assert log.metadata == f'{{"call":"{call}","team":"qa"}}', call

    # list with filters: by provider, by model, by a metadata value, by a number
    def listed(*filters: dict) -> set[str]:
        return _ids(cf.ai_gateway.logs.list(gateway, account_id=account, filters=list(filters)))

    assert listed() == set(ids.values())
    anthropic_ids, openai_ids = {ids["ant-sync"], ids["ant-stream"]}, {ids["oai-sync"], ids["oai-stream"]}
    assert listed({"key": "provider", "operator": "eq", "value": ["anthropic"]}) == anthropic_ids
    assert listed({"key": "model", "operator": "eq", "value": [OPENAI_MODEL]}) == openai_ids
    assert listed({"key": "metadata.value", "operator": "eq", "value": ["oai-stream"]}) == {ids["oai-stream"]}
    assert listed({"key": "provider", "operator": "eq", "value": ["openai"]},
                  {"key": "tokens_in", "operator": "gt", "value": [OPENAI_PROMPT_TOKENS + 1]}) == set()

    # stored request and response bodies
    request = cf.ai_gateway.logs.request(ids["ant-sync"], account_id=account, gateway_id=gateway)
    assert (request["model"], request["messages"]) == (ANTHROPIC_MODEL, MESSAGES)
    response = cf.ai_gateway.logs.response(ids["oai-sync"], account_id=account, gateway_id=gateway)
    assert response["choices"][0]["message"]["content"] == CHAT_TEXT
    streamed = cf.ai_gateway.logs.response(ids["oai-stream"], account_id=account, gateway_id=gateway)
    assert isinstance(streamed, str) and streamed.rstrip().endswith("data: [DONE]")

    # edit: feedback, score, metadata
    cf.ai_gateway.logs.edit(ids["oai-sync"], account_id=account, gateway_id=gateway, feedback=1, score=90,
                            metadata={"reviewed": True})
    edited = cf.ai_gateway.logs.get(ids["oai-sync"], account_id=account, gateway_id=gateway)
    assert edited.metadata == '{"reviewed":true}'
    assert (getattr(edited, "feedback", None), getattr(edited, "score", None)) == (1, 90)
    assert listed({"key": "feedback", "operator": "eq", "value": [1]}) == {ids["oai-sync"]}

    # delete with filters: only the matching logs go
    result = cf.ai_gateway.logs.delete(gateway, account_id=account,
                                       filters=[{"key": "provider", "operator": "eq", "value": ["openai"]}])
    assert result.success is True
    assert listed() == anthropic_ids
    with pytest.raises(cloudflare.NotFoundError):
        cf.ai_gateway.logs.get(ids["oai-stream"], account_id=account, gateway_id=gateway)
