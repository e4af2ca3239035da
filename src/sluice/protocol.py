"""uvicorn's httptools protocol with the limits a public server needs (docs/security.md, "Slow and
oversized clients"): request line + headers capped in bytes and in count (431), a deadline for the
request head and for each pause in a body (408), and a cap on open connections (503).

uvicorn bounds none of these for httptools; a client could hold a socket forever or make httptools
buffer an endless header. The per-request cost is kept to a few integer operations: deadlines are
counted in ticks of one process-wide ``Watchdog`` timer, not armed as a timer per request.

Started by ``sluice serve`` as ``uvicorn --http sluice.protocol:LimitedHttpToolsProtocol``.
"""

from __future__ import annotations

import asyncio
import math
import resource
from dataclasses import dataclass
from typing import Any

import httptools
import structlog
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from sluice.proxy.paths import FRAGMENT_KEY
from sluice.settings import Settings, load_settings

log = structlog.get_logger("sluice.protocol")

TICK_S = 0.25  # deadline resolution: a connection is closed at most this late
FD_RESERVE = 64  # file descriptors kept for the database, upstream connections and logs


class HeadTooLarge(Exception):
    """Raised from a parser callback: the request head is over a limit (answered 431)."""


@dataclass(frozen=True)
class Limits:
    header_max_bytes: int
    header_max_count: int
    header_ticks: int
    body_ticks: int
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.header_max_bytes, settings.header_max_count,
                   math.ceil(settings.header_timeout_s / TICK_S), math.ceil(settings.body_timeout_s / TICK_S),
                   connection_cap(settings.max_connections))


def connection_cap(wanted: int) -> int:
    """``wanted``, after raising the soft open-files limit to fit it; lower if the hard limit is lower:
    at the fd limit the server could not accept even a health check."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        cap = max(1, soft - FD_RESERVE)
        log.warning("connection cap lowered to fit the open-files limit", cap=cap, open_files_limit=soft,
                    setting="SLUICE_MAX_CONNECTIONS")
        return cap
    return wanted


class Watchdog:
    """One per process: advances ``tick`` every TICK_S and closes connections past their deadline."""

    def __init__(self, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        self.tick = 1
        self._loop = loop
        self._connections = connections
        loop.call_later(TICK_S, self._run)

    def _run(self) -> None:
        self.tick += 1
        tick = self.tick
        for conn in tuple(self._connections):
            deadline = getattr(conn, "deadline", 0)
            if deadline and deadline <= tick:
                conn.expire(tick)
        self._loop.call_later(TICK_S, self._run)


def _response(status: int, reason: bytes) -> bytes:
    return b"".join([STATUS_LINE[status], b"content-type: text/plain; charset=utf-8\r\n",
                     b"content-length: ", str(len(reason)).encode(),
                     b"\r\nconnection: close\r\n\r\n", reason])


HEAD_TOO_LARGE = _response(431, b"Request header fields too large")
HEAD_TIMEOUT = _response(408, b"Request header timeout")
BODY_TIMEOUT = _response(408, b"Request body timeout")
TOO_MANY_CONNECTIONS = _response(503, b"Too many open connections")


class HeadWithBody:
    """The transport as one response cycle sees it: the response head (the cycle's first write) is
    held until the body's first write, then both go in one write; or, if the body is not ready in
    this turn of the event loop, the head goes alone at the end of the turn.

    uvicorn writes the head and the body separately: two ``send`` calls and two TCP segments for
    every answer. An answer whose body is at hand (most of them) now costs one."""

    __slots__ = ("_held", "_loop", "_started", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        if not self._started:
            self._started = True
            self._held = data
            self._loop.call_soon(self.flush)
            return
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        self.transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self.transport.is_closing():
                self.transport.write(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits: Limits | None = None  # loaded once per process, at the first connection
    watchdog: Watchdog | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = LimitedHttpToolsProtocol
        if cls.limits is None:
            cls.limits = Limits.from_settings(load_settings())
        if cls.watchdog is None:
            cls.watchdog = Watchdog(self.loop, self.connections)
        limits = cls.limits
        self._watchdog = cls.watchdog
        self._header_max_bytes = limits.header_max_bytes
        self._header_max_count = limits.header_max_count
        self._header_ticks = limits.header_ticks
        self._body_ticks = limits.body_ticks
        self._max_connections = limits.max_connections
        self.deadline = 0  # watchdog tick at which this connection is closed; 0: none
        self._reading_head = True  # bytes now arriving belong to a request line or headers
        self._head_bytes = 0  # bytes received while reading the head (bounds httptools' buffering)
        self._message_begun = False  # the current request's first byte has been parsed
        self._head_uncounted = False  # the head began inside a chunk that was not counted (pipelining)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._max_connections:
            self._refuse(TOO_MANY_CONNECTIONS)
            return
        self.deadline = self._watchdog.tick + self._header_ticks  # also closes a silent connection

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            if not self._message_begun:
                self._head_uncounted = False  # the head starts in this chunk: it is counted whole
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                self._refuse(HEAD_TOO_LARGE)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        # A head still incomplete after this much: refused before httptools buffers more of it.
        over = self._head_bytes > self._header_max_bytes
        if self._reading_head and over and not self.transport.is_closing():
            self._refuse(HEAD_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._message_begun = True
        self.deadline = self._watchdog.tick + self._header_ticks

    def on_headers_complete(self) -> None:
        # Integer checks only, as a rule: the exact size is summed only when the bytes received say
        # the head may be over the limit (or were not all counted).
        if len(self.headers) > self._header_max_count or (
                (self._head_bytes > self._header_max_bytes or self._head_uncounted)
                and self._head_size() > self._header_max_bytes):
            raise HeadTooLarge()
        self._reading_head = False
        self.deadline = self._watchdog.tick + self._body_ticks  # cleared at once when there is no body
        if b"#" in self.url:  # httptools drops a fragment from the ASGI path; the data plane refuses it
            self.scope[FRAGMENT_KEY] = True  # type: ignore[literal-required]
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not None and self.cycle is not before:  # a new cycle, whose task has not run yet
            self.cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) for name, value in self.headers)

    def on_body(self, body: bytes) -> None:
        self.deadline = self._watchdog.tick + self._body_ticks  # a pause, not the whole body, is timed
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.deadline = 0
        self._reading_head = True
        self._head_bytes = 0
        self._message_begun = False
        self._head_uncounted = True  # unless the next head starts a new chunk (see data_received)
        super().on_message_complete()

    def expire(self, tick: int) -> None:
        """Called by the watchdog when the deadline has passed."""
        if self.flow.read_paused:  # the app is not reading yet (back-pressure): not the client's fault
            self.deadline = tick + self._body_ticks
            return
        self.deadline = 0
        if self.transport.is_closing():
            return
        if self._reading_head:
            if self.cycle is not None and not self.cycle.response_complete:
                # a pipelined head behind a response still being sent (a stream): writing a 408 now
                # would cut into that response; its head is timed once the response is done
                self.deadline = tick + self._header_ticks
            elif self._head_bytes:
                self._refuse(HEAD_TIMEOUT)
            else:
                self.transport.close()  # nothing sent at all: just hang up
        elif self.cycle is None or not self.cycle.response_started:
            self._refuse(BODY_TIMEOUT)
        else:
            self.transport.close()

    def _refuse(self, response: bytes) -> None:
        self.deadline = 0
        self.transport.write(response)
        self.transport.close()
