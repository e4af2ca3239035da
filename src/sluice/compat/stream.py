"""What every provider-stream -> OpenAI-chunk translator shares (pure: bytes in, bytes out).

A translator is fed the provider's raw SSE bytes as they arrive and returns the bytes to send on.
This base decodes the events, parses each ``data`` as JSON (anything but an object is skipped, as
keep-alives are), and turns a malformed event (a non-object where an object belongs, a wrong type…)
into one ``data: {"error": …}`` event that ends the client's stream: the ``openai`` SDK raises it.
A subclass implements ``_event`` (one parsed event -> chunk bytes) and, when its provider's stream
has no end marker, ``_end`` (what to send once the upstream stream is over).
"""

from __future__ import annotations

from typing import Any

import orjson

from sluice.compat import chat
from sluice.compat.sse import SSEDecoder


class StreamTranslator:
    __slots__ = ("_created", "_decoder", "_finished", "_include_usage", "_writer")

    def __init__(self, created: int, include_usage: bool) -> None:
        self._decoder = SSEDecoder()
        self._created = created
        self._include_usage = include_usage
        self._writer: chat.ChunkWriter | None = None  # made from the first event (it names id and model)
        self._finished = False  # after the end, an error or a malformed event: nothing more is sent

    def feed(self, chunk: bytes) -> bytes:
        out = bytearray()
        try:
            for _, data in self._decoder.feed(chunk):
                out += self._data(data)
        except chat.MALFORMED:
            out += self._unreadable()
        return bytes(out)

    def close(self) -> bytes:
        """The upstream stream is over: the rest of its last event, then ``_end``."""
        out = bytearray()
        try:
            for _, data in self._decoder.close():
                out += self._data(data)
            if not self._finished:
                out += self._end()
        except chat.MALFORMED:
            out += self._unreadable()
        return bytes(out)

    def _data(self, data: str) -> bytes:
        if self._finished:
            return b""
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b""
        return self._event(event) if isinstance(event, dict) else b""

    def _event(self, event: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def _end(self) -> bytes:
        """What to send when the upstream stream ends without having finished (default: nothing)."""
        return b""

    def _writer_for(self, id_: str, model: str) -> chat.ChunkWriter:
        self._writer = chat.ChunkWriter(id_, self._created, model, self._include_usage)
        return self._writer

    def _done(self, usage: dict[str, Any] | None) -> bytes:
        """The usage chunk (when the caller asked for it) and ``[DONE]``: the stream's end."""
        self._finished = True
        tail = self._writer.usage(usage) if self._writer is not None and usage is not None \
            and self._include_usage else b""
        return tail + chat.DONE

    def _error(self, message: str, type_: str) -> bytes:
        """The provider reported an error mid-stream: pass it on, and end."""
        self._finished = True
        return chat.stream_error(message, type_)

    def _unreadable(self) -> bytes:
        """A malformed event ends the client's stream with an error the SDK raises, once."""
        if self._finished:
            return b""
        self._finished = True
        return chat.UNREADABLE_STREAM
