"""Usage extraction from JSON bodies and SSE streams, for every usage format."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.providers.usage import SSEUsage, Usage, model_from_request, usage_from_json

FORMATS = ("openai", "anthropic", "google", "cohere", "none", "bogus")


def sse(*events: dict | str, event_names: bool = False, eol: str = "\n") -> bytes:
    out = []
    for item in events:
        payload = item if isinstance(item, str) else orjson.dumps(item).decode()
        named = event_names and payload[0] == "{"
        name = f"event: {orjson.loads(payload).get('type', 'x')}{eol}" if named else ""
        out.append(f"{name}data: {payload}{eol}{eol}")
    return "".join(out).encode()


JSON_CASES = [
    ("openai",
     {"model": "gpt-4o", "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}},
     Usage("gpt-4o", 11, 7)),
    ("openai", {"object": "response", "model": "gpt-4o", "usage": {"input_tokens": 5, "output_tokens": 3}},
     Usage("gpt-4o", 5, 3)),
    ("openai", {"result": {"response": "hi", "usage": {"prompt_tokens": 4, "completion_tokens": 2}}},
     Usage(None, 4, 2)),
    ("openai", {"model": "m", "usage": None}, Usage("m", None, None)),
    ("anthropic", {"type": "message", "model": "claude", "usage": {"input_tokens": 13, "output_tokens": 9}},
     Usage("claude", 13, 9)),
    ("google",
     {"usageMetadata": {"promptTokenCount": 17, "candidatesTokenCount": 5}, "modelVersion": "gemini"},
     Usage("gemini", 17, 5)),
    ("google",
     {"usageMetadata": {"promptTokenCount": 17, "candidatesTokenCount": 5, "thoughtsTokenCount": 10}},
     Usage(None, 17, 15)),
    ("google", [{"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1}, "modelVersion": "g"},
                {"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4}}], Usage("g", 3, 4)),
    ("cohere", {"meta": {"billed_units": {"input_tokens": 21, "output_tokens": 8}}}, Usage(None, 21, 8)),
    ("cohere", {"usage": {"billed_units": {"input_tokens": 6, "output_tokens": 2},
                          "tokens": {"input_tokens": 60, "output_tokens": 2}}}, Usage(None, 6, 2)),
    ("cohere", {"usage": {"tokens": {"input_tokens": 60, "output_tokens": 3}}}, Usage(None, 60, 3)),
    ("none", {"model": "x", "usage": {"prompt_tokens": 1}}, Usage(None, None, None)),
    ("openai", {"usage": {"prompt_tokens": -1, "completion_tokens": True}}, Usage(None, None, None)),
    ("openai", {"usage": {"prompt_tokens": 2.0, "completion_tokens": "3"}}, Usage(None, 2, None)),
]

OPENAI_STREAM = sse(
    {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o",
     "choices": [{"delta": {"content": "Hi"}}],
     "usage": None},
    {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": [{"delta": {}}],
     "usage": None},
    {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": [],
     "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}},
    "[DONE]",
)
RESPONSES_STREAM = sse(
    {"type": "response.created", "response": {"model": "gpt-4o", "usage": None}},
    {"type": "response.output_text.delta", "delta": "usage"},
    {"type": "response.completed",
     "response": {"model": "gpt-4o", "usage": {"input_tokens": 11, "output_tokens": 7}}},
    event_names=True,
)
ANTHROPIC_STREAM = sse(
    {"type": "message_start", "message": {"id": "m", "model": "claude-3", "content": [],
                                          "usage": {"input_tokens": 13, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0,
     "delta": {"type": "text_delta", "text": "usage \"usage\": {"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}},
    {"type": "message_stop"},
    event_names=True,
)
GOOGLE_STREAM = sse(
    {"candidates": [{"content": {"parts": [{"text": "a"}]}}], "modelVersion": "gemini-2.0",
     "usageMetadata": {"promptTokenCount": 17, "candidatesTokenCount": 1}},
    {"candidates": [{"content": {"parts": [{"text": "b"}]}}], "modelVersion": "gemini-2.0",
     "usageMetadata": {"promptTokenCount": 17, "candidatesTokenCount": 5}},
    eol="\r\n",
)
COHERE_V2_STREAM = (
    b"event: message-start\ndata: {\"type\":\"message-start\",\"id\":\"x\"}\n\n"
    b"event: content-delta\ndata: {\"type\":\"content-delta\","
    b"\"delta\":{\"message\":{\"content\":{\"text\":\"hi\"}}}}\n\n"
    b"event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\","
    b"\"usage\":{\"billed_units\":{\"input_tokens\":6,\"output_tokens\":2},\"tokens\":{\"input_tokens\":70,"
    b"\"output_tokens\":2}}}}\n\n"
)
COHERE_V1_NDJSON = (
    b'{"is_finished":false,"event_type":"stream-start","generation_id":"g"}\n'
    b'{"is_finished":false,"event_type":"text-generation","text":"hi"}\n'
    b'{"is_finished":true,"event_type":"stream-end","response":{"text":"hi","meta":{"billed_units":'
    b'{"input_tokens":21,"output_tokens":8}}},"finish_reason":"COMPLETE"}\n'
)

STREAM_CASES = [
    ("openai", OPENAI_STREAM, Usage("gpt-4o", 11, 7)),
    ("openai", RESPONSES_STREAM, Usage("gpt-4o", 11, 7)),
    ("anthropic", ANTHROPIC_STREAM, Usage("claude-3", 13, 9)),
    ("google", GOOGLE_STREAM, Usage("gemini-2.0", 17, 5)),
    ("cohere", COHERE_V2_STREAM, Usage(None, 6, 2)),
    ("cohere", COHERE_V1_NDJSON, Usage(None, 21, 8)),
    ("none", OPENAI_STREAM, Usage(None, None, None)),
    ("openai", b": keep-alive\n\nevent: ping\ndata: {}\n\n", Usage(None, None, None)),
]


@pytest.mark.parametrize(("fmt", "body", "expected"), JSON_CASES)
def test_usage_from_json(fmt, body, expected):
    assert usage_from_json(fmt, orjson.dumps(body)) == expected


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "junk", [b"", b"not json", b"{", b"[1, 2, null]", b"null", b"42", b'"usage"', b"\xff\xfe\x00",
             b'{"usage": [1]}', b'{"usageMetadata": "x", "meta": 3, "response": []}', b"{}" * 1000]
)
def test_junk_never_raises(fmt, junk):
    assert usage_from_json(fmt, junk) == Usage(None, None, None)
    reader = SSEUsage(fmt)
    reader.feed(junk)
    reader.feed(b"\ndata: " + junk + b"\n\n")
    assert isinstance(reader.result(), Usage)


def feed_all(fmt: str, chunks) -> Usage:
    reader = SSEUsage(fmt)
    for chunk in chunks:
        reader.feed(chunk)
    return reader.result()


@pytest.mark.parametrize(("fmt", "stream", "expected"), STREAM_CASES)
def test_sse_whole_and_bytewise(fmt, stream, expected):
    assert feed_all(fmt, [stream]) == expected
    assert feed_all(fmt, [stream[i:i + 1] for i in range(len(stream))]) == expected


@pytest.mark.parametrize(("fmt", "stream", "expected"), STREAM_CASES[:5])
def test_sse_split_at_every_position(fmt, stream, expected):
    for cut in range(len(stream) + 1):
        assert feed_all(fmt, [stream[:cut], stream[cut:]]) == expected, cut


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_sse_random_chunking(data):
    fmt, stream, expected = data.draw(st.sampled_from(STREAM_CASES))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert feed_all(fmt, pieces) == expected


@settings(max_examples=300, deadline=None)
@given(fmt=st.sampled_from(FORMATS), chunks=st.lists(st.binary(max_size=64), max_size=8))
def test_sse_junk_never_raises(fmt, chunks):
    assert isinstance(feed_all(fmt, chunks), Usage)


def test_sse_last_line_without_newline_and_result_idempotent():
    stream = OPENAI_STREAM.rstrip(b"\n").rsplit(b"\n\n", 1)[0]  # ends with the usage line, no newline
    reader = SSEUsage("openai")
    reader.feed(stream)
    assert reader.result() == Usage("gpt-4o", 11, 7)
    assert reader.result() == Usage("gpt-4o", 11, 7)


def test_json_body_fed_as_stream():
    body = orjson.dumps({"model": "claude", "usage": {"input_tokens": 1, "output_tokens": 2}})
    assert feed_all("anthropic", [b"  ", body[:5], body[5:]]) == Usage("claude", 1, 2)
    array = orjson.dumps([{"usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 3}}])
    assert feed_all("google", [array[:7], array[7:]]) == Usage(None, 2, 3)


def test_memoryview_and_bytearray_chunks():
    pieces = [memoryview(OPENAI_STREAM[:50]), bytearray(OPENAI_STREAM[50:])]
    assert feed_all("openai", pieces) == Usage("gpt-4o", 11, 7)


def test_overlong_line_is_skipped_not_buffered():
    from sluice.providers import usage as module

    reader = SSEUsage("openai")
    reader.feed(b"data: " + b"x" * (module.MAX_LINE + 10))
    assert len(reader._buf) == 0
    reader.feed(b"still the same line\n" + OPENAI_STREAM)
    assert reader.result() == Usage("gpt-4o", 11, 7)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"model": "gpt-4o", "messages": []}', "gpt-4o"),
        (b'{"messages": []}', None),
        (b'{"model": 5}', None),
        (b'{"model": ""}', None),
        (b'["model"]', None),
        (b'{"model": "x"', None),
        (b"", None),
        (b"\xff\xfe", None),
        (orjson.dumps({"model": "m" * 300}), None),
    ],
)
def test_model_from_request(body, expected):
    assert model_from_request(body) == expected


@pytest.mark.parametrize(("fmt", "stream", "expected"), STREAM_CASES)
def test_sse_with_crlf_line_ends(fmt, stream, expected):
    crlf = stream.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert feed_all(fmt, [crlf]) == expected
    assert feed_all(fmt, [crlf[i:i + 7] for i in range(0, len(crlf), 7)]) == expected


def test_two_usage_markers_on_one_line_are_read_once_and_later_lines_still_count():
    first = b'data: {"model":"m","usage":{"prompt_tokens":1,"completion_tokens":1},"x":{"usage":{}}}\n\n'
    last = b'data: {"model":"m","usage":{"prompt_tokens":5,"completion_tokens":6}}\n\ndata: [DONE]\n\n'
    assert feed_all("openai", [first + last]) == Usage("m", 5, 6)


def test_every_gate_has_the_literals_its_matches_start_with():
    from sluice.providers import usage as module

    assert set(module._NEEDLES) == set(module._GATES)
    for fmt, gate in module._GATES.items():
        for case_fmt, stream, _ in STREAM_CASES:
            for match in gate.finditer(stream) if case_fmt == fmt else ():
                assert any(stream.startswith(n, match.start()) for n in module._NEEDLES[fmt])
