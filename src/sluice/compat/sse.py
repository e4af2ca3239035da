"""An incremental Server-Sent Events decoder: fed bytes as they arrive, returns complete events.

Only ``event`` and ``data`` fields matter to the translators; comments, ``id`` and ``retry`` are
ignored. Lines end in LF, CRLF or CR; several ``data`` lines join with LF (the SSE rules).
Measured: splitting whole events on a blank line costs a fraction of walking line by line, so the
bytes of an unfinished event are kept and parsed once it is complete.
"""

from __future__ import annotations

Event = tuple[str, str]  # (event name or "", data)


class SSEDecoder:
    __slots__ = ("_buffer", "_max_bytes")

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self._buffer = b""
        self._max_bytes = max_bytes  # one event larger than this is an upstream fault, not memory to spend

    def feed(self, chunk: bytes) -> list[Event]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            held = buffer.endswith(b"\r")  # may be the first half of a CRLF: decide with the next chunk
            if held:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                buffer += b"\r"
        *blocks, rest = buffer.split(b"\n\n")
        if len(rest) > self._max_bytes:
            raise ValueError("server-sent event larger than the limit")
        self._buffer = rest
        events: list[Event] = []
        for block in blocks:
            event = _parse(block)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[Event]:
        """The event left when the stream ends without a final blank line."""
        rest, self._buffer = self._buffer.rstrip(b"\r"), b""
        event = _parse(rest.replace(b"\r\n", b"\n").replace(b"\r", b"\n")) if rest else None
        return [event] if event is not None else []


def _parse(block: bytes) -> Event | None:
    name = ""
    data: list[str] = []
    for line in block.split(b"\n"):
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data.append(value.decode("utf-8", "replace"))
        elif field == b"event":
            name = value.decode("utf-8", "replace")
    return (name, "\n".join(data)) if data else None
