"""A lean HTTP/1.1 client for the upstream leg: asyncio protocol + httptools' parser, pooled.

Why not aiohttp's client: it was the largest single cost of a proxied request (~⅓ of the
gateway's CPU under load: request/response objects, multidicts, URL handling, timers and tracing
hooks per request). The upstream leg needs much less — one request line and header block written
in one call, a response parser, keep-alive reuse — so this module does exactly that, on the same
C parser uvicorn uses (httptools/llhttp). See docs/performance.md for the measurement.

What it does: ``http``/``https`` (TLS via the standard ``ssl`` module, system CAs), keep-alive
pooling per origin (idle connections dropped after ``keepalive_s`` or when the peer closes
them), bodies as bytes (``Content-Length``) or an async iterable (the caller's
``Content-Length`` if it declared one, else chunked), responses framed by length, chunked encoding
or connection close, 1xx responses skipped, read back-pressure (reading pauses while more than
``HIGH_WATER`` bytes wait for the consumer). Response header names are lower-cased. Not needed
upstream and not done: redirects, cookies, decompression, proxies, HTTP/2.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

HIGH_WATER = 256 * 1024  # response bytes buffered before reading pauses
MAX_IDLE_PER_ORIGIN = 256
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # send Content-Length: 0 for an empty body


class ClientError(Exception):
    """The upstream exchange failed at the transport or protocol level (no usable response)."""


class StaleConnection(ClientError):
    """A pooled keep-alive connection was closed by the peer before it answered."""


class InvalidRequest(ValueError):
    """The request cannot be written as HTTP/1.1 (e.g. a line break in a header value)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One upstream URL, parsed once: where to connect and what to write in the request line."""

    key: tuple[str, str, int]  # (scheme, host, port): the pool's origin key
    host: str
    port: int
    tls: bool
    request_target: bytes  # path?query
    host_header: bytes


def parse_target(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"unsupported upstream URL scheme or host: {parts.scheme!r}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = parts.path or "/"
    target = f"{path}?{parts.query}" if parts.query else path
    if any(c in target for c in " \r\n\t"):
        raise InvalidRequest("the upstream path holds whitespace")
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == (443 if tls else 80) else f"{shown}:{port}"
    return Target((parts.scheme, host, port), host, port, tls, target.encode("latin-1"),
                  host_header.encode("idna"))


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; carries one exchange at a time."""

    def __init__(self, pool: Pool, key: tuple[str, str, int]) -> None:
        self.pool = pool
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None
        self.drain_waiter: asyncio.Future | None = None
        self.write_paused = False
        self.reading_paused = False
        self.lost = False
        self.error: Exception | None = None
        self.reused = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_type: str | None = None
        self.content_length: int | None = None
        self.chunked = False
        self.headers_done = False
        self.complete = False
        self.got_bytes = False
        self.keep_alive = False
        self.skip_body = False  # HEAD: the response has no body whatever its headers say
        self.chunks: deque[bytes] = deque()
        self.buffered = 0

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(ClientError("malformed HTTP response from upstream"))
            self.transport.close()  # type: ignore[union-attr]

    def eof_received(self) -> bool | None:
        return False  # close the transport (connection_lost follows)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.headers_done and not self.complete and self.content_length is None and not self.chunked:
            self.complete = True  # a body delimited by the connection's close
            self._wake()
        elif not self.complete:
            stale = self.reused and not self.got_bytes
            self._fail(StaleConnection("pooled connection closed by upstream") if stale
                       else ClientError("upstream closed the connection"))
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_exception(ClientError("upstream closed the connection"))

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    # -- httptools callbacks -----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.headers = []
        self.content_type = None
        self.content_length = None
        self.chunked = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers_done:
            return  # trailers: not relayed
        name = name.lower()
        self.headers.append((name, value))
        if name == b"content-type":
            self.content_type = value.decode("latin-1")
        elif name == b"content-length":
            self.content_length = int(value) if value.isdigit() else None
        elif name == b"transfer-encoding":
            self.chunked = b"chunked" in value.lower()

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            return  # 1xx (e.g. 103 Early Hints): the real response follows
        self.status = status
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it once the message ends
        if self.skip_body:
            self.complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.skip_body:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.headers_done:
            self.complete = True
            self._wake()

    # -- the exchange ------------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self.error is None:
            self.error = exc
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def _wait(self, timeout_s: float | None) -> None:
        waiter = self.loop.create_future()
        self.waiter = waiter
        timer = self.loop.call_later(timeout_s, _expire, waiter) if timeout_s else None
        try:
            await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()

    async def send(self, method: str, target: Target, headers: list[tuple[str, str]],
                   body: bytes | AsyncIterable[bytes]) -> None:
        lines = [f"{method} ".encode("latin-1"), target.request_target, b" HTTP/1.1\r\nhost: ",
                 target.host_header]
        declared = False
        for name, value in headers:
            if name.lower() == "content-length":
                declared = True
            try:
                lines.append(f"\r\n{name}: {value}".encode("latin-1"))
            except UnicodeEncodeError:
                raise InvalidRequest("a header value is not Latin-1 text") from None
        payload = body if isinstance(body, (bytes, bytearray)) else None  # None: streamed
        breaks = 3 + len(headers)  # line breaks written: request line, headers, the blank line
        if payload is None:
            if not declared:
                lines.append(b"\r\ntransfer-encoding: chunked")
                breaks += 1
        elif payload or method in BODY_METHODS:
            lines.append(b"\r\ncontent-length: %d" % len(payload))
            breaks += 1
        lines.append(b"\r\n\r\n")
        head = b"".join(lines)
        # A CR or LF inside a name or value would forge headers: count them (cheap, in C).
        if head.count(b"\n") != breaks or head.count(b"\r") != breaks:
            raise InvalidRequest("a header name or value holds a line break")
        self.skip_body = method == "HEAD"
        transport = self.transport
        assert transport is not None
        if payload is not None:
            transport.write(head + payload if payload else head)
            return
        transport.write(head)
        async for chunk in body:  # type: ignore[union-attr]
            if not chunk:
                continue
            if self.lost:
                raise self.error or ClientError("upstream closed the connection")
            transport.write(chunk if declared else b"%x\r\n%b\r\n" % (len(chunk), chunk))
            if self.write_paused:
                self.drain_waiter = self.loop.create_future()
                try:
                    await self.drain_waiter
                finally:
                    self.drain_waiter = None
        if not declared:
            transport.write(b"0\r\n\r\n")

    async def response_head(self, timeout_s: float | None) -> None:
        """Wait for the status line and headers (``TimeoutError`` after ``timeout_s``)."""
        while not self.headers_done:
            if self.error is not None:
                raise self.error
            await self._wait(timeout_s)

    async def read_chunk(self, timeout_s: float | None) -> bytes:
        """The next piece of the body; ``b""`` at its end. ``TimeoutError`` after ``timeout_s`` of silence."""
        while not self.chunks:
            if self.complete:
                return b""
            if self.error is not None:
                raise self.error
            await self._wait(timeout_s)
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.reading_paused and self.buffered <= HIGH_WATER // 4 and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return chunk

    def reusable(self) -> bool:
        return self.complete and not self.lost and self.error is None and not self.chunks \
            and not self.skip_body and self.keep_alive

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()


class Response:
    """The upstream's answer: status and headers in hand, the body read on demand."""

    __slots__ = (
        "_conn",
        "_done",
        "_pool",
        "_read_timeout_s",
        "content_length",
        "content_type",
        "raw_headers",
        "status",
    )

    def __init__(self, conn: Connection, pool: Pool, read_timeout_s: float | None) -> None:
        self._conn = conn
        self._pool = pool
        self.status = conn.status
        self.raw_headers = conn.headers  # lower-cased names, as received
        self.content_type = conn.content_type
        self.content_length = conn.content_length
        self._read_timeout_s = read_timeout_s
        self._done = False

    async def read(self) -> bytes:
        conn = self._conn
        if conn.complete and len(conn.chunks) <= 1:  # the common case: it all came with the headers
            body = conn.chunks.popleft() if conn.chunks else b""
            conn.buffered = 0
            return body
        parts = []
        while chunk := await conn.read_chunk(self._read_timeout_s):
            parts.append(chunk)
        return b"".join(parts)

    async def read_chunk(self) -> bytes:
        """The next piece of the body; ``b""`` at its end. Not an async generator on purpose: one
        left before its end (the relay returns on the last piece) is closed by a task of its own
        that asyncio starts, once per stream (measured)."""
        return await self._conn.read_chunk(self._read_timeout_s)

    @property
    def at_end(self) -> bool:
        """The whole body has arrived and been read: the next read would return ``b""``."""
        return self._conn.complete and not self._conn.chunks

    def release(self) -> None:
        """Done with the response: a fully read connection goes back to the pool, others close."""
        if not self._done:
            self._done = True
            self._pool.release(self._conn)

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._conn.close()


class Pool:
    """Keep-alive connections per origin, most recently used first."""

    def __init__(self, *, connect_timeout_s: float | None, keepalive_s: float = 15.0,
                 max_idle_per_origin: int = MAX_IDLE_PER_ORIGIN,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.keepalive_s = keepalive_s
        self.max_idle = max_idle_per_origin
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self.opened = 0  # connections ever opened (tests and metrics)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def take_idle(self, target: Target) -> Connection | None:
        """A pooled connection to the target's origin that is still open, or None."""
        idle = self._idle.get(target.key)
        if idle:
            now = time.monotonic()
            while idle:
                conn = idle.pop()
                if not conn.lost and now - conn.idle_since < self.keepalive_s and conn.transport is not None \
                        and not conn.transport.is_closing():
                    conn.reused = True
                    return conn
                conn.close()
        return None

    async def connect(self, target: Target) -> Connection:
        """A new connection (``ClientError`` when it cannot be made; ``TimeoutError`` after the connect
        timeout)."""
        loop = asyncio.get_running_loop()
        connect = loop.create_connection(
            lambda: Connection(self, target.key), target.host, target.port,
            ssl=self._ssl_context() if target.tls else None,
            server_hostname=target.host if target.tls else None)
        try:
            if self.connect_timeout_s:
                _, conn = await asyncio.wait_for(connect, self.connect_timeout_s)
            else:
                _, conn = await connect
        except (OSError, ssl.SSLError) as exc:
            raise ClientError(f"connect failed: {type(exc).__name__}") from None
        self.opened += 1
        return conn

    def release(self, conn: Connection) -> None:
        if not conn.reusable():
            conn.close()
            return
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) >= self.max_idle:
            conn.close()
            return
        conn._reset()
        conn.reused = False
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def idle_count(self) -> int:
        return sum(1 for conns in self._idle.values() for c in conns if not c.lost)

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


async def request(pool: Pool, method: str, target: Target, headers: list[tuple[str, str]],
                  body: bytes | AsyncIterable[bytes], first_byte_timeout_s: float | None,
                  read_timeout_s: float | None) -> Response:
    """Send one request and return once the response headers are in.

    Raises ``StaleConnection`` (a reused connection the peer had closed), ``ClientError``
    (connect/transport/protocol failure), ``TimeoutError`` or ``InvalidRequest``. On any failure the
    connection is closed, never pooled.
    """
    conn = pool.take_idle(target) or await pool.connect(target)
    try:
        await conn.send(method, target, headers, body)
        await conn.response_head(first_byte_timeout_s)
    except BaseException:
        conn.close()
        raise
    return Response(conn, pool, read_timeout_s)
