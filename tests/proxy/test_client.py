"""The lean upstream HTTP/1.1 client against scripted raw TCP servers on loopback.

Each test's server answers with exact bytes, so framing (length, chunked, close-delimited), 1xx,
HEAD, keep-alive reuse, stale connections, timeouts, back-pressure and header injection are all
checked on the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from sluice.proxy import client

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Scripted:
    """A TCP server whose connection handler is the test's; records each request head it reads."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Scripted:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    def url(self, path: str = "/v1/x") -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}{path}"


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


async def answer_ok_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        head = await read_head(reader)
        await reader.readexactly(content_length(head))
        writer.write(OK)
        await writer.drain()


async def fetch(pool: client.Pool, url: str, method: str = "POST", body: bytes = b"{}",
                headers: list[tuple[str, str]] | None = None,
                timeout_s: float | None = 5) -> tuple[int, bytes, client.Response]:
    response = await client.request(pool, method, client.parse_target(url), headers or [], body, timeout_s,
                                    timeout_s)
    data = await response.read()
    response.release()
    return response.status, data, response


async def test_keep_alive_reuses_one_connection() -> None:
    async with Scripted(answer_ok_forever) as server:
        pool = client.Pool(connect_timeout_s=5)
        for _ in range(3):
            status, data, response = await fetch(pool, server.url())
            assert (status, data) == (200, b"{}")
            assert response.content_type == "application/json" and response.content_length == 2
        assert server.connections == 1 and pool.opened == 1 and pool.idle_count() == 1
        pool.close()


async def test_request_is_written_exactly() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        seen.append(head + await reader.readexactly(content_length(head)))
        writer.write(OK)

    async with Scripted(handler) as server:
        pool = client.Pool(connect_timeout_s=5)
        port = server.url().split(":")[2].split("/")[0]
        await fetch(pool, server.url("/v1/chat?a=1&b=%20"), body=b'{"m":1}',
                    headers=[("authorization", "Bearer k")])
        assert seen == [f"POST /v1/chat?a=1&b=%20 HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
                        f"authorization: Bearer k\r\ncontent-length: 7\r\n\r\n{{\"m\":1}}".encode()]
        pool.close()


@pytest.mark.parametrize("value", ["a\r\nx-forged: 1", "a\nb", "a\rb"])
async def test_line_breaks_in_header_values_are_refused_before_sending(value: str) -> None:
    async with Scripted(answer_ok_forever) as server:
        pool = client.Pool(connect_timeout_s=5)
        with pytest.raises(client.InvalidRequest):
            await fetch(pool, server.url(), headers=[("x-key", value)])
        await asyncio.sleep(0.05)
        status, _, _ = await fetch(pool, server.url())  # the refused one was never pooled
        assert status == 200
        pool.close()


def test_parse_target_refuses_whitespace_and_other_schemes() -> None:
    with pytest.raises(client.InvalidRequest):
        client.parse_target("http://example.com/a b")
    with pytest.raises(client.InvalidRequest):
        client.parse_target("ftp://example.com/a")
    target = client.parse_target("https://api.openai.com/v1/chat/completions?x=1")
    assert (target.host, target.port, target.tls, target.host_header, target.request_target) == (
        "api.openai.com", 443, True, b"api.openai.com", b"/v1/chat/completions?x=1")


async def test_chunked_and_close_delimited_bodies() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
                     b"content-type: text/event-stream\r\n\r\n")
        for piece in (b"data: 1\n\n", b"data: 2\n\n"):
            writer.write(b"%x\r\n%b\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await read_head(reader)  # a second request on the same connection
        writer.write(OK)

    async with Scripted(chunked) as server:
        pool = client.Pool(connect_timeout_s=5)
        response = await client.request(pool, "POST", client.parse_target(server.url()), [], b"{}", 5, 5)
        pieces = []
        while chunk := await response.read_chunk():
            pieces.append(chunk)
        assert b"".join(pieces) == b"data: 1\n\ndata: 2\n\n" and len(pieces) == 2
        response.release()
        assert (await fetch(pool, server.url()))[:2] == (200, b"{}")
        assert server.connections == 1
        pool.close()

    async def close_delimited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")

    async with Scripted(close_delimited) as server:
        pool = client.Pool(connect_timeout_s=5)
        status, data, _ = await fetch(pool, server.url())
        assert (status, data) == (200, b"until the end")
        assert pool.idle_count() == 0  # HTTP/1.0 without keep-alive is not pooled
        pool.close()


async def test_informational_responses_are_skipped_and_head_has_no_body() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await read_head(reader)
            await reader.readexactly(content_length(head))
            if head.startswith(b"HEAD"):
                # no body follows a HEAD answer
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n")
                await asyncio.sleep(1)
                return
            writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + OK)

    async with Scripted(handler) as server:
        pool = client.Pool(connect_timeout_s=5)
        status, data, response = await fetch(pool, server.url())
        assert (status, data) == (200, b"{}") and (b"link", b"</a>") not in response.raw_headers
        status, data, response = await fetch(pool, server.url(), method="HEAD", body=b"")
        assert (status, data, response.content_length) == (200, b"", 50)
        pool.close()


async def test_stale_pooled_connection_versus_a_fresh_one_dropped() -> None:
    async def one_answer_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(OK)
        await writer.drain()

    async with Scripted(one_answer_then_close) as server:
        pool = client.Pool(connect_timeout_s=5)
        await fetch(pool, server.url())
        idle = pool._idle[client.parse_target(server.url()).key][0]
        await asyncio.sleep(0.05)
        if not idle.lost:  # the close raced the release: make the pooled one look alive
            pytest.fail("the peer's close should have been seen by now")
        # a closed idle connection is skipped at acquire: a new one is opened and answered
        assert (await fetch(pool, server.url()))[0] == 200
        pool.close()

    async def drop_without_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)  # and close

    async with Scripted(drop_without_answer) as server:
        pool = client.Pool(connect_timeout_s=5)
        with pytest.raises(client.ClientError) as fresh:
            await fetch(pool, server.url())
        assert not isinstance(fresh.value, client.StaleConnection)  # a new connection: a real failure
        pool.close()

    answered = 0

    async def answer_once_then_drop_next(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        await read_head(reader)
        if answered == 0:
            answered += 1
            writer.write(OK)
            await writer.drain()
            await read_head(reader)  # the next request on the kept-alive connection is dropped

    async with Scripted(answer_once_then_drop_next) as server:
        pool = client.Pool(connect_timeout_s=5)
        await fetch(pool, server.url())
        with pytest.raises(client.StaleConnection):
            await fetch(pool, server.url())
        pool.close()


async def test_first_byte_timeout_and_idle_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await asyncio.sleep(5)

    async with Scripted(silent) as server:
        pool = client.Pool(connect_timeout_s=5)
        with pytest.raises(TimeoutError):
            await fetch(pool, server.url(), timeout_s=0.2)
        pool.close()

    async def stalls_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await asyncio.sleep(5)

    async with Scripted(stalls_mid_body) as server:
        pool = client.Pool(connect_timeout_s=5)
        response = await client.request(pool, "POST", client.parse_target(server.url()), [], b"{}", 5, 0.2)
        with pytest.raises(TimeoutError):
            await response.read()
        response.close()
        assert pool.idle_count() == 0
        pool.close()


async def test_connect_refused_and_malformed_response_are_client_errors() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    pool = client.Pool(connect_timeout_s=5)
    with pytest.raises(client.ClientError):
        await fetch(pool, f"http://127.0.0.1:{port}/v1")

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await asyncio.sleep(1)

    async with Scripted(garbage) as scripted:
        with pytest.raises(client.ClientError):
            await fetch(pool, scripted.url())
    pool.close()


async def _body(pieces: list[bytes]):
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece


@pytest.mark.parametrize("declared", [True, False])
async def test_streamed_upload_framing(declared: bool) -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        if b"transfer-encoding: chunked" in head:
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
            received.append(b"chunked:" + body)
        else:
            received.append(b"length:" + await reader.readexactly(content_length(head)))
        writer.write(OK)

    pieces = [b"a" * 70_000, b"b" * 5, b"c" * 300_000]
    total = sum(map(len, pieces))
    headers = [("Content-Length", str(total))] if declared else []
    async with Scripted(handler) as server:
        pool = client.Pool(connect_timeout_s=5)
        response = await client.request(pool, "POST", client.parse_target(server.url()), headers,
                                        _body(pieces), 5, 5)
        assert response.status == 200
        response.release()
        assert received == [(b"length:" if declared else b"chunked:") + b"".join(pieces)]
        pool.close()


async def test_large_response_is_read_whole_under_back_pressure() -> None:
    payload = bytes(range(256)) * 16 * 1024  # 4 MiB, well over the read high-water mark

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(payload) + payload)
        await writer.drain()
        await asyncio.sleep(1)

    async with Scripted(handler) as server:
        pool = client.Pool(connect_timeout_s=5)
        response = await client.request(pool, "GET", client.parse_target(server.url()), [], b"", 5, 5)
        received = bytearray()
        while chunk := await response.read_chunk():
            received += chunk
            await asyncio.sleep(0)  # a slow consumer
        assert bytes(received) == payload
        response.release()
        pool.close()
