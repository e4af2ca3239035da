"""``Upstream.relay``: how a streamed answer's body goes to the client, against scripted servers.

A stream that has fully arrived when its last piece is read ends the client's answer with that
piece (one ASGI message, so one write); one still arriving is relayed piece by piece and ended
when the provider ends it; one the provider breaks off is left unfinished.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sluice.keymatch import KeyMatcher
from sluice.proxy import client
from sluice.proxy.errorbody import masked
from sluice.proxy.forward import Upstream
from tests.proxy.test_client import Scripted, content_length, read_head

EVENTS = b"data: {\"n\":1}\n\n" + b"data: [DONE]\n\n"
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


async def relay(url: str, pool: client.Pool,
                matcher: KeyMatcher | None = None) -> tuple[bool, list[dict[str, Any]], list[bytes]]:
    response = await client.request(pool, "POST", client.parse_target(url), [], b"{}", 5, 5)
    sent: list[dict[str, Any]] = []
    tapped: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    to_client = masked(send, response.raw_headers, matcher) if matcher is not None else send
    complete = await Upstream.relay(response, to_client, tapped.append)
    return complete, sent, tapped


async def test_a_stream_that_arrived_whole_ends_with_its_last_piece() -> None:
    async def whole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await read_head(reader)
            await reader.readexactly(content_length(head))
            writer.write(HEAD + chunk(EVENTS) + b"0\r\n\r\n")  # one write: it arrives complete
            await writer.drain()

    async with Scripted(whole) as server:
        pool = client.Pool(connect_timeout_s=5)
        complete, sent, tapped = await relay(server.url(), pool)
        assert complete
        assert sent == [{"type": "http.response.body", "body": EVENTS, "more_body": False}]
        assert tapped == [EVENTS]
        await relay(server.url(), pool)  # released to the pool at the end: the connection is reused
        assert server.connections == 1 and pool.opened == 1


async def test_a_relayed_stream_starts_no_task_of_its_own() -> None:
    """The relay reads pieces with ``read_chunk``, not an async generator: one left before its end
    (the relay returns on the last piece) made asyncio start a task per stream to close it."""
    async def whole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        await reader.readexactly(content_length(head))
        writer.write(HEAD + chunk(EVENTS) + b"0\r\n\r\n")
        await writer.drain()

    async with Scripted(whole) as server:
        pool = client.Pool(connect_timeout_s=5)
        response = await client.request(pool, "POST", client.parse_target(server.url()), [], b"{}", 5, 5)
        loop = asyncio.get_running_loop()
        started: list[object] = []
        default = loop.get_task_factory()

        def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
            started.append(coro)
            return default(loop, coro, **kwargs) if default else asyncio.Task(coro, loop=loop, **kwargs)

        async def send(message: dict[str, Any]) -> None:
            return None

        loop.set_task_factory(counting)
        try:
            assert await Upstream.relay(response, send, None)
            await asyncio.sleep(0)  # a task started meanwhile would have been created by now
        finally:
            loop.set_task_factory(default)
        assert started == []


async def test_a_stream_still_arriving_is_relayed_piece_by_piece_and_ended_by_the_provider() -> None:
    gate = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        await reader.readexactly(content_length(head))
        writer.write(HEAD + chunk(b"data: {\"n\":1}\n\n"))
        await writer.drain()
        await gate.wait()
        writer.write(chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()

    async with Scripted(slow) as server:
        pool = client.Pool(connect_timeout_s=5)
        task = asyncio.create_task(relay(server.url(), pool))
        await asyncio.sleep(0.2)
        gate.set()
        complete, sent, _ = await task
        assert complete
        assert sent[0] == {"type": "http.response.body", "body": b"data: {\"n\":1}\n\n", "more_body": True}
        assert sent[-1]["more_body"] is False
        assert b"".join(m["body"] for m in sent) == EVENTS


async def test_a_stream_broken_off_is_left_unfinished() -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        await reader.readexactly(content_length(head))
        writer.write(HEAD + chunk(b"data: {\"n\":1}\n\n"))  # no final chunk: the connection closes
        await writer.drain()

    async with Scripted(broken) as server:
        complete, sent, _ = await relay(server.url(), client.Pool(connect_timeout_s=5))
        assert not complete
        assert all(m["more_body"] for m in sent)


STORED = "sk-stored-canary-0123456789abcdefghij"


async def test_a_stored_key_in_a_stream_is_masked_whether_it_arrived_whole_or_split() -> None:
    """The last piece goes through the masker's flush: a key in it, or one split across the last two
    pieces, is masked as in the pieces before (same length, so framing is unchanged)."""
    quoted = b'data: {"echo":"Bearer ' + STORED.encode() + b'"}\n\n'
    split = len(quoted) // 2

    async def whole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        await reader.readexactly(content_length(head))
        writer.write(HEAD + chunk(quoted + b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()

    async def in_two(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        await reader.readexactly(content_length(head))
        writer.write(HEAD + chunk(quoted[:split]))
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(chunk(quoted[split:]) + b"0\r\n\r\n")
        await writer.drain()

    for handler in (whole, in_two):
        async with Scripted(handler) as server:
            complete, sent, tapped = await relay(server.url(), client.Pool(connect_timeout_s=5),
                                                 KeyMatcher([STORED]))
            relayed = b"".join(m["body"] for m in sent)
            assert complete and sent[-1]["more_body"] is False
            assert STORED.encode() not in relayed and b"[REDACTED]" in relayed, handler.__name__
            assert len(relayed) == len(b"".join(tapped))  # masked in place: the length is kept
