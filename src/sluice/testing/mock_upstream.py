"""A mock LLM provider that speaks the real wire formats and records every request it receives.

Why: gateway tests and benchmarks need an upstream that official SDKs can parse, whose usage
numbers are known, and that can misbehave on demand (hang, slow, drop, error) — without network.
Routes match on the path *suffix*, so one mock can stand in for every provider at once.

Faults come from the request header ``x-mock-fault`` (so they can be sent through the gateway),
comma-separated: ``hang``, ``slow:<ms>``, ``drop``, ``status:<code>``, ``stream-slow:<ms>``,
``echo-key[:gzip|deflate|zstd|br|chunked|header|big]`` (a 401 quoting the auth header it was sent,
as OpenAI does: ``Incorrect API key provided: Bearer …``; the argument picks how it is sent),
``key-status:<marker>=<code>[/<retry-after>][;…]`` (an error answer, quoting the key, only when the
auth header it was sent contains ``<marker>``: how a provider refuses one key of a pool; ``<code>``
``quota`` is OpenAI's 429 ``insufficient_quota``), ``key-in-stream`` (a streamed 200 whose last text
piece quotes the auth header it was sent: a provider answering with the key in an SSE event),
``key-in-answer[:gzip|deflate|zstd|br][!]`` (a 200 chat completion quoting the auth header, compressed
when accept-encoding allows it, or with ``!`` always).
A fault can also ride in the JSON body's model name, after ``mock-fault=`` (e.g. model
``mock-fault=status:500``): a fault per model, for dynamic routes whose models share the headers.

OpenAI chat streams end with a usage chunk only when ``stream_options.include_usage`` is true,
exactly like OpenAI; the header ``x-mock-stream-usage: always`` forces it.

Tools: a chat request (OpenAI, Anthropic or Gemini format) that offers tools and whose last turn is
not a tool result is answered with a call of its first tool with ``MOCK_TOOL_ARGS``, in that
provider's format, plain or streamed; once the tool result comes back, the usual text answer.

Run: ``python -m sluice.testing.mock_upstream --host 127.0.0.1 --port 0`` (prints ``READY <port>``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import itertools
import re
import signal
import struct
import time
import zlib
from typing import Any

import orjson
import zstandard
from aiohttp import web

CHAT_CHUNKS: tuple[str, ...] = ("Hello", " from the", " Sluice", " mock upstream", ".")
CHAT_TEXT = "".join(CHAT_CHUNKS)  # "Hello from the Sluice mock upstream."
DEFAULT_MODEL = "mock-model"
OPENAI_PROMPT_TOKENS = 11
OPENAI_COMPLETION_TOKENS = 7
OPENAI_TOTAL_TOKENS = OPENAI_PROMPT_TOKENS + OPENAI_COMPLETION_TOKENS  # 18
ANTHROPIC_INPUT_TOKENS = 13
ANTHROPIC_OUTPUT_TOKENS = 9
GOOGLE_PROMPT_TOKENS = 17
GOOGLE_CANDIDATES_TOKENS = 5
DROP_AFTER_EVENTS = 2  # "drop" sends this many SSE events, then aborts the connection
MOCK_MODELS = ("mock-model", "gpt-4o-mini", "gpt-4o")
MOCK_TOOL_ARGS = {"city": "Paris"}
EMBEDDING_TOKENS_PER_INPUT = 3  # OpenAI-format embeddings usage: this many prompt tokens per input
MOCK_TOOL_CALL_ID = "call_mock_1"
CONTROL_PATH = "/__mock__/requests"
ECHOED_AUTH = ("authorization", "x-api-key", "api-key", "x-goog-api-key")


def _encoded(body: bytes, coding: str) -> bytes:
    """``body`` in content coding ``coding`` (gzip, deflate, zstd; anything else a brotli-like framing
    that Sluice has no decoder for)."""
    if coding == "gzip":
        return gzip.compress(body)
    if coding == "deflate":
        return zlib.compress(body)
    if coding == "zstd":
        return zstandard.ZstdCompressor().compress(body)
    return b"\x8b\x02\x80" + body + b"\x03"
_GOOGLE_MODEL = re.compile(r"models/([^/:]+):")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def _sse(data: Any, event: str | None = None, eol: str = "\n") -> bytes:
    head = f"event: {event}{eol}" if event else ""
    payload = data if isinstance(data, str) else orjson.dumps(data).decode()
    return f"{head}data: {payload}{eol}{eol}".encode()


def _faults(header: str) -> dict[str, str]:
    faults = {}
    for item in header.split(","):
        name, _, arg = item.strip().partition(":")
        if name:
            faults[name.lower()] = arg.strip()
    return faults


def _pieces(request: web.Request, faults: dict[str, str]) -> tuple[str, ...]:
    """The streamed answer's text pieces; with ``key-in-stream`` the last one quotes the key sent."""
    if "key-in-stream" not in faults:
        return CHAT_CHUNKS
    sent = next((request.headers[name] for name in ECHOED_AUTH if name in request.headers), "")
    return (*CHAT_CHUNKS, f" Your key is {sent}.")


def _model_fault(body: bytes) -> str:
    if b"mock-fault=" not in body:
        return ""
    try:
        model = orjson.loads(body).get("model", "")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return model.partition("mock-fault=")[2] if isinstance(model, str) else ""


def _ms(value: str) -> float:
    try:
        return max(0.0, float(value)) / 1000
    except ValueError:
        return 0.0


class MockUpstream:
    """A running mock; ``requests`` is the live list of recorded requests (oldest first)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def clear(self) -> None:
        self.requests.clear()

    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, port).start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        self._closing.set()  # wakes "hang" handlers
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- dispatch ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == CONTROL_PATH:
            if request.method == "DELETE":
                self.clear()
                return _json({"ok": True})
            return _json(self.requests)
        body = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.rel_url.raw_path,  # as sent (still percent-encoded)
                "query": request.rel_url.raw_query_string,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body.decode("latin-1"),
            }
        )
        faults = _faults(request.headers.get("x-mock-fault", "") + "," + _model_fault(body))
        if "hang" in faults:
            return await self._hang(request)
        if "slow" in faults:
            await asyncio.sleep(_ms(faults["slow"]))
        if "status" in faults:
            return self._error(faults["status"])
        if "echo-key" in faults:
            return await self._echo_key(request, faults["echo-key"])
        if "key-in-answer" in faults:
            return self._key_in_answer(request, faults["key-in-answer"])
        if "key-status" in faults:
            refusal = self._key_status(request, faults["key-status"])
            if refusal is not None:
                return refusal
        try:
            data = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            data = {}
        data = data if isinstance(data, dict) else {}
        stream = data.get("stream") is True
        if "drop" in faults and not stream and not request.path.endswith(":streamGenerateContent"):
            return self._abort(request)
        path, method = request.path, request.method
        if method == "POST" and path.endswith("/chat/completions"):
            return await self._chat(request, data, stream, faults)
        if method == "POST" and path.endswith("/responses"):
            return await self._responses(request, data, stream, faults)
        if method == "POST" and path.endswith("/v1/messages"):
            return await self._messages(request, data, stream, faults)
        if method == "POST" and path.endswith(":generateContent"):
            return _json(self._google_body(path, CHAT_TEXT, done=True, tool=_google_tool(data)))
        if method == "POST" and path.endswith(":streamGenerateContent"):
            return await self._google_stream(request, faults, _google_tool(data))
        if method == "POST" and path.endswith("/embeddings"):
            return _json(_openai_embeddings(data))
        if method == "POST" and path.endswith(":batchEmbedContents"):
            return _json(_google_embeddings(data))
        if method == "GET" and path.endswith("/models"):
            return self._models()
        url = request.rel_url
        return _json({"ok": True, "method": method, "path": url.raw_path, "query": url.raw_query_string})

    # -- faults -----------------------------------------------------------------------------

    async def _hang(self, request: web.Request) -> web.StreamResponse:
        """Accept and never answer; ends when the client goes away or the mock closes."""
        while not self._closing.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            try:
                await asyncio.wait_for(self._closing.wait(), 0.2)
            except TimeoutError:
                pass
        return self._abort(request)

    @staticmethod
    def _abort(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=499)  # never reaches anyone: the connection is gone

    @staticmethod
    def _error(code: str) -> web.Response:
        status = int(code) if code.isdigit() and 400 <= int(code) <= 599 else 500
        error = {
            "message": f"mock upstream fault: status {status}",
            "type": "server_error" if status >= 500 else "invalid_request_error",
            "param": None,
            "code": "mock_fault",
        }
        return _json({"error": error}, status)

    @staticmethod
    def _key_status(request: web.Request, rules: str) -> web.Response | None:
        sent = next((request.headers[name] for name in ECHOED_AUTH if name in request.headers), "")
        for rule in rules.split(";"):
            marker, _, answer = rule.partition("=")
            if not marker or marker not in sent:
                continue
            code, _, retry_after = answer.partition("/")
            status = 429 if code == "quota" else int(code) if code.isdigit() else 500
            too_many = "insufficient_quota" if code == "quota" else "rate_limit_exceeded"
            kind = {401: "invalid_api_key", 402: "payment_required", 403: "forbidden",
                    429: too_many}.get(status, "error")
            body = {"error": {"message": f"mock key refused ({kind}) for {sent}", "type": kind, "param": None,
                              "code": kind}}
            response = _json(body, status)
            if retry_after:
                response.headers["retry-after"] = retry_after
            return response
        return None

    @staticmethod
    async def _echo_key(request: web.Request, how: str) -> web.StreamResponse:
        sent = next((request.headers[name] for name in ECHOED_AUTH if name in request.headers), "")
        message = f"Incorrect API key provided: {sent}. You can find your API key at the dashboard."
        body = orjson.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                       "code": "invalid_api_key"}})
        headers = {"content-type": "application/json"}
        if how == "big":
            body = body[:-1] + b',"padding":"' + b"x" * (2 * 1024 * 1024) + b'"}'
        if how == "header":
            headers["www-authenticate"] = f'Bearer error="invalid_token", error_description="{sent}"'
        if how in ("gzip", "deflate", "zstd", "br"):
            headers["content-encoding"] = how
            body = _encoded(body, how)
        if how == "chunked":
            response = web.StreamResponse(status=401, headers=headers)
            await response.prepare(request)
            middle = len(body) // 2
            await response.write(body[:middle])
            await response.write(body[middle:])
            await response.write_eof()
            return response
        return web.Response(status=401, body=body, headers=headers)

    @staticmethod
    def _key_in_answer(request: web.Request, how: str) -> web.Response:
        """A 200 chat completion quoting the auth header it was sent, compressed with ``how`` when the
        request's accept-encoding allows it, as a server does; ``how!`` compresses it regardless (a
        provider that ignores accept-encoding)."""
        sent = next((request.headers[name] for name in ECHOED_AUTH if name in request.headers), "")
        body = orjson.dumps({"id": "chatcmpl-mock-key", "object": "chat.completion", "created": 0,
                             "model": "gpt-4o-mini",
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": f"You sent {sent}."}}],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
        coding, forced = how.rstrip("!"), how.endswith("!")
        headers = {"content-type": "application/json"}
        if coding and (forced or coding in request.headers.get("accept-encoding", "")):
            headers["content-encoding"] = coding
            body = _encoded(body, coding)
        return web.Response(status=200, body=body, headers=headers)

    async def _stream(
        self, request: web.Request, events: list[bytes], faults: dict[str, str], content_type: str
    ) -> web.StreamResponse:
        """Send events one write each; honours drop and stream-slow."""
        response = web.StreamResponse(headers={"content-type": content_type, "cache-control": "no-cache"})
        await response.prepare(request)
        pause = _ms(faults.get("stream-slow", "0"))
        try:
            for index, event in enumerate(events):
                if "drop" in faults and index == DROP_AFTER_EVENTS:
                    await asyncio.sleep(0.05)  # let the sent events leave before the reset
                    return self._abort(request)
                if index and pause:
                    await asyncio.sleep(pause)
                await response.write(event)
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away
        return response

    # -- OpenAI -----------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    async def _chat(self, request, data, stream, faults) -> web.StreamResponse:
        model = data.get("model") if isinstance(data.get("model"), str) else DEFAULT_MODEL
        base = {"id": self._id("chatcmpl-mock"), "created": int(time.time()), "model": model,
                "system_fingerprint": "fp_mock"}
        usage = {"prompt_tokens": OPENAI_PROMPT_TOKENS, "completion_tokens": OPENAI_COMPLETION_TOKENS,
                 "total_tokens": OPENAI_TOTAL_TOKENS}
        tool = _openai_tool(data)
        arguments = orjson.dumps(MOCK_TOOL_ARGS).decode()
        call: dict[str, Any] = {"id": MOCK_TOOL_CALL_ID, "type": "function",
                                "function": {"name": tool, "arguments": arguments}}
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": None if tool else CHAT_TEXT,
                                       "refusal": None}
            if tool:
                message["tool_calls"] = [call]
            choice = {"index": 0, "message": message, "logprobs": None,
                      "finish_reason": "tool_calls" if tool else "stop"}
            return _json({**base, "object": "chat.completion", "choices": [choice], "usage": usage})
        options = data.get("stream_options")
        with_usage = (isinstance(options, dict) and options.get("include_usage") is True) or (
            request.headers.get("x-mock-stream-usage", "").lower() == "always"
        )

        def chunk(delta: dict, finish: str | None = None, **extra: Any) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            body = {**base, "object": "chat.completion.chunk", "choices": [choice], **extra}
            if with_usage:
                body.setdefault("usage", None)
            return _sse(body)

        events = [chunk({"role": "assistant", "content": ""})]
        if tool:
            opening = {"index": 0, **call, "function": {"name": tool, "arguments": ""}}
            events.append(chunk({"tool_calls": [opening]}))
            events += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
                       for part in (arguments[:5], arguments[5:])]
            events.append(chunk({}, "tool_calls"))
        else:
            events += [chunk({"content": piece}) for piece in _pieces(request, faults)]
            events.append(chunk({}, "stop"))
        if with_usage:
            events.append(_sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
        events.append(_sse("[DONE]"))
        return await self._stream(request, events, faults, "text/event-stream")

    async def _responses(self, request, data, stream, faults) -> web.StreamResponse:
        model = data.get("model") if isinstance(data.get("model"), str) else DEFAULT_MODEL
        rid, mid = self._id("resp_mock"), self._id("msg_mock")
        part = {"type": "output_text", "text": CHAT_TEXT, "annotations": []}
        item = {"type": "message", "id": mid, "status": "completed", "role": "assistant", "content": [part]}
        usage = {"input_tokens": OPENAI_PROMPT_TOKENS, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": OPENAI_COMPLETION_TOKENS, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": OPENAI_TOTAL_TOKENS}
        done = {
            "id": rid, "object": "response", "created_at": int(time.time()), "status": "completed",
            "error": None, "incomplete_details": None, "instructions": None, "max_output_tokens": None,
            "model": model, "output": [item], "parallel_tool_calls": True, "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None}, "store": True, "temperature": 1.0,
            "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
            "truncation": "disabled", "usage": usage, "user": None, "metadata": {},
        }
        if not stream:
            return _json(done)
        started = {**done, "status": "in_progress", "output": [], "usage": None}
        where = {"item_id": mid, "output_index": 0, "content_index": 0}
        steps: list[tuple[str, dict]] = [
            ("response.created", {"response": started}),
            ("response.in_progress", {"response": started}),
            ("response.output_item.added",
             {"output_index": 0, "item": {**item, "status": "in_progress", "content": []}}),
            ("response.content_part.added", {**where, "part": {**part, "text": ""}}),
            *[("response.output_text.delta", {**where, "delta": piece, "logprobs": []})
              for piece in CHAT_CHUNKS],
            ("response.output_text.done", {**where, "text": CHAT_TEXT, "logprobs": []}),
            ("response.content_part.done", {**where, "part": part}),
            ("response.output_item.done", {"output_index": 0, "item": item}),
            ("response.completed", {"response": done}),
        ]
        events = [_sse({"type": kind, "sequence_number": n, **body}, kind)
                  for n, (kind, body) in enumerate(steps)]
        return await self._stream(request, events, faults, "text/event-stream")

    @staticmethod
    def _models() -> web.Response:
        data = [{"id": model, "object": "model", "created": 1700000000, "owned_by": "sluice-mock"}
                for model in MOCK_MODELS]
        return _json({"object": "list", "data": data, "has_more": False,
                      "first_id": MOCK_MODELS[0], "last_id": MOCK_MODELS[-1]})

    # -- Anthropic --------------------------------------------------------------------------

    async def _messages(self, request, data, stream, faults) -> web.StreamResponse:
        model = data.get("model") if isinstance(data.get("model"), str) else DEFAULT_MODEL
        tool = _anthropic_tool(data)
        if tool:
            return await self._messages_tool(request, data, stream, faults, model, tool)
        message = {"id": self._id("msg_mock"), "type": "message", "role": "assistant", "model": model,
                   "content": [{"type": "text", "text": CHAT_TEXT}], "stop_reason": "end_turn",
                   "stop_sequence": None,
                   "usage": {"input_tokens": ANTHROPIC_INPUT_TOKENS, "output_tokens": ANTHROPIC_OUTPUT_TOKENS,
                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
        if not stream:
            return _json(message)
        start = {**message, "content": [], "stop_reason": None,
                 "usage": {"input_tokens": ANTHROPIC_INPUT_TOKENS, "output_tokens": 1,
                           "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
        steps: list[tuple[str, dict]] = [
            ("message_start", {"message": start}),
            ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
            ("ping", {}),
            *[("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
              for piece in _pieces(request, faults)],
            ("content_block_stop", {"index": 0}),
            ("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": ANTHROPIC_OUTPUT_TOKENS}}),
            ("message_stop", {}),
        ]
        events = [_sse({"type": kind, **body}, kind) for kind, body in steps]
        return await self._stream(request, events, faults, "text/event-stream")

    async def _messages_tool(self, request, data, stream, faults, model: str,
                             tool: str) -> web.StreamResponse:
        block = {"type": "tool_use", "id": "toolu_mock_1", "name": tool, "input": MOCK_TOOL_ARGS}
        usage = {"input_tokens": ANTHROPIC_INPUT_TOKENS, "output_tokens": ANTHROPIC_OUTPUT_TOKENS}
        message = {"id": self._id("msg_mock"), "type": "message", "role": "assistant", "model": model,
                   "content": [block], "stop_reason": "tool_use", "stop_sequence": None, "usage": usage}
        if not stream:
            return _json(message)
        arguments = orjson.dumps(MOCK_TOOL_ARGS).decode()
        steps: list[tuple[str, dict]] = [
            ("message_start", {"message": {**message, "content": [], "stop_reason": None, "usage": {
                "input_tokens": ANTHROPIC_INPUT_TOKENS, "output_tokens": 1}}}),
            ("content_block_start", {"index": 0, "content_block": {**block, "input": {}}}),
            *[("content_block_delta",
               {"index": 0, "delta": {"type": "input_json_delta", "partial_json": part}})
              for part in (arguments[:5], arguments[5:])],
            ("content_block_stop", {"index": 0}),
            ("message_delta", {"delta": {"stop_reason": "tool_use", "stop_sequence": None},
                               "usage": {"output_tokens": ANTHROPIC_OUTPUT_TOKENS}}),
            ("message_stop", {}),
        ]
        return await self._stream(request, [_sse({"type": k, **b}, k) for k, b in steps], faults,
                                  "text/event-stream")

    # -- Google -----------------------------------------------------------------------------

    def _google_body(
        self, path: str, text: str, done: bool, produced: int = GOOGLE_CANDIDATES_TOKENS, tool: str = ""
    ) -> dict:
        match = _GOOGLE_MODEL.search(path)
        part = {"functionCall": {"name": tool, "args": MOCK_TOOL_ARGS}} if tool else {"text": text}
        candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}, "index": 0}
        if done:
            candidate["finishReason"] = "STOP"
        usage = {"promptTokenCount": GOOGLE_PROMPT_TOKENS, "candidatesTokenCount": produced,
                 "totalTokenCount": GOOGLE_PROMPT_TOKENS + produced}
        return {"candidates": [candidate], "usageMetadata": usage,
                "modelVersion": match.group(1) if match else DEFAULT_MODEL,
                "responseId": self._id("mockresp")}

    async def _google_stream(self, request, faults, tool: str = "") -> web.StreamResponse:
        # Each chunk carries cumulative usageMetadata, the last one the final counts (like Gemini).
        last = len(CHAT_CHUNKS) - 1
        bodies = [
            self._google_body(request.path, piece, i == last,
                              GOOGLE_CANDIDATES_TOKENS if i == last else i + 1)
            for i, piece in enumerate(CHAT_CHUNKS)
        ]
        if tool:  # Gemini sends a function call whole, in one chunk
            bodies = [self._google_body(request.path, "", True, tool=tool)]
        if request.query.get("alt") == "sse":
            events = [_sse(body, eol="\r\n") for body in bodies]
            return await self._stream(request, events, faults, "text/event-stream")
        parts = [orjson.dumps(body) for body in bodies]
        events = [b"[" + parts[0]] + [b",\r\n" + part for part in parts[1:]] + [b"]"]
        return await self._stream(request, events, faults, "application/json")


def mock_embedding(text: str) -> list[float]:
    """The mock's vector for a text: known to tests, and exact in float32 (as base64 carries it)."""
    return [float(len(text)), 0.5, -0.25]


def _openai_embeddings(data: dict) -> dict:
    texts = data.get("input")
    texts = [texts] if isinstance(texts, str) else texts if isinstance(texts, list) else []
    items = []
    for i, text in enumerate(texts):
        vector = mock_embedding(text if isinstance(text, str) else "")
        encoded: Any = vector
        if data.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        items.append({"object": "embedding", "index": i, "embedding": encoded})
    tokens = EMBEDDING_TOKENS_PER_INPUT * len(items)
    return {"object": "list", "data": items, "model": data.get("model", DEFAULT_MODEL),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _google_embeddings(data: dict) -> dict:
    vectors = []
    for one in data.get("requests") or ():
        parts = one.get("content", {}).get("parts", []) if isinstance(one, dict) else []
        vectors.append({"values": mock_embedding("".join(p.get("text", "") for p in parts))})
    return {"embeddings": vectors}


def _last(items: Any) -> Any:
    return items[-1] if isinstance(items, list) and items else {}


def _first_tool_name(tools: Any, *path: str) -> str:
    """The name of the first offered tool (``path`` leads from a tool entry to its name), or ""."""
    tool = tools[0] if isinstance(tools, list) and tools else None
    for key in path:
        tool = tool.get(key) if isinstance(tool, dict) else None
    return tool if isinstance(tool, str) else ""


def _openai_tool(data: dict) -> str:
    last = _last(data.get("messages"))
    if isinstance(last, dict) and last.get("role") == "tool":
        return ""
    return _first_tool_name(data.get("tools"), "function", "name")


def _anthropic_tool(data: dict) -> str:
    last = _last(data.get("messages"))
    content = last.get("content") if isinstance(last, dict) else None
    if isinstance(content, list) and any(isinstance(block, dict) and block.get("type") == "tool_result"
                                         for block in content):
        return ""
    return _first_tool_name(data.get("tools"), "name")


def _google_tool(data: dict) -> str:
    last = _last(data.get("contents"))
    parts = last.get("parts") if isinstance(last, dict) else None
    if isinstance(parts, list) and any(isinstance(p, dict) and "functionResponse" in p for p in parts):
        return ""
    tools = data.get("tools")
    declarations = tools[0].get("functionDeclarations") if isinstance(tools, list) and tools and \
        isinstance(tools[0], dict) else None
    return _first_tool_name(declarations, "name")


async def start_mock(host: str = "127.0.0.1", port: int = 0) -> MockUpstream:
    """Start a mock on ``host:port`` (0 = any free port) and return it; ``await mock.close()`` after."""
    mock = MockUpstream(host)
    await mock.start(port)
    return mock


async def _main(host: str, port: int) -> None:
    mock = await start_mock(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {mock.port}", flush=True)
    try:
        await stop.wait()
    finally:
        await mock.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Mock LLM provider for Sluice tests and benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed as READY <port>)")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.host, args.port))


if __name__ == "__main__":
    main()
