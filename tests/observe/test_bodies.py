"""Stored bodies: large ones compressed and marked, small ones untouched, always read back as sent."""

from __future__ import annotations

import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from sluice.logs import bodies

SSE = b"".join(b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"word %d "}}]}\n\n' % i
               for i in range(60))


def test_large_bodies_are_compressed_and_marked() -> None:
    row = {"request_body": b'{"model":"m"}', "response_body": SSE}
    bodies.pack(row)
    assert row["body_codec"] == bodies.RESPONSE  # only the large one
    assert row["request_body"] == b'{"model":"m"}'
    assert row["response_body"][:4] == b"\x28\xb5\x2f\xfd" and len(row["response_body"]) < len(SSE) // 5
    assert bodies.unpack(row) == {"request_body": b'{"model":"m"}', "response_body": SSE}


def test_rows_from_before_the_codec_read_as_they_are() -> None:
    for codec in (0, None):
        row = {"request_body": SSE, "response_body": None, "body_codec": codec}
        assert bodies.unpack(row) == {"request_body": SSE, "response_body": None}


def test_a_damaged_frame_reads_as_no_body() -> None:
    row = {"id": "01J", "request_body": b'{"model":"m"}', "response_body": SSE}
    bodies.pack(row)
    frame = row["response_body"]
    for damaged in (frame[:10], b"\x28\xb5\x2f\xfd" + b"\x00" * 8, b"not a frame at all"):
        broken = {**row, "response_body": damaged}
        assert bodies.unpack(broken) == {"id": "01J", "request_body": b'{"model":"m"}', "response_body": None}


@given(st.binary(max_size=6000), st.one_of(st.none(), st.binary(max_size=6000)))
def test_any_bodies_round_trip(request_body: bytes, response_body: bytes | None) -> None:
    row = {"request_body": request_body, "response_body": response_body}
    bodies.pack(row)
    assert row["body_codec"] in (0, 1, 2, 3)
    assert bodies.unpack(row) == {"request_body": request_body, "response_body": response_body}


def test_a_compressed_body_holds_only_its_own_bytes() -> None:
    sse = b"".join(b'data: {"choices":[{"delta":{"content":"word %d"}}]}\n\n' % i for i in range(100))
    tracemalloc.start()
    try:
        kept = [bodies.compress(sse) for _ in range(100)]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(kept[0]) < len(sse) // 10
    assert held < 100 * (len(kept[0]) + 200)  # not ~100 x len(sse): no worst-case buffer kept
