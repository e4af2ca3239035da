"""``/compat/chat/completions`` with the official ``openai`` SDK: the same request to an OpenAI-format
provider (pass-through) and to anthropic and google-ai-studio (translated) gives OpenAI-shaped answers,
plain and streamed, with usage; each upstream receives its own native format with the stored key in
its own header; the request log records the provider and model actually called."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest

from sluice.testing.mock_upstream import (
    ANTHROPIC_INPUT_TOKENS,
    ANTHROPIC_OUTPUT_TOKENS,
    CHAT_TEXT,
    GOOGLE_CANDIDATES_TOKENS,
    GOOGLE_PROMPT_TOKENS,
    OPENAI_COMPLETION_TOKENS,
    OPENAI_PROMPT_TOKENS,
)
from tests.observe.test_end_to_end import wait_for_log
from tests.proxy.helpers import add_config, create_token, new_key, upstream_requests
from tests.support.server import MockUpstream, Server

OPENAI_USAGE = (OPENAI_PROMPT_TOKENS, OPENAI_COMPLETION_TOKENS)
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
# provider -> (upstream path, the header the stored key must arrive in, its value prefix, usage)
NATIVE = {
    "openai": ("/chat/completions", "authorization", "Bearer ", OPENAI_USAGE),
    "groq": ("/chat/completions", "authorization", "Bearer ", OPENAI_USAGE),
    "anthropic": ("/v1/messages", "x-api-key", "", (ANTHROPIC_INPUT_TOKENS, ANTHROPIC_OUTPUT_TOKENS)),
    "google-ai-studio": ("/v1beta/models/gemini-x:generateContent", "x-goog-api-key", "",
                         (GOOGLE_PROMPT_TOKENS, GOOGLE_CANDIDATES_TOKENS)),
}


def compat_client(server: Server, gateway: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1/{server.account_id}/{gateway}/compat", api_key=api_key,
                         max_retries=0)


def _model(provider: str) -> str:
    return f"{provider}/gemini-x" if provider == "google-ai-studio" else f"{provider}/model-x"


@pytest.mark.parametrize("provider", list(NATIVE))
def test_chat_answers_in_openai_format_and_upstream_gets_its_native_format(
        server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream, provider: str) -> None:
    stored = new_key(f"sk-{provider}")
    add_config(api, gateway, provider, secret=stored)
    token = create_token(api)
    client = compat_client(server, gateway, token)
    raw = client.chat.completions.with_raw_response.create(model=_model(provider), messages=MESSAGES,
                                                           max_tokens=50)
    answer = raw.parse()
    path, header, prefix, (prompt, completion) = NATIVE[provider]
    assert answer.choices[0].message.content == CHAT_TEXT
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (prompt, completion)

    (seen,) = upstream_requests(upstream)
    assert seen["path"].endswith(path) and seen["method"] == "POST"
    assert seen["headers"][header] == prefix + stored
    assert token not in str(seen)
    body = orjson.loads(seen["body"])
    if provider == "anthropic":
        assert body["system"] == "Be brief." and body["max_tokens"] == 50 and body["model"] == "model-x"
        assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
        assert seen["headers"]["anthropic-version"] == "2023-06-01"
    elif provider == "google-ai-studio":
        assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
        assert body["generationConfig"] == {"maxOutputTokens": 50}
    else:
        assert body == {"model": "model-x", "messages": MESSAGES, "max_tokens": 50}


@pytest.mark.parametrize("provider", list(NATIVE))
def test_streamed_chat_with_usage(server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream,
                                  provider: str) -> None:
    add_config(api, gateway, provider)
    client = compat_client(server, gateway, create_token(api))
    chunks = list(client.chat.completions.create(model=_model(provider), messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == CHAT_TEXT
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices
    assert (usage.prompt_tokens, usage.completion_tokens) == NATIVE[provider][3]
    (seen,) = upstream_requests(upstream)
    if provider == "google-ai-studio":
        assert seen["path"].endswith(":streamGenerateContent") and seen["query"] == "alt=sse"


def test_the_log_records_the_provider_and_model_called(cf: Any, server: Server, api: httpx.Client,
                                                       gateway: str, upstream: MockUpstream) -> None:
    add_config(api, gateway, "anthropic")
    client = compat_client(server, gateway, create_token(api))
    raw = client.chat.completions.with_raw_response.create(model="anthropic/claude-x", messages=MESSAGES)
    log = wait_for_log(cf, server, gateway, raw.headers["cf-aig-log-id"])
    assert (log.provider, log.model, log.path, log.status_code) == (
        "anthropic", "claude-x", "v1/messages", 200)
    assert (log.tokens_in, log.tokens_out) == (ANTHROPIC_INPUT_TOKENS, ANTHROPIC_OUTPUT_TOKENS)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("provider", ["anthropic", "google-ai-studio", "openai"])
def test_provider_error_comes_back_openai_shaped_with_its_status(
        server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream, provider: str,
        stream: bool) -> None:
    add_config(api, gateway, provider)
    client = openai.OpenAI(base_url=f"{server.url}/v1/{server.account_id}/{gateway}/compat",
                           api_key=create_token(api), max_retries=0,
                           default_headers={"x-mock-fault": "status:429"})
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=_model(provider), messages=MESSAGES, stream=stream)
    assert caught.value.status_code == 429
    assert "mock upstream fault" in caught.value.message


def test_untranslatable_request_is_a_400_naming_the_field(server: Server, api: httpx.Client, gateway: str,
                                                          upstream: MockUpstream) -> None:
    add_config(api, gateway, "anthropic")
    client = compat_client(server, gateway, create_token(api))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="anthropic/m", messages=MESSAGES, logprobs=True)
    assert caught.value.status_code == 400 and caught.value.param == "logprobs"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="no-slash", messages=MESSAGES)
    assert caught.value.param == "model"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="cohere/command", messages=MESSAGES)
    assert caught.value.param == "model" and "not served by /compat" in caught.value.message
    assert upstream_requests(upstream) == []


def test_malformed_bodies_and_paths_never_reach_a_provider(server: Server, api: httpx.Client, gateway: str,
                                                           upstream: MockUpstream) -> None:
    add_config(api, gateway, "anthropic")
    base = f"{server.url}/v1/{server.account_id}/{gateway}/compat"
    auth = {"authorization": f"Bearer {create_token(api)}"}
    for body in (b"{", b"[]", b'{"model": "anthropic/m", "messages": [{"role": "user", "content": 5}]}'):
        response = httpx.post(f"{base}/chat/completions", content=body, headers=auth, timeout=10)
        assert response.status_code == 400, response.text
        assert "error" in response.json() and response.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{base}/chat/completions", headers=auth, timeout=10).status_code == 405
    unserved = httpx.post(f"{base}/images/generations", json={}, headers=auth, timeout=10)
    assert unserved.status_code == 404 and "chat/completions, embeddings and models" in unserved.text
    assert upstream_requests(upstream) == []


def test_the_callers_own_key_moves_to_the_providers_header(server: Server, gateway: str,
                                                           upstream: MockUpstream) -> None:
    own = new_key("sk-ant-own")
    compat_client(server, gateway, own).chat.completions.create(model="anthropic/m", messages=MESSAGES)
    (seen,) = upstream_requests(upstream)
    assert seen["headers"]["x-api-key"] == own and "authorization" not in seen["headers"]




def test_cached_answers_stay_in_the_format_they_were_asked_in(server: Server, api: httpx.Client, gateway: str,
                                                              upstream: MockUpstream) -> None:
    """The cache keys on the caller's OpenAI body: include_usage (never sent upstream) changes the
    answer, so it changes the key; a hit is served already translated."""
    add_config(api, gateway, "anthropic")
    client = openai.OpenAI(base_url=f"{server.url}/v1/{server.account_id}/{gateway}/compat",
                           api_key=create_token(api), max_retries=0,
                           default_headers={"cf-aig-cache-ttl": "60"})
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="anthropic/m", messages=MESSAGES)
        assert raw.parse().choices[0].message.content == CHAT_TEXT
    assert raw.headers["cf-aig-cache-status"] == "HIT"
    with_usage = list(client.chat.completions.create(model="anthropic/m", messages=MESSAGES, stream=True,
                                                     stream_options={"include_usage": True}))
    without = list(client.chat.completions.create(model="anthropic/m", messages=MESSAGES, stream=True))
    assert with_usage[-1].usage is not None
    assert all(chunk.usage is None for chunk in without)
    assert len(upstream_requests(upstream)) == 3


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ASK = [{"role": "user", "content": "Weather in Paris?"}]


def _streamed_call(chunks: list[Any]) -> tuple[str, str, str, str | None]:
    """(id, name, arguments, finish_reason) assembled from tool-call deltas, as a client does."""
    call_id = name = arguments = ""
    finish = None
    for chunk in chunks:
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or ():
            assert delta.index == 0
            call_id += delta.id or ""
            name += (delta.function.name or "") if delta.function else ""
            arguments += (delta.function.arguments or "") if delta.function else ""
        finish = chunk.choices[0].finish_reason or finish
    return call_id, name, arguments, finish


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("provider", list(NATIVE))
def test_tool_call_round_trip(server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream,
                              provider: str, stream: bool) -> None:
    add_config(api, gateway, provider)
    client = compat_client(server, gateway, create_token(api))
    model = _model(provider)
    if stream:
        call_id, name, arguments, finish = _streamed_call(list(client.chat.completions.create(
            model=model, messages=ASK, tools=TOOLS, stream=True)))
    else:
        answer = client.chat.completions.create(model=model, messages=ASK, tools=TOOLS)
        (call,) = answer.choices[0].message.tool_calls
        call_id, name, arguments, finish = call.id, call.function.name, call.function.arguments, \
            answer.choices[0].finish_reason
    assert (name, orjson.loads(arguments), finish) == ("get_weather", {"city": "Paris"}, "tool_calls")
    assert call_id

    history = [*ASK, {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
               {"role": "tool", "tool_call_id": call_id, "content": '{"temp_c": 18}'}]
    final = client.chat.completions.create(model=model, messages=history, tools=TOOLS)
    assert final.choices[0].message.content == CHAT_TEXT and final.choices[0].finish_reason == "stop"

    first, second = (orjson.loads(r["body"]) for r in upstream_requests(upstream))
    if provider == "anthropic":
        assert first["tools"][0]["input_schema"] == TOOLS[0]["function"]["parameters"]
        assert second["messages"][1]["content"] == [
            {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {"city": "Paris"}}]
        assert second["messages"][2]["content"] == [
            {"type": "tool_result", "tool_use_id": call_id, "content": '{"temp_c": 18}'}]
    elif provider == "google-ai-studio":
        assert first["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
        assert second["contents"][1]["parts"] == [{"functionCall": {"name": "get_weather",
                                                                    "args": {"city": "Paris"}}}]
        assert second["contents"][2]["parts"] == [{"functionResponse": {"name": "get_weather",
                                                                        "response": {"temp_c": 18}}}]
    else:
        assert first["tools"] == TOOLS and second["messages"][2]["tool_call_id"] == call_id
