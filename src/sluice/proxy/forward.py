"""The only module that talks to upstream providers: one pooled aiohttp session for the process.

Bytes pass through untouched (``auto_decompress=False``, no cookie jar, no redirects followed, no
headers added by the client library except ``Host`` and framing). Responses are relayed chunk by
chunk as they arrive.

Timeouts: connect = ``upstream_connect_timeout_s``; time to the response headers =
``upstream_first_byte_timeout_s`` or the request's ``cf-aig-request-timeout``; both → 504 / 2007.
Once streaming, a silence longer than the larger of the two also ends the stream (an idle timeout,
so a hung provider cannot hold a connection forever).

Retries (connection failures and 5xx only, never timeouts: a hung provider would multiply the
wait) need the whole request body in hand, so they apply only to buffered bodies (see ``body.py``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, AsyncIterable, Awaitable, Callable

import aiohttp
from yarl import URL

from sluice.errors import GatewayError
from sluice.settings import Settings

# Transport-level failures: connection refused/reset, DNS, a connection closed before the answer.
CONNECTION_ERRORS = (aiohttp.ClientError, OSError)
# A pooled connection that turns out to be closed fails like this (aiohttp re-tries it by itself only
# for idempotent methods). One extra attempt, outside the retry policy, for buffered bodies: the
# common cause is a provider closing an idle keep-alive connection, not a half-processed request.
STALE_ERRORS = (aiohttp.ServerDisconnectedError,)


def attempts_allowed_stale(body: object) -> bool:
    return isinstance(body, (bytes, bytearray))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 1  # total attempts, 1..5
    delay_ms: int = 0
    backoff: str = "constant"  # constant | linear | exponential

    def delay_s(self, retry: int) -> float:
        """Pause before retry number ``retry`` (1 = the first retry)."""
        if self.backoff == "linear":
            return self.delay_ms * retry / 1000
        if self.backoff == "exponential":
            return self.delay_ms * (2 ** (retry - 1)) / 1000
        return self.delay_ms / 1000


NO_RETRY = RetryPolicy()
URL_CACHE_SIZE = 4096
# A response up to this size with a content-length is read whole and sent in one ASGI message
# (one send instead of two: measured); anything else is relayed chunk by chunk as it arrives.
WHOLE_BODY_MAX = 256 * 1024


def timeout_error() -> GatewayError:
    return GatewayError(504, 2007, "upstream timeout: the provider did not answer in time")


def unreachable_error() -> GatewayError:
    return GatewayError(502, 2008, "upstream unreachable: the connection to the provider failed")


class Upstream:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}
        self.first_byte_s = settings.upstream_first_byte_timeout_s or None
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.upstream_connect_timeout_s or None,
            sock_connect=settings.upstream_connect_timeout_s or None, sock_read=self.first_byte_s,
        )

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=1024, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=15)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(), skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            raise_for_status=False,
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def open(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | AsyncIterable[bytes],
                   timeout_s: float | None, retry: RetryPolicy) -> aiohttp.ClientResponse:
        """Send the request and wait for the response headers; the caller relays or releases it.

        Raises ``GatewayError`` 504 / 2007 (timeout) or 502 / 2008 (connection failed). An upstream
        4xx/5xx is returned like any response (the last attempt's, when retries run out).
        """
        assert self.session is not None, "Upstream.start() was not called"
        target = self._urls.get(url)
        if target is None:
            target = URL(url, encoded=True)  # parsing is a measurable share of a request: cached
            if len(self._urls) >= URL_CACHE_SIZE:
                self._urls.clear()
            self._urls[url] = target
        attempts = retry.attempts if isinstance(body, (bytes, bytearray)) else 1
        options: dict[str, Any] = {"headers": headers, "data": body, "allow_redirects": False}
        if timeout_s is not None:
            # aiohttp's sock_read bounds the wait for the response headers (and any later silence)
            options["timeout"] = aiohttp.ClientTimeout(total=None, connect=self._timeout.connect,
                                                       sock_connect=self._timeout.sock_connect, sock_read=timeout_s)
        stale_retried = False
        attempt = 0
        while attempt < attempts:
            attempt += 1
            try:
                response = await self.session.request(method, target, **options)
            except TimeoutError:  # aiohttp's connect/read timeouts are TimeoutErrors too
                raise timeout_error() from None
            except STALE_ERRORS:
                if not stale_retried and attempts_allowed_stale(body):
                    stale_retried = True  # a pooled keep-alive connection the provider had closed
                    attempt -= 1  # not counted against the retry policy
                    continue
                if attempt < attempts:
                    await asyncio.sleep(retry.delay_s(attempt))
                    continue
                raise unreachable_error() from None
            except CONNECTION_ERRORS:
                if attempt < attempts:
                    await asyncio.sleep(retry.delay_s(attempt))
                    continue
                raise unreachable_error() from None
            if response.status >= 500 and attempt < attempts:
                response.close()
                await asyncio.sleep(retry.delay_s(attempt))
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover — the loop always returns or raises

    @staticmethod
    async def relay(response: aiohttp.ClientResponse, send: Callable[[dict], Awaitable[None]],
                    tap: Callable[[bytes], None] | None) -> bool:
        """Copy the response body to the client as it arrives; False when the upstream broke off.

        On a break the client's response is left unfinished (no final chunk), so the client sees
        an error rather than a silently truncated answer.
        """
        try:
            length = response.content_length
            if length is not None and length <= WHOLE_BODY_MAX and not _is_event_stream(response):
                body = await response.read()
                if tap is not None:
                    tap(body)
                response.release()
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return True
            async for chunk in response.content.iter_any():
                if tap is not None:
                    tap(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (*CONNECTION_ERRORS, TimeoutError):
            response.close()
            return False
        except BaseException:
            response.close()  # cancelled (client gone): drop the connection, never pool a half-read one
            raise
        response.release()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True


def _is_event_stream(response: aiohttp.ClientResponse) -> bool:
    return response.headers.get("content-type", "").startswith("text/event-stream")
