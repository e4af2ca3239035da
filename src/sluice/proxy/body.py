"""Reading the client's request body: buffered when small, streamed upstream when large.

Bodies up to ``BUFFER_LIMIT`` (1 MiB — nearly every LLM request) are read whole: they can be
retried, logged and inspected (``model``) at no extra cost. A larger body is streamed upstream as it
arrives (never held whole in memory) and cannot be retried. Either way the size is counted and a
body over ``max_body_bytes`` is refused with 413 / 2010.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sluice.errors import RequestTooLarge

BUFFER_LIMIT = 1024 * 1024

Receive = Callable[[], Awaitable[dict[str, Any]]]


class ClientGone(Exception):
    """The client disconnected (``http.disconnect``)."""


def too_large(max_bytes: int) -> RequestTooLarge:
    return RequestTooLarge(f"request body too large: the limit is {max_bytes} bytes")


class StreamedBody:
    """An async iterable of the rest of a large body, sent upstream as it arrives.

    Errors are also kept in ``error`` (the upstream client may wrap what it sees) for the caller to
    raise; ``on_complete`` runs once the client's body has been read to the end.
    """

    def __init__(self, prefix: list[bytes], size: int, receive: Receive, max_bytes: int,
                 on_complete: Callable[[], None]) -> None:
        self._prefix = prefix
        self.size = size
        self._receive = receive
        self._max = max_bytes
        self._on_complete = on_complete
        self.error: Exception | None = None
        self._head = prefix  # the first BUFFER_LIMIT bytes or so, for request logs

    @property
    def head(self) -> bytes:
        return b"".join(self._head)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._prefix:
            yield chunk
        self._prefix = []
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.error = ClientGone()
                raise self.error
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.size > self._max:
                self.error = too_large(self._max)
                raise self.error
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                self._on_complete()
                return


async def read_body(receive: Receive, max_bytes: int, on_complete: Callable[[], None],
                    buffer_limit: int = BUFFER_LIMIT) -> bytes | StreamedBody:
    """The whole body (bytes) if it ends within ``buffer_limit``, else a ``StreamedBody``.

    ``on_complete`` is called when the body has been read to the end (now, or later by the stream).
    """
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):  # the common case: one message
        if len(body) > max_bytes:
            raise too_large(max_bytes)
        on_complete()
        return body
    chunks = [body]
    size = len(body)
    while True:
        if size > max_bytes:
            raise too_large(max_bytes)
        if size > buffer_limit:
            return StreamedBody(chunks, size, receive, max_bytes, on_complete)
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            if size > max_bytes:
                raise too_large(max_bytes)
            on_complete()
            return b"".join(chunks)
