"""CPU cost of /compat translation alone (no server, no network): a micro-benchmark.

    .venv/bin/python bench/compat_translate.py [--rounds 20000]
Prints process CPU µs per request: an anthropic request translated and its JSON answer translated
back; the same request streamed (the mock upstream's 10 events, with a usage chunk); and the
OpenAI-format pass-through (the model prefix removed). Compare with the provider path's CPU per
request in docs/performance.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import orjson

from sluice.compat import anthropic, chat
from sluice.testing.mock_upstream import CHAT_CHUNKS, CHAT_TEXT

REQUEST = orjson.dumps({"model": "anthropic/claude-x", "max_tokens": 64, "messages": [
    {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello in one sentence."}]})
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
           "content": [{"type": "text", "text": CHAT_TEXT}], "stop_reason": "end_turn",
           "usage": {"input_tokens": 13, "output_tokens": 9}}
ANSWER = orjson.dumps(MESSAGE)


def _sse(kind: str, data: dict) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


EVENTS = [
    _sse("message_start", {"message": {**MESSAGE, "content": [],
                                       "usage": {"input_tokens": 13, "output_tokens": 1}}}),
    _sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    *[_sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
      for piece in CHAT_CHUNKS],
    _sse("content_block_stop", {"index": 0}),
    _sse("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
    _sse("message_stop", {}),
]


def plain() -> None:
    request = chat.parse_body(REQUEST)
    orjson.dumps(anthropic.request(request, chat.split_model(request)[1]))
    orjson.dumps(anthropic.response(orjson.loads(ANSWER), 0))


def streamed() -> None:
    request = chat.parse_body(REQUEST)
    orjson.dumps(anthropic.request(request, chat.split_model(request)[1]))
    translator = anthropic.StreamTranslator(0, True)
    for event in EVENTS:
        translator.feed(event)
    translator.close()


def pass_through() -> None:
    request = chat.parse_body(REQUEST)
    orjson.dumps({**request, "model": chat.split_model(request)[1]})


def cpu_us(work: Callable[[], None], rounds: int) -> float:
    started = time.process_time()
    for _ in range(rounds):
        work()
    return (time.process_time() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20000)
    rounds = parser.parse_args().rounds
    for name, work in (("anthropic, JSON", plain), ("anthropic, stream of 10 events", streamed),
                       ("OpenAI-format pass-through", pass_through)):
        print(f"{name:32} {cpu_us(work, rounds):7.1f} µs CPU per request")


if __name__ == "__main__":
    main()
