"""Upstream error responses, checked for stored keys before the client sees them.

A provider may echo the key it was sent (``Incorrect API key provided: Bearer sk-…``). When a
stored key went upstream and the answer is not a 2xx, the body is read whole (up to
``ERROR_BODY_MAX``), decoded if compressed, and every stored value of the account is masked (its
``KeyMatcher``) in the body and the header values. A body with no stored value is relayed
byte for byte as it came; a masked one is sent decoded, without ``content-encoding``.

A 2xx body is relayed as it arrives, each chunk checked on the way (``masked``): a provider may
quote the key in an answer too (a streamed SSE event that repeats the request's headers); a value
found is replaced by a mask of the same length, so ``content-length`` stays true, and a stream's
events are not delayed (``keymatch.StreamMasker``). A compressed answer cannot be checked chunk by
chunk: such requests ask for ``accept-encoding: identity`` (``headers.with_stored_key``), and a 2xx
answer compressed anyway is checked whole, like an error body (``compressed``). An error
body that cannot be checked — larger than ``ERROR_BODY_MAX`` or in a coding Sluice cannot decode
(brotli) — is not relayed: the client gets a 502 saying why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sluice import codings
from sluice.errors import UnrelayableUpstreamError
from sluice.keymatch import KeyMatcher, StreamMasker, mask
from sluice.proxy.client import Response

ERROR_BODY_MAX = 1024 * 1024  # bytes, as received and once decoded
INLINE_MAX = 64 * 1024  # a larger or compressed body is checked in a thread, off the event loop
STRIP_WHEN_MASKED = frozenset({b"content-encoding", b"content-length", b"etag", b"content-md5"})


def must_check(status: int) -> bool:
    return not 200 <= status < 300


def compressed(raw_headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether an answer (lower-cased header names) has a content coding: a 2xx answer cannot then
    be masked chunk by chunk, and is checked whole like an error answer."""
    for name, value in raw_headers:
        if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            return True
    return False


def unreadable(reason: str) -> UnrelayableUpstreamError:
    return UnrelayableUpstreamError(f"{UnrelayableUpstreamError.default_message} ({reason})")


@dataclass(frozen=True, slots=True)
class Checked:
    headers: list[tuple[bytes, bytes]]
    body: bytes  # as relayed: the original bytes, or the decoded and masked body
    logged: bytes  # the body for the request log: always decoded


async def read_capped(response: Response, limit: int) -> bytes | None:
    """The whole body, or None once it passes ``limit`` (the connection is then closed)."""
    if response.content_length is not None:
        if response.content_length > limit:
            response.close()
            return None
        body = await response.read()
        response.release()
        return body
    parts: list[bytes] = []
    size = 0
    while chunk := await response.read_chunk():
        size += len(chunk)
        if size > limit:
            response.close()
            return None
        parts.append(chunk)
    response.release()
    return b"".join(parts)


def _coding(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"content-encoding":
            return value.decode("latin-1")
    return ""


def inline(headers: list[tuple[bytes, bytes]], raw: bytes) -> bool:
    """Cheap enough for the event loop: small and not compressed (a 1 KiB gzip body can decode to 1 MiB)."""
    return len(raw) <= INLINE_MAX and not _coding(headers)


def check(headers: list[tuple[bytes, bytes]], raw: bytes, matcher: KeyMatcher) -> Checked:
    """Mask stored values in an error response (pure); raises the 502 when it cannot be read."""
    coding = _coding(headers)
    decoded = codings.decode(raw, coding, ERROR_BODY_MAX) if coding else raw
    if decoded is None:
        raise unreadable(f"content-encoding {coding[:32]!r} could not be decoded within "
                         f"{ERROR_BODY_MAX} bytes")
    in_headers = [(name, value, matcher.spans(value)) for name, value in headers]
    found = matcher.spans(decoded)
    if not found and not any(spans for _, _, spans in in_headers):
        return Checked(headers, raw, decoded)
    body = mask(decoded, found) if found else decoded
    cleaned = [(name, mask(value, spans) if spans else value) for name, value, spans in in_headers
               if name not in STRIP_WHEN_MASKED]
    cleaned.append((b"content-length", str(len(body)).encode()))
    return Checked(cleaned, body, body)


async def check_soon(headers: list[tuple[bytes, bytes]], raw: bytes, matcher: KeyMatcher) -> Checked:
    """``check``, in a thread when the body is large or compressed (decoding up to 1 MiB takes
    milliseconds: not on the event loop)."""
    if inline(headers, raw):
        return check(headers, raw, matcher)
    return await asyncio.to_thread(check, headers, raw, matcher)


Send = Callable[[dict[str, Any]], Awaitable[None]]


def masked_headers(headers: list[tuple[bytes, bytes]], matcher: KeyMatcher) -> list[tuple[bytes, bytes]]:
    """A 2xx answer's headers with stored values masked (the same list when there are none).

    One scan of all values joined by a line break (no header value holds one), not one per header:
    a scan has a fixed cost of ~1 µs (measured: 5.7 → 1.1 µs for a chat answer's five headers). A
    match across a joint could only be a false alarm, which the per-value pass then finds clean."""
    if not matcher.spans(b"\n".join([value for _, value in headers])):
        return headers
    return [(name, matcher.redact(value)) for name, value in headers]


def masked(send: Send, headers: list[tuple[bytes, bytes]], matcher: KeyMatcher) -> Send:
    """``send`` for a 2xx answer's body messages, stored values masked on the way (a compressed
    answer, or an account with no stored values, goes through ``send`` itself)."""
    if not matcher or _coding(headers):
        return send
    masker = StreamMasker(matcher)

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            body = masker.feed(body) if message.get("more_body", False) else masker.flush(body)
            message = {**message, "body": body}
        await send(message)

    return sending
