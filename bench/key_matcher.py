"""Micro-benchmark: what masking the stored key values costs per request (issue 15 item 6).

    .venv/bin/python bench/key_matcher.py [--keys 1,20,500]
Times, per call: the request-log redaction of a chat body and of a 7 KB stream body with and without
an account's ``KeyMatcher``; the check of a relayed error body; the check of a relayed 2xx answer
(a chat body, and one SSE event of a stream, ``keymatch.StreamMasker``); the path check every
data-plane request makes. Numbers go to docs/performance.md by hand.
"""

from __future__ import annotations

import argparse
import gzip
import secrets
import timeit

from sluice.keymatch import KeyMatcher, StreamMasker
from sluice.logs.redact import redact_body
from sluice.proxy import errorbody, paths

CHAT = (b'{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":'
        b'{"role":"assistant","content":"Hello from the mock upstream."},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}')
STREAM = b"".join(b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
                  b'"delta":{"content":"piece %d"}}]}\n\n' % i for i in range(60))[:7000]
EVENT = STREAM[:STREAM.index(b"\n\n") + 2]
ERROR = b'{"error":{"message":"Incorrect API key provided: Bearer %s.","type":"invalid_request_error"}}'


def per_call_us(fn, number: int = 20_000) -> float:  # type: ignore[no-untyped-def]
    return min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", default="1,20,500")
    args = parser.parse_args()
    print(f"{'keys':>5} {'chat log':>10} {'stream log':>11} {'error check':>12} {'2xx chat':>9} "
          f"{'2xx event':>10}   (µs per call)")
    print(f"{'none':>5} {per_call_us(lambda: redact_body(CHAT)):>10.2f} "
          f"{per_call_us(lambda: redact_body(STREAM)):>11.2f} {'-':>12}")
    for count in (int(n) for n in args.keys.split(",")):
        keys = [secrets.token_urlsafe(24) for _ in range(count)]
        matcher = KeyMatcher(keys)
        error = gzip.compress(ERROR % keys[0].encode())
        headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
        chat = per_call_us(lambda m=matcher: redact_body(CHAT, m))
        stream = per_call_us(lambda m=matcher: redact_body(STREAM, m))
        relay = per_call_us(lambda h=headers, e=error, m=matcher: errorbody.check(h, e, m))
        masker = StreamMasker(matcher)
        answer = per_call_us(lambda s=masker: s.feed(CHAT) + s.flush())
        event = per_call_us(lambda s=masker: s.feed(EVENT))
        print(f"{count:>5} {chat:>10.2f} {stream:>11.2f} {relay:>12.2f} {answer:>9.2f} {event:>10.2f}")
    for path in ("chat/completions", "v1beta/models/gemini-1.5-flash:generateContent", "run/%2e%2e/x"):
        print(f"path check {path!r}: {per_call_us(lambda p=path: paths.has_dot_segment(p), 200_000):.3f} µs")


if __name__ == "__main__":
    main()
