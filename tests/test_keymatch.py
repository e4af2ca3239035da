"""KeyMatcher (issue 15 item 6): exact stored values of any shape are found and masked."""

from __future__ import annotations

import asyncio
import gzip
import json
import secrets
from urllib.parse import quote

import zstandard

from sluice import codings
from sluice.errors import UnrelayableUpstreamError
from sluice.keymatch import EMPTY, MASK, MIN_LENGTH, KeyMatcher, StreamMasker
from sluice.logs import redact
from sluice.proxy import errorbody

NO_SHAPE = secrets.token_hex(16)  # an Azure-style key: no prefix the shape rules know
MISTRAL = secrets.token_urlsafe(24)
SLASHED = "a/b+c=" + secrets.token_hex(8)


def test_every_value_is_masked_wherever_and_however_often_it_appears() -> None:
    matcher = KeyMatcher([NO_SHAPE, MISTRAL, SLASHED])
    body = (f'{{"message":"Incorrect API key provided: Bearer {NO_SHAPE}. {MISTRAL}{NO_SHAPE}",'
            f'"json":{json.dumps(SLASHED)},"escaped":"{SLASHED.replace("/", chr(92) + "/")}",'
            f'"url":"?key={quote(SLASHED, safe="")}"}}').encode()
    out = matcher.redact(body)
    for value in (NO_SHAPE, MISTRAL, SLASHED, quote(SLASHED, safe=""), SLASHED.replace("/", "\\/")):
        assert value.encode() not in out
    assert out.count(MASK) >= 5
    assert out.startswith(b'{"message":"Incorrect API key provided: Bearer [REDACTED]')


def test_overlapping_values_mask_as_one() -> None:
    inner = secrets.token_hex(8)
    outer = "x" + inner + "y"
    assert KeyMatcher([inner, outer]).redact(f"<{outer}>".encode()) == b"<" + MASK + b">"


def test_nothing_found_returns_the_same_object_and_short_values_are_ignored() -> None:
    body = b'{"ok": true, "abc": "abc"}'
    assert KeyMatcher([NO_SHAPE]).redact(body) is body
    short = KeyMatcher(["abc", "x" * (MIN_LENGTH - 1)])
    assert not short and short.redact(body) is body
    assert not EMPTY and EMPTY.spans(body) == []


def test_repr_shows_no_value() -> None:
    assert NO_SHAPE not in repr(KeyMatcher([NO_SHAPE]))


def test_codings_decode_bounded() -> None:
    body = b"hello " * 100
    assert codings.decode(gzip.compress(body), "gzip", 10_000) == body
    assert codings.decode(zstandard.ZstdCompressor().compress(body), "zstd", 10_000) == body
    assert codings.decode(gzip.compress(body), "gzip", 100) is None  # over the limit
    assert codings.decode(body, "br", 10_000) is None
    assert codings.decode(b"not gzip", "gzip", 10_000) is None
    assert codings.sniff(gzip.compress(body)[:40], 10_000) is not None  # truncated: as far as it goes
    assert codings.sniff(body, 10_000) is None


def test_stored_logs_mask_values_also_inside_a_compressed_body() -> None:
    matcher = KeyMatcher([NO_SHAPE])
    body = f'{{"error":"Incorrect API key provided: {NO_SHAPE}"}}'.encode()
    assert NO_SHAPE.encode() not in redact.redact_body(body, matcher)
    packed = gzip.compress(body)
    out = redact.redact_body(packed, matcher)
    assert out != packed and NO_SHAPE.encode() not in out and MASK in out
    assert redact.redact_body(gzip.compress(b"nothing here"), matcher).startswith(codings.GZIP_MAGIC)
    row = {"path": redact.clean_path(f"files/{NO_SHAPE}?key={NO_SHAPE}"), "user_agent": f"x/{NO_SHAPE}",
           "error": "fine", "event_id": None}
    redact.redact_fields(row, ("path", "user_agent", "error", "event_id"), matcher)
    assert row == {"path": "files/[REDACTED]", "user_agent": "x/[REDACTED]", "error": "fine",
                   "event_id": None}


def test_error_bodies_relay_untouched_unless_they_hold_a_value() -> None:
    matcher = KeyMatcher([NO_SHAPE])
    headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip"),
               (b"content-length", b"9")]
    clean = gzip.compress(b'{"error":"quota"}')
    checked = errorbody.check(headers, clean, matcher)
    assert checked.body is clean and checked.headers == headers and checked.logged == b'{"error":"quota"}'
    echoed = gzip.compress(f'{{"error":"bad key {NO_SHAPE}"}}'.encode())
    checked = errorbody.check(headers, echoed, matcher)
    assert checked.body == b'{"error":"bad key [REDACTED]"}'
    length = str(len(checked.body)).encode()
    assert dict(checked.headers) == {b"content-type": b"application/json", b"content-length": length}
    in_header = errorbody.check([(b"www-authenticate", f"Bearer {NO_SHAPE}".encode())], b"{}", matcher)
    assert in_header.headers[0] == (b"www-authenticate", b"Bearer [REDACTED]")


def test_an_error_body_that_cannot_be_read_is_refused() -> None:
    matcher = KeyMatcher([NO_SHAPE])
    for coding in (b"br", b"gzip"):
        try:
            errorbody.check([(b"content-encoding", coding)], NO_SHAPE.encode(), matcher)
        except UnrelayableUpstreamError as exc:
            assert exc.status == 502 and "stored keys" in exc.message
        else:
            raise AssertionError(f"{coding!r} body relayed unchecked")


def test_threads_scanning_at_once_each_see_every_match() -> None:
    import threading

    matcher = KeyMatcher([NO_SHAPE])
    body = (b"x" * 200_000 + NO_SHAPE.encode()) * 4
    counts: list[int] = []
    workers = [threading.Thread(target=lambda: counts.extend(len(matcher.spans(body)) for _ in range(20)))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert counts == [4] * 80


def test_values_longer_than_hyperscan_takes_are_matched_too() -> None:
    """A provider config may hold a 64 KiB secret; building the matcher must not fail on it (it did:
    hyperscan refuses literals over 16,000 bytes, and every reload of that account failed)."""
    long_ascii, long_utf8 = "k" * 65_536, "é" * 32_768
    matcher = KeyMatcher([long_ascii, long_utf8, "sk-short-but-real"])
    body = b"<" + long_ascii.encode() + b"> " + long_utf8.encode() + b" sk-short-but-real"
    assert matcher.redact(body) == b"<[REDACTED]> [REDACTED] [REDACTED]"
    assert matcher.redact(b"k" * 100) == b"k" * 100


def _per_part(row: dict, bodies: tuple[str, ...], texts: tuple[str, ...], matcher: KeyMatcher | None) -> dict:
    """What ``redact_row`` must equal: each body and field on its own (the path it shortcuts)."""
    row = dict(row)
    for name in bodies:
        row[name] = redact.redact_body(row[name], matcher)
    if matcher is not None:
        redact.redact_fields(row, texts, matcher)
    return row


def test_one_scan_per_log_row_masks_exactly_what_a_scan_per_part_masks() -> None:
    matcher = KeyMatcher([NO_SHAPE])
    texts = ("path", "user_agent", "error")
    plain = {"request_body": b'{"model":"m"}', "response_body": b'{"ok":true}', "path": "chat/completions",
             "user_agent": "sdk/1", "error": None}
    cases = [
        {},  # nothing anywhere
        {"request_body": f'{{"k":"{NO_SHAPE}"}}'.encode()},
        {"response_body": f"echo {NO_SHAPE}".encode()},
        {"user_agent": f"x/{NO_SHAPE}"},
        {"error": f"bad key {NO_SHAPE}"},
        {"response_body": gzip.compress(f"echo {NO_SHAPE}".encode())},  # found only decoded
        {"response_body": gzip.compress(b"nothing here")},
        {"request_body": b'{"k":"sk-proj-abcdefghijklmnopqrstuvwxyz"}'},  # a key shape, no stored value
        {"request_body": NO_SHAPE[:10].encode(), "response_body": NO_SHAPE[10:].encode()},  # split: no value
        {"request_body": b"", "response_body": b""},
    ]
    for case in cases:
        for bodies in (("request_body", "response_body"), ("request_body",), ()):
            for m in (matcher, None):
                row = {**plain, **case}
                expected = _per_part(row, bodies, texts, m)
                redact.redact_row(row, bodies, texts, m)
                assert row == expected, (case, bodies, m)
    masked = {**plain, "response_body": f"echo {NO_SHAPE}".encode(), "user_agent": f"x/{NO_SHAPE}"}
    redact.redact_row(masked, ("request_body", "response_body"), texts, matcher)
    assert masked["response_body"] == b"echo " + MASK and masked["user_agent"] == "x/[REDACTED]"


def _streamed(matcher: KeyMatcher, chunks: list[bytes], last_with_flush: bool = False) -> list[bytes]:
    """As the relay masks: each chunk fed, then the rest flushed (with the last chunk, as when the
    last body message is known to be the last)."""
    masker = StreamMasker(matcher)
    if last_with_flush:
        return [*(masker.feed(chunk) for chunk in chunks[:-1]), masker.flush(chunks[-1])]
    return [*(masker.feed(chunk) for chunk in chunks), masker.flush()]


def test_a_streamed_answer_is_masked_even_when_a_value_is_split_between_chunks() -> None:
    """A 2xx answer quoting the key (in an SSE event): masked in place, the same length."""
    matcher = KeyMatcher([NO_SHAPE, MISTRAL])
    body = f'data: {{"content":"your key is {NO_SHAPE} and {MISTRAL}"}}\n\ndata: [DONE]\n\n'.encode()
    for cut in range(1, len(body)):
        for step in (1, 7, len(body)):
            chunks = [body[:cut]] + [body[at:at + step] for at in range(cut, len(body), step)]
            for last_with_flush in (False, True):
                out = b"".join(_streamed(matcher, chunks, last_with_flush))
                assert len(out) == len(body) and NO_SHAPE.encode() not in out and MISTRAL.encode() not in out
                assert out.count(MASK) == 2 and out.endswith(b"data: [DONE]\n\n")


def test_a_stream_with_no_value_passes_as_it_came_and_events_are_not_held_back() -> None:
    matcher = KeyMatcher([NO_SHAPE])
    events = [b'data: {"content":"Hello"}\n\n', b'data: {"content":" world"}\n\n', b"data: [DONE]\n\n"]
    assert _streamed(matcher, events) == [*events, b""]  # each event leaves when it arrives
    partial = _streamed(matcher, [b"data: {\"content\":\"a", b'b"}\n\n'])
    assert b"".join(partial) == b'data: {"content":"ab"}\n\n'
    assert len(partial[0]) == 0  # an unfinished line shorter than a key waits for the rest


def test_a_2xx_relay_masks_its_headers_and_body_unless_compressed() -> None:
    matcher = KeyMatcher([NO_SHAPE])
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def relay(headers: list[tuple[bytes, bytes]]) -> None:
        wrapped = errorbody.masked(send, headers, matcher)
        for part, more in ((f"key {NO_SHAPE[:9]}", True), (NO_SHAPE[9:], False)):
            await wrapped({"type": "http.response.body", "body": part.encode(), "more_body": more})

    asyncio.run(relay([(b"content-type", b"text/event-stream")]))
    body = b"".join(m["body"] for m in sent)
    assert NO_SHAPE.encode() not in body and MASK in body and len(body) == len(NO_SHAPE) + 4
    sent.clear()
    asyncio.run(relay([(b"content-encoding", b"gzip")]))  # cannot be read chunk by chunk: as it came
    assert b"".join(m["body"] for m in sent) == f"key {NO_SHAPE}".encode()
    headers = [(b"x-echo", f"Bearer {NO_SHAPE}".encode()), (b"content-type", b"application/json")]
    assert errorbody.masked_headers(headers, matcher) == [(b"x-echo", b"Bearer " + MASK),
                                                         (b"content-type", b"application/json")]
    clean = [(b"content-type", b"application/json")]
    assert errorbody.masked_headers(clean, matcher) is clean
    # The values are scanned joined: a value in the last header is still found, one split over two
    # headers is not a stored value and stays as it came.
    last = [(b"content-type", b"application/json"), (b"x-echo", NO_SHAPE.encode())]
    assert errorbody.masked_headers(last, matcher) == [(b"content-type", b"application/json"),
                                                      (b"x-echo", MASK)]
    split = [(b"x-a", NO_SHAPE[:9].encode()), (b"x-b", NO_SHAPE[9:].encode())]
    assert errorbody.masked_headers(split, matcher) == split
