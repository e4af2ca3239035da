"""A minimal, fast mock provider for benchmarks: fixed OpenAI-style bodies, keep-alive, uvloop +
httptools. Much cheaper per request than any gateway, so the gateway's cost is what is measured.

    python bench/fast_mock.py --port 18100
POST …/chat/completions → a 971-byte-ish chat.completion, or an SSE stream when the body has
"stream": true; POST …/messages → an Anthropic message, or its event stream (17 text deltas, as
the OpenAI stream); anything else → {"ok":true}.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httptools
import uvloop

CONTENT = "Sluice relays this answer from the mock provider without changing a byte of it. " * 3
CHAT = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1764230400, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": CONTENT, "refusal": None},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 120, "completion_tokens": 48, "total_tokens": 168},
    "system_fingerprint": "fp_bench",
}).encode()
WORDS = CONTENT.split(" ")
EVENTS = [{"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1764230400,
           "model": "gpt-4o-mini",
           "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
for i in range(17):
    EVENTS.append({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1764230400,
                   "model": "gpt-4o-mini",
                   "choices": [{"index": 0, "delta": {"content": " ".join(WORDS[i::17])},
                                                        "finish_reason": None}]})
EVENTS.append({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1764230400,
               "model": "gpt-4o-mini",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
EVENTS.append({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1764230400,
               "model": "gpt-4o-mini",
               "choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 48, "total_tokens": 168}})
STREAM = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in EVENTS) + b"data: [DONE]\n\n"
ANTHROPIC = json.dumps({
    "id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
    "content": [{"type": "text", "text": CONTENT}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 120, "output_tokens": 48},
}).encode()

ANTHROPIC_EVENTS = [
    ("message_start", {"message": {"id": "msg_bench", "type": "message", "role": "assistant",
                                   "model": "claude-3-5-haiku-20241022", "content": [], "stop_reason": None,
                                   "usage": {"input_tokens": 120, "output_tokens": 1}}}),
    ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    *[("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": " ".join(WORDS[i::17])}})
      for i in range(17)],
    ("content_block_stop", {"index": 0}),
    ("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 48}}),
    ("message_stop", {}),
]
ANTHROPIC_STREAM = b"".join(b"event: " + kind.encode() + b"\ndata: "
                            + json.dumps({"type": kind, **data}).encode() + b"\n\n"
                            for kind, data in ANTHROPIC_EVENTS)


def _response(body: bytes, content_type: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type + b"\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


R_CHAT = _response(CHAT, b"application/json")


def _chunked(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            + hex(len(body))[2:].encode() + b"\r\n" + body + b"\r\n0\r\n\r\n")


R_STREAM = _chunked(STREAM)
R_ANTHROPIC_STREAM = _chunked(ANTHROPIC_STREAM)
R_ANTHROPIC = _response(ANTHROPIC, b"application/json")
R_OK = _response(b'{"ok":true}', b"application/json")


class MockProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        path = self.url.split(b"?", 1)[0]
        streaming = b'"stream": true' in self.body or b'"stream":true' in self.body
        if path.endswith(b"/chat/completions"):
            out = R_STREAM if streaming else R_CHAT
        elif path.endswith(b"/messages"):
            out = R_ANTHROPIC_STREAM if streaming else R_ANTHROPIC
        else:
            out = R_OK
        self.transport.write(out)  # type: ignore[attr-defined]
        self.body = bytearray()


async def main(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MockProtocol, host, port, backlog=1024)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18100)
    args = parser.parse_args()
    uvloop.run(main(args.host, args.port))
