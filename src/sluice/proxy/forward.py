"""The upstream leg: send the request to the provider, wait for its headers, relay the body.

Transport is ``client.py`` (a lean pooled HTTP/1.1 client; why not aiohttp: see there). Bytes pass
through untouched: no decompression, no cookies, no redirects followed, no headers added except
``host`` and framing. Responses are relayed chunk by chunk as they arrive.

Timeouts: connect = ``upstream_connect_timeout_s``; time to the response headers =
``upstream_first_byte_timeout_s`` or the request's ``cf-aig-request-timeout``; both → 504 / 2007.
Once streaming, a silence longer than that same timeout also ends the stream (an idle timeout, so a
hung provider cannot hold a connection forever).

Retries (connection failures and 5xx only, never timeouts: a hung provider would multiply the
wait) need the whole request body in hand, so they apply only to buffered bodies (see ``body.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable

from sluice.errors import UnforwardableRequest, UpstreamTimeout, UpstreamUnreachable
from sluice.proxy import client
from sluice.proxy.client import Response
from sluice.proxy.retry import RetryPolicy
from sluice.settings import Settings

# A pooled connection that turns out to be closed fails like this. One extra attempt, outside the
# retry policy, for buffered bodies: the common cause is a provider closing an idle keep-alive
# connection, not a half-processed request.
STALE_ERRORS = (client.StaleConnection,)
CONNECTION_ERRORS = (client.ClientError, OSError)


def attempts_allowed_stale(body: object) -> bool:
    return isinstance(body, (bytes, bytearray))


URL_CACHE_SIZE = 4096
# A response up to this size with a content-length is read whole and sent in one ASGI message
# (one send instead of two: measured); anything else is relayed chunk by chunk as it arrives.
WHOLE_BODY_MAX = 256 * 1024


class Upstream:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: client.Pool | None = None
        self._targets: dict[str, client.Target] = {}
        self.first_byte_s = settings.upstream_first_byte_timeout_s or None

    async def start(self) -> None:
        self.pool = client.Pool(connect_timeout_s=self.settings.upstream_connect_timeout_s or None,
                                keepalive_s=15.0)

    async def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def target(self, url: str) -> client.Target:
        target = self._targets.get(url)
        if target is None:
            try:
                target = client.parse_target(url)  # parsed once per URL: a measurable share otherwise
            except client.InvalidRequest as exc:
                raise UnforwardableRequest(str(exc)) from None
            if len(self._targets) >= URL_CACHE_SIZE:
                self._targets.clear()
            self._targets[url] = target
        return target

    async def open(self, method: str, url: str, headers: list[tuple[str, str]],
                   body: bytes | AsyncIterable[bytes],
                   timeout_s: float | None, retry: RetryPolicy) -> Response:
        """Send the request and wait for the response headers; the caller relays or releases it.

        Raises ``GatewayError`` 504 / 2007 (timeout), 502 / 2008 (connection failed) or 400 / 2002
        (a request that cannot be written). An upstream 4xx/5xx is returned like any response (the
        last attempt's, when retries run out).
        """
        assert self.pool is not None, "Upstream.start() was not called"
        target = self.target(url)
        wait_s = timeout_s if timeout_s is not None else self.first_byte_s
        attempts = retry.attempts if isinstance(body, (bytes, bytearray)) else 1
        stale_retried = False
        attempt = 0
        while attempt < attempts:
            attempt += 1
            try:
                response = await client.request(self.pool, method, target, headers, body, wait_s, wait_s)
            except TimeoutError:
                raise UpstreamTimeout() from None
            except client.InvalidRequest as exc:
                raise UnforwardableRequest(f"request cannot be forwarded: {exc}") from None
            except STALE_ERRORS:
                if not stale_retried and attempts_allowed_stale(body):
                    stale_retried = True  # a pooled keep-alive connection the provider had closed
                    attempt -= 1  # not counted against the retry policy
                    continue
                if attempt < attempts:
                    await asyncio.sleep(retry.delay_s(attempt))
                    continue
                raise UpstreamUnreachable() from None
            except CONNECTION_ERRORS:
                if attempt < attempts:
                    await asyncio.sleep(retry.delay_s(attempt))
                    continue
                raise UpstreamUnreachable() from None
            if response.status >= 500 and attempt < attempts:
                response.close()
                await asyncio.sleep(retry.delay_s(attempt))
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover — the loop always returns or raises

    @staticmethod
    async def relay(response: Response, send: Callable[[dict], Awaitable[None]],
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
            while chunk := await response.read_chunk():
                if tap is not None:
                    tap(chunk)
                if response.at_end:  # the last piece ends the answer: one write, not two (measured)
                    response.release()
                    await send({"type": "http.response.body", "body": chunk, "more_body": False})
                    return True
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


def _is_event_stream(response: Response) -> bool:
    return (response.content_type or "").startswith("text/event-stream")
