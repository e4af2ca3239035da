"""caching.py without a server: what the send-wrapper stores (the size cap cannot be reached
through the mock, whose responses are small)."""

from __future__ import annotations

import asyncio
from typing import Any

from sluice.cache.memory import MemoryCache
from sluice.exchange import Exchange
from sluice.proxy import caching
from sluice.proxy.state import GatewayState

GW = GatewayState("a", "g", False, True, 0, 0, "fixed", 1, 0, "constant", {})


def _exchange() -> Exchange:
    return Exchange(log_id="01J", account_id="a", gateway_id="g", provider="openai", method="POST",
                    path="chat/completions", started_at=0.0)


def _relay(chunks: list[bytes], status: int = 200, complete: bool = True,
           **control: str) -> tuple[MemoryCache, list[dict[str, Any]], Exchange]:
    cache, sent, exchange = MemoryCache(64 * 1024 * 1024), [], _exchange()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        plan = caching.plan(cache, GW, {"cf-aig-cache-ttl": "60", **control}, "POST")
        assert plan is not None
        assert await plan.lookup(exchange, "", b'{"q":1}') is None
        wrapped = plan.recorder(send, exchange)
        await wrapped({"type": "http.response.start", "status": status,
                       "headers": [(b"content-type", b"application/json"), (b"date", b"x")]})
        for chunk in chunks:
            await wrapped({"type": "http.response.body", "body": chunk, "more_body": True})
        if complete:
            await wrapped({"type": "http.response.body", "body": b"", "more_body": False})

    asyncio.run(run())
    return cache, sent, exchange


def test_a_complete_2xx_response_is_stored_without_per_response_headers() -> None:
    cache, sent, exchange = _relay([b"ab", b"cd"])
    assert exchange.cache_status == "MISS"
    assert (b"cf-aig-cache-status", b"MISS") in sent[0]["headers"]
    [(entry, _)] = cache._entries.values()
    assert (entry.status, entry.body) == (200, b"abcd")
    assert entry.headers == (("content-type", "application/json"),)


def test_nothing_is_stored_when_incomplete_failed_or_too_large() -> None:
    assert len(_relay([b"ab"], complete=False)[0]) == 0
    assert len(_relay([b"ab"], status=500)[0]) == 0
    big = b"x" * (caching.MAX_ENTRY_BYTES // 2 + 1)
    cache, sent, _ = _relay([big, big])
    assert len(cache) == 0 and sum(len(m.get("body", b"")) for m in sent) == 2 * len(big)  # still relayed


def test_no_plan_without_ttl_or_with_skip() -> None:
    assert not caching.applies(GW, {})
    assert caching.plan(MemoryCache(1024), GW, {"cf-aig-cache-ttl": "0"}, "POST") is None
    skip = {"cf-aig-cache-ttl": "60", "cf-aig-skip-cache": "true"}
    assert caching.plan(MemoryCache(1024), GW, skip, "POST") is None
    assert caching.plan(MemoryCache(1024), GW, {"cf-aig-cache-ttl": "60"}, "DELETE") is None
    assert caching.plan(None, GW, {"cf-aig-cache-ttl": "60"}, "POST") is None
