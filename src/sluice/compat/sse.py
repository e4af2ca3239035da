"""An incremental Server-Sent Events decoder: fed bytes as they arrive, returns complete events.

Only ``event`` and ``data`` fields matter to the translators; comments, ``id`` and ``retry`` are
ignored. Lines end in LF, CRLF or CR; several ``data`` lines join with LF (the SSE rules).
"""

from __future__ import annotations

Event = tuple[str, str]  # (event name or "", data)


class SSEDecoder:
    __slots__ = ("_buffer", "_data", "_event", "_max_bytes")

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []
        self._max_bytes = max_bytes  # one event larger than this is an upstream fault, not memory to spend

    def feed(self, chunk: bytes) -> list[Event]:
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[Event] = []
        start = 0
        while True:
            end = _line_end(buffer, start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + (2 if buffer[end:end + 2] == b"\r\n" else 1)
            if not line:
                if self._data:
                    events.append((self._event, "\n".join(self._data)))
                self._event, self._data = "", []
                continue
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                self._data.append(value.decode("utf-8", "replace"))
            elif name == b"event":
                self._event = value.decode("utf-8", "replace")
        self._buffer = buffer[start:]
        if len(self._buffer) > self._max_bytes:
            raise ValueError("server-sent event larger than the limit")
        return events

    def close(self) -> list[Event]:
        """Events left when the stream ends without a final blank line."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        self._buffer = b""
        return events


def _line_end(buffer: bytes, start: int) -> int:
    lf = buffer.find(b"\n", start)
    cr = buffer.find(b"\r", start, lf if lf >= 0 else len(buffer))
    if cr >= 0 and cr == len(buffer) - 1:
        return -1  # a CR at the very end may be the first half of CRLF: wait for more
    return cr if cr >= 0 else lf
