"""The upstream leg of a pooled request (docs/gateway.md "Key pools"): open with the chosen key; when
the provider refuses that key (401, 402, 403, 429), mark it (``sluice.keyhealth``) and send the
request once more with the next usable key of the pool.

The retry happens only while nothing was sent to the client and only with a buffered body (a body
streamed upstream as it arrived cannot be sent twice). The refused answer is read whole (it is an
error answer to a stored key: masked before anyone sees it, ``errorbody.py``); when the retry is
answered, the client never sees the refused answer. When no retry is possible, or the retry is refused
too, the last answer is relayed, masked as usual.

The next key's own ``rate_limit`` must admit the retry (a key whose limit refuses is passed over);
the gateway's limit counted the request once, and the refused key's hit stays counted (it was used).
The refused attempt gets a request log of its own (its key, status and body; ``error`` names the key
the request moved to and the log of the answer), and counts as a use of its key (key activity).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass

from sluice.clock import new_ulid
from sluice.errors import GatewayError, KeyRateLimited
from sluice.exchange import Exchange, Observer
from sluice.keyhealth import FAILOVER_STATUSES, KeyHealth, verdict
from sluice.proxy import errorbody, pools
from sluice.proxy.client import Response
from sluice.proxy.forward import Upstream
from sluice.proxy.headers import with_stored_key
from sluice.proxy.limits import admit
from sluice.proxy.retry import RetryPolicy
from sluice.proxy.state import GatewayState, StoredKey
from sluice.ratelimit.base import RateLimiter


@dataclass(frozen=True, slots=True)
class Opened:
    response: Response
    key: StoredKey  # the key the answer came with
    raw: bytes | None = None  # the answer's body, already read whole (a refusal being relayed)


@dataclass(frozen=True, slots=True)
class Leg:
    """One request's upstream leg, as ``forward.Upstream.open`` takes it."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | AsyncIterable[bytes]
    timeout_s: float | None
    retry: RetryPolicy


class Failover:
    def __init__(self, upstream: Upstream, limiter: RateLimiter, health: KeyHealth) -> None:
        self.upstream = upstream
        self.limiter = limiter
        self.health = health

    async def open(self, leg: Leg, key: StoredKey, pool: pools.Pool, gateway: GatewayState,
                   strip: frozenset[str], extra: tuple[tuple[str, str], ...], exchange: Exchange,
                   observer: Observer) -> Opened:
        response = await self._send(leg, leg.headers)
        refused = await self._refused(response, key, gateway)
        if refused is None:
            return Opened(response, key)
        reason, raw = refused
        # A streamed body cannot be sent again.
        retryable = isinstance(leg.body, (bytes, bytearray))
        following = await self._admitted(pools.others(pool, key, self.health)) if retryable else None
        if following is None:
            return Opened(response, key, _relayable(raw))
        await self._record_attempt(exchange, observer, response, key, following, reason, raw or b"")
        headers = with_stored_key(leg.headers, strip, (following.auth_header, following.auth_value), extra)
        exchange.alias, exchange.config_id = following.alias, following.config_id
        retried = await self._send(leg, headers)
        again = await self._refused(retried, following, gateway)
        return Opened(retried, following, _relayable(again[1]) if again is not None else None)

    async def _send(self, leg: Leg, headers: list[tuple[str, str]]) -> Response:
        return await self.upstream.open(leg.method, leg.url, headers, leg.body, leg.timeout_s, leg.retry)

    async def _refused(self, response: Response, key: StoredKey, gateway: GatewayState
                       ) -> tuple[str, bytes | None] | None:
        """When the answer refuses the key: mark it, and return the reason and the body read whole
        (None when larger than ``errorbody.ERROR_BODY_MAX``: it cannot be relayed)."""
        if response.status not in FAILOVER_STATUSES:
            return None
        raw = await errorbody.read_capped(response, errorbody.ERROR_BODY_MAX)
        found = verdict(response.status, _header(response, b"retry-after"), raw or b"", gateway.quota_cool_s,
                        self.health.clock())
        if found is None:  # pragma: no cover — every failover status has a verdict
            return None
        self.health.apply(key.config_id, key.provider, found)
        return found.reason, raw

    async def _admitted(self, candidates: list[StoredKey]) -> StoredKey | None:
        for candidate in candidates:
            try:
                await admit(self.limiter, None, candidate)
            except KeyRateLimited:
                continue  # its own limit refuses the retry: the next one may take it
            return candidate
        return None

    @staticmethod
    async def _record_attempt(exchange: Exchange, observer: Observer, response: Response, key: StoredKey,
                              following: StoredKey, reason: str, raw: bytes) -> None:
        """The refused attempt's own record: a request log, a use of its key, a failover in metrics.
        Its body is logged decoded (the log writer masks stored values in it)."""
        logged = b""
        if exchange.collect_payload and exchange.key_matcher is not None:
            try:
                checked = await errorbody.check_soon(list(response.raw_headers), raw, exchange.key_matcher)
                logged = checked.logged
            except GatewayError:
                logged = b""  # a coding Sluice cannot decode: the body is not logged
        attempt = dataclasses.replace(
            exchange, log_id=new_ulid(), alias=key.alias, config_id=key.config_id,
            status_code=response.status, success=False, failover=reason,
            duration_ms=int((time.time() - exchange.started_at) * 1000),
            response_body=logged, response_size=len(raw),
            response_content_type=response.content_type,
            error=f"stored key {key.alias!r} refused ({reason}, HTTP {response.status}); retried with "
                  f"stored key {following.alias!r} (log {exchange.log_id})")
        observer.record(attempt)


def _relayable(raw: bytes | None) -> bytes:
    if raw is None:  # read_capped gave up: the answer is gone and could not have been checked anyway
        raise errorbody.unreadable(f"larger than {errorbody.ERROR_BODY_MAX} bytes")
    return raw


def _header(response: Response, name: bytes) -> str | None:
    for key, value in response.raw_headers:
        if key == name:
            return value.decode("latin-1")
    return None
