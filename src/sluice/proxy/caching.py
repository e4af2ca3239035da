"""The response cache on the data plane (docs/observability.md#response-cache): look up before
forwarding, store after relaying. Keys and rules live in ``sluice/cache``; this module applies them
to one request.

Cost when a request does not use the cache (gateway ``cache_ttl`` 0 and no ``cf-aig-cache-ttl`` /
``cf-cache-ttl`` / ``cf-aig-cache-key``): ``applies`` only — an attribute read and three dict
lookups. No hashing, no
body copy, no wrapper around ``send``.

A miss is stored by wrapping ``send``: the response start and body chunks pass through unchanged
(plus ``cf-aig-cache-status: MISS``), are collected up to ``MAX_ENTRY_BYTES``, and are stored only
once the final chunk has gone out — a stream the provider broke off, or a client that left, never
reaches the final chunk, so an incomplete response is never stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from sluice.cache.base import CachedResponse, ResponseCache
from sluice.cache.keys import cache_key
from sluice.cache.rules import (
    cacheable_request,
    cacheable_response,
    effective_ttl,
    skip_cache,
    storable_headers,
)
from sluice.exchange import Exchange
from sluice.proxy.state import GatewayState

log = structlog.get_logger("sluice.proxy")

MAX_ENTRY_BYTES = 8 * 1024 * 1024  # a larger response is relayed as usual but not stored
HIT = (b"cf-aig-cache-status", b"HIT")
MISS = (b"cf-aig-cache-status", b"MISS")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Taps = tuple[Callable[[bytes], None], Callable[[], None]]


def applies(gateway: GatewayState, control: Mapping[str, str]) -> bool:
    """The hot-path gate: could this request use the cache at all?"""
    return gateway.cache_ttl > 0 or "cf-aig-cache-ttl" in control or "cf-aig-cache-key" in control \
        or "cf-cache-ttl" in control  # the deprecated alias, still honoured


def plan(cache: ResponseCache | None, gateway: GatewayState, control: Mapping[str, str],
         method: str) -> CachePlan | None:
    """The request's cache plan, or None: no cache, TTL off (e.g. ``cf-aig-cache-ttl: 0``),
    ``cf-aig-skip-cache`` (no lookup and no store), or a method that is never cached."""
    if cache is None or skip_cache(control) or not cacheable_request(method, 0):
        return None
    ttl = effective_ttl(gateway.cache_ttl, control)
    if ttl is None:
        return None
    return CachePlan(cache, ttl, control.get("cf-aig-cache-key"))


class CachePlan:
    __slots__ = ("cache", "custom_key", "key", "ttl")

    def __init__(self, cache: ResponseCache, ttl: int, custom_key: str | None) -> None:
        self.cache = cache
        self.ttl = ttl
        self.custom_key = custom_key
        self.key: str | None = None  # set by lookup when the request can be cached

    async def lookup(self, exchange: Exchange, query: str, body: object) -> CachedResponse | None:
        """The stored response, or None (a miss, or a request that cannot be cached).

        Only buffered bodies (≤ 1 MiB, see ``body.py``) can be keyed: a streamed body is never
        held whole, so such a request bypasses the cache.
        """
        if not isinstance(body, bytes) or not cacheable_request(exchange.method, len(body)):
            return None
        self.key = cache_key(exchange.account_id, exchange.gateway_id, exchange.provider, exchange.method,
                             exchange.path, query, body, self.custom_key)
        try:
            return await self.cache.get(self.key)
        except Exception as exc:  # noqa: BLE001 — a broken cache is a miss, never a failed request
            log.error("cache lookup failed", error=type(exc).__name__)
            return None

    def recorder(self, send: Send, exchange: Exchange) -> Send:
        """``send`` that also stores the response (a miss); ``send`` itself if nothing can be stored."""
        if self.key is None:
            return send
        exchange.cache_status = "MISS"
        return _Recorder(send, self.cache, self.key, self.ttl)


async def serve(send: Send, entry: CachedResponse, exchange: Exchange, taps: Taps | None) -> None:
    """Answer from the cache. No stored key is used, so the exchange names none."""
    exchange.cached = True
    exchange.cache_status = "HIT"
    exchange.alias = exchange.config_id = None
    exchange.status_code = entry.status
    exchange.success = entry.status < 400
    content_type = next((v for k, v in entry.headers if k == "content-type"), None)
    exchange.response_content_type = content_type
    exchange.stream = bool(content_type and content_type.startswith("text/event-stream"))
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in entry.headers]
    headers += [(b"content-length", str(len(entry.body)).encode()), HIT,
                (b"cf-aig-log-id", exchange.log_id.encode())]
    await send({"type": "http.response.start", "status": entry.status, "headers": headers})
    await send({"type": "http.response.body", "body": entry.body, "more_body": False})
    if taps is not None:  # usage and body for the request log, read from the stored bytes
        taps[0](entry.body)
        taps[1]()


class _Recorder:
    __slots__ = ("cache", "chunks", "headers", "key", "send", "size", "status", "ttl")

    def __init__(self, send: Send, cache: ResponseCache, key: str, ttl: int) -> None:
        self.send = send
        self.cache = cache
        self.key = key
        self.ttl = ttl
        self.status = 0
        self.headers: tuple[tuple[str, str], ...] = ()
        self.chunks: list[bytes] | None = []  # None: this response will not be stored
        self.size = 0

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            raw = message.get("headers") or []
            if cacheable_response(self.status):
                self.headers = storable_headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)
            else:
                self.chunks = None
            await self.send({**message, "headers": [*raw, MISS]})
            return
        chunk = message.get("body", b"")
        if self.chunks is not None and chunk:
            self.size += len(chunk)
            if self.size > MAX_ENTRY_BYTES:
                self.chunks = None
            else:
                self.chunks.append(chunk)
        await self.send(message)
        if not message.get("more_body", False) and self.chunks is not None:
            await self._store()

    async def _store(self) -> None:
        # After the final chunk went out: the client never waits for the store.
        entry = CachedResponse(self.status, self.headers, b"".join(self.chunks or ()))
        self.chunks = None
        try:
            await self.cache.set(self.key, entry, self.ttl)
        except Exception as exc:  # noqa: BLE001 — the response was delivered; only the entry is lost
            log.error("cache store failed", error=type(exc).__name__)
