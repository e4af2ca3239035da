"""The mock upstream speaks real wire formats (official SDKs parse it), records requests, and misbehaves
on cue."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import anthropic
import httpx
import openai
import orjson
import pytest
import pytest_asyncio

from sluice.providers.usage import SSEUsage, Usage, usage_from_json
from sluice.testing import mock_upstream as m
from sluice.testing.mock_upstream import start_mock

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest_asyncio.fixture(scope="module")
async def mock():
    server = await start_mock()
    yield server
    await server.close()


@pytest.fixture(autouse=True)
def _clear(mock):
    mock.clear()


@pytest_asyncio.fixture
async def http():
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def make_oai(mock, prefix="/v1"):
    return openai.AsyncOpenAI(base_url=mock.base_url + prefix, api_key="sk-test", max_retries=0)


@pytest_asyncio.fixture
async def oai(mock):
    async with make_oai(mock) as client:
        yield client


@pytest_asyncio.fixture
async def claude(mock):
    async with anthropic.AsyncAnthropic(base_url=mock.base_url, api_key="sk-ant-test",
                                        max_retries=0) as client:
        yield client


def test_constants_are_consistent():
    assert "".join(m.CHAT_CHUNKS) == m.CHAT_TEXT and len(m.CHAT_CHUNKS) > 2
    assert (m.OPENAI_PROMPT_TOKENS, m.OPENAI_COMPLETION_TOKENS, m.OPENAI_TOTAL_TOKENS) == (11, 7, 18)
    assert (m.ANTHROPIC_INPUT_TOKENS, m.ANTHROPIC_OUTPUT_TOKENS) == (13, 9)


async def test_openai_chat(mock, oai):
    result = await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert result.choices[0].message.content == m.CHAT_TEXT
    assert result.model == "gpt-4o" and result.object == "chat.completion"
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 7, 18)
    [req] = mock.requests
    assert req["method"] == "POST" and req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == "Bearer sk-test"
    assert orjson.loads(req["body"])["messages"] == MESSAGES


@pytest.mark.parametrize("include_usage", [True, False])
async def test_openai_chat_stream(mock, oai, include_usage):
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, **extra)
    text, usages = "", []
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usages.append(chunk.usage)
    assert text == m.CHAT_TEXT
    if include_usage:
        assert [(u.prompt_tokens, u.completion_tokens) for u in usages] == [(11, 7)]
    else:
        assert usages == []


async def test_stream_usage_always_header(mock, http):
    r = await http.post(mock.base_url + "/openai/chat/completions", json={"model": "x", "stream": True},
                        headers={"x-mock-stream-usage": "always"})
    reader = SSEUsage("openai")
    reader.feed(r.content)
    assert reader.result() == Usage("x", 11, 7)
    assert r.text.rstrip().endswith("data: [DONE]")


async def test_openai_responses(mock, oai):
    client = oai
    result = await client.responses.create(model="gpt-4o", input="hi")
    assert result.output_text == m.CHAT_TEXT
    assert (result.usage.input_tokens, result.usage.output_tokens) == (11, 7)
    stream = await client.responses.create(model="gpt-4o", input="hi", stream=True)
    events = [event async for event in stream]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == m.CHAT_TEXT
    assert events[-1].type == "response.completed" and events[-1].response.usage.output_tokens == 7


async def test_openai_models_under_any_prefix(mock):
    async with make_oai(mock, "/v1/acct/gw/openai") as client:
        models = [model.id async for model in client.models.list()]
    assert models == list(m.MOCK_MODELS)
    assert mock.requests[0]["path"] == "/v1/acct/gw/openai/models"


async def test_anthropic_message(mock, claude):
    result = await claude.messages.create(model="claude-x", max_tokens=20, messages=MESSAGES)
    assert result.content[0].text == m.CHAT_TEXT and result.model == "claude-x"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (13, 9)
    [req] = mock.requests
    assert req["path"] == "/v1/messages"
    # anthropic SDK 2.x sends api_key as Authorization: Bearer (1.x used x-api-key)
    assert "sk-ant-test" in (req["headers"].get("x-api-key"), req["headers"].get("authorization", "")[7:])
    assert req["headers"]["anthropic-version"]


async def test_anthropic_stream(mock, claude):
    async with claude.messages.stream(model="claude-x", max_tokens=20, messages=MESSAGES) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == m.CHAT_TEXT and final.content[0].text == m.CHAT_TEXT
    assert (final.usage.input_tokens, final.usage.output_tokens) == (13, 9)
    raw = await claude.messages.create(model="claude-x", max_tokens=20, messages=MESSAGES, stream=True)
    kinds = [event.type async for event in raw]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]


async def test_anthropic_stream_matches_usage_reader(mock, http):
    r = await http.post(mock.base_url + "/v1/messages", json={"model": "c", "stream": True, "max_tokens": 5})
    assert r.headers["content-type"].startswith("text/event-stream")
    reader = SSEUsage("anthropic")
    for i in range(0, len(r.content), 7):
        reader.feed(r.content[i:i + 7])
    assert reader.result() == Usage("c", 13, 9)


async def test_google(mock, http):
    path = "/google-ai-studio/v1beta/models/gemini-2.0-flash"
    r = await http.post(mock.base_url + path + ":generateContent", json={"contents": []})
    body = r.json()
    assert body["candidates"][0]["content"]["parts"][0]["text"] == m.CHAT_TEXT
    assert usage_from_json("google", r.content) == Usage("gemini-2.0-flash", m.GOOGLE_PROMPT_TOKENS,
                                                         m.GOOGLE_CANDIDATES_TOKENS)
    r = await http.post(mock.base_url + path + ":streamGenerateContent?alt=sse", json={})
    assert r.headers["content-type"].startswith("text/event-stream")
    reader = SSEUsage("google")
    reader.feed(r.content)
    assert reader.result() == Usage("gemini-2.0-flash", 17, 5)
    r = await http.post(mock.base_url + path + ":streamGenerateContent", json={})
    chunks = r.json()
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == m.CHAT_TEXT
    assert usage_from_json("google", r.content) == Usage("gemini-2.0-flash", 17, 5)
    assert mock.requests[1]["query"] == "alt=sse"


async def test_echo_and_recording(mock, http):
    r = await http.put(mock.base_url + "/some/th%20ing?x=1&y=%20", content=b"\xff\x00raw",
                       headers={"X-Custom": "Yes"})
    assert r.json() == {"ok": True, "method": "PUT", "path": "/some/th%20ing", "query": "x=1&y=%20"}
    [req] = mock.requests
    assert req["headers"]["x-custom"] == "Yes"
    assert req["body"].encode("latin-1") == b"\xff\x00raw"
    listed = (await http.get(mock.base_url + m.CONTROL_PATH)).json()
    assert listed == [req]
    assert (await http.delete(mock.base_url + m.CONTROL_PATH)).json() == {"ok": True}
    assert mock.requests == []
    assert (await http.get(mock.base_url + m.CONTROL_PATH)).json() == []


@pytest.mark.parametrize("code", [400, 401, 429, 500, 503])
async def test_fault_status(mock, oai, code):
    with pytest.raises(openai.APIStatusError) as info:
        await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                extra_headers={"x-mock-fault": f"status:{code}"})
    assert info.value.status_code == code
    assert info.value.body["code"] == "mock_fault"


async def test_fault_status_for_anthropic(mock, claude):
    with pytest.raises(anthropic.APIStatusError) as info:
        await claude.messages.create(model="c", max_tokens=5, messages=MESSAGES,
                                           extra_headers={"x-mock-fault": "status:529"})
    assert info.value.status_code == 529


async def test_fault_slow(mock, http):
    started = time.monotonic()
    r = await http.post(mock.base_url + "/v1/chat/completions", json={}, headers={"x-mock-fault": "slow:300"})
    assert r.status_code == 200 and time.monotonic() - started >= 0.29


async def test_fault_hang(mock, http):
    with pytest.raises(httpx.ReadTimeout):
        await http.post(mock.base_url + "/v1/chat/completions", json={}, headers={"x-mock-fault": "hang"},
                        timeout=0.3)
    assert len(mock.requests) == 1  # it was received and recorded, just never answered


async def test_fault_hang_released_on_close(http):
    server = await start_mock()
    task = asyncio.create_task(http.post(server.base_url + "/x", headers={"x-mock-fault": "hang"},
                                         timeout=10))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await server.close()
    with pytest.raises(httpx.TransportError):
        await task
    assert time.monotonic() - started < 3


async def test_fault_drop_non_streaming(mock, http):
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(mock.base_url + "/v1/chat/completions", json={}, headers={"x-mock-fault": "drop"})


async def test_fault_drop_streaming(mock, http):
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        async with http.stream("POST", mock.base_url + "/v1/chat/completions", json={"stream": True},
                               headers={"x-mock-fault": "drop"}) as r:
            assert r.status_code == 200
            async for chunk in r.aiter_raw():
                received += chunk
    assert received.count(b"data: ") == m.DROP_AFTER_EVENTS


async def test_fault_drop_with_sdk(mock, oai):
    stream = await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                                     extra_headers={"x-mock-fault": "drop"})
    with pytest.raises(openai.APIConnectionError):  # the connection drops mid-stream
        async for _ in stream:
            pass


async def test_fault_stream_slow(mock, http):
    gaps, last = [], None
    async with http.stream("POST", mock.base_url + "/v1/messages", json={"stream": True},
                           headers={"x-mock-fault": "stream-slow:60"}) as r:
        async for _ in r.aiter_raw():
            now = time.monotonic()
            if last is not None:
                gaps.append(now - last)
            last = now
    assert len(gaps) >= 5 and min(gaps) >= 0.04


async def test_faults_combine(mock, http):
    started = time.monotonic()
    r = await http.post(mock.base_url + "/v1/chat/completions", json={},
                        headers={"x-mock-fault": "slow:100, status:502"})
    assert r.status_code == 502 and time.monotonic() - started >= 0.09


def test_command_line_prints_ready_and_serves():
    command = [sys.executable, "-m", "sluice.testing.mock_upstream", "--host", "127.0.0.1", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline().split()
            assert line[0] == "READY" and int(line[1]) > 0
            r = httpx.get(f"http://127.0.0.1:{line[1]}/v1/models", timeout=5)
            assert r.json()["object"] == "list"
        finally:
            proc.terminate()
            assert proc.wait(timeout=10) == 0
