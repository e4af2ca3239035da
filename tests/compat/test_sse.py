"""The incremental SSE decoder: framing by LF, CRLF or CR, multi-line data, split anywhere."""

from __future__ import annotations

import pytest

from sluice.compat.sse import SSEDecoder

STREAM = (b": comment\nevent: a\ndata: 1\n\nid: 7\ndata: x\ndata:y\r\n\r\n"
          b"event: b\rdata: {\"k\": 2}\r\rdata: tail")
EVENTS = [("a", "1"), ("", "x\ny"), ("b", '{"k": 2}'), ("", "tail")]


@pytest.mark.parametrize("piece", [1, 2, 3, 5, len(STREAM)])
def test_events_do_not_depend_on_how_bytes_arrive(piece: int) -> None:
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(STREAM), piece):
        events += decoder.feed(STREAM[start:start + piece])
    events += decoder.close()
    assert events == EVENTS


def test_an_oversized_event_is_refused() -> None:
    decoder = SSEDecoder(max_bytes=16)
    with pytest.raises(ValueError, match="larger than the limit"):
        decoder.feed(b"data: " + b"x" * 32)
