"""The data plane: ``/v1/{account_id}/{gateway_id}/{provider_slug}/{path…}`` → the provider (docs/gateway.md).

Raw ASGI on purpose (this is the hot path). Per request: route against in-memory state, choose the
credential (``credentials.py``), check rate limits (gateway first, then the key), read the body
(``body.py``), forward and relay (``forward.py``), and hand one ``Exchange`` to the observer.
No database query and no decryption happen here.

Rate limits (``limits.py``): every limit of a request is decided in one step, the gateway's first. A
request the key limit then rejects is taken back from the gateway's count, and one whose body cannot
be read is taken back whole, so a request that was never forwarded never uses up quota.

Client disconnects: once the body is read, a watcher task waits on ``receive()``; on
``http.disconnect`` it cancels the request task while it waits on the upstream, which closes the
upstream connection (a half-read connection is never returned to the pool). The watcher starts
``WATCH_DELAY_S`` after the body is read: a request answered sooner never pays for a task (measured:
the watcher was ~3 % of a fast request's CPU), and a disconnect is noticed within that delay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from sluice.clock import new_ulid
from sluice.errors import (
    GatewayError,
    GatewayNotFound,
    UnforwardableRequest,
)
from sluice.exchange import Exchange, NullObserver, Observer
from sluice.providers.registry import Provider
from sluice.providers.usage import SSEUsage
from sluice.proxy import caching, dynamic, errorbody, options, paths, pools, refusal, universal
from sluice.proxy.attempts import PARSED_KEY
from sluice.proxy.body import ClientGone, StreamedBody, read_body, too_large
from sluice.proxy.compat import (
    COMPAT_SLUG,
    CompatCall,
    RouteCall,
    answers_locally,
    models_answer,
    prepare,
    prepare_parsed,
)
from sluice.proxy.credentials import choose
from sluice.proxy.failover import Failover, Leg
from sluice.proxy.forward import Upstream
from sluice.proxy.headers import response_headers, split_request, uncompressed, with_extra, with_stored_key
from sluice.proxy.limits import admit
from sluice.proxy.state import GatewayState, StoredKey, resolve_provider
from sluice.proxy.sync import StateSync
from sluice.proxy.upgrade import upgrade_refused
from sluice.ratelimit.backends import make_limiter
from sluice.ratelimit.base import ADMITTED
from sluice.services import Services

log = structlog.get_logger("sluice.proxy")

LOGGED_CONTROL = ("cf-aig-metadata", "cf-aig-custom-cost", "cf-aig-event-id")
LOGGED_FORWARD = ("content-type", "user-agent")
WATCH_DELAY_S = 0.5
CLIENT_GONE = 499  # nginx's "client closed request", for logs and metrics only


class Call:
    """Per-request bookkeeping shared by the request task and its disconnect watcher."""

    __slots__ = ("cancellable", "client_gone", "receive", "started", "task", "timer", "watcher")

    def __init__(self, receive: Callable[[], Awaitable[dict]]) -> None:
        self.task = asyncio.current_task()
        self.receive = receive
        self.started = False  # response headers sent
        self.cancellable = False  # the request task is waiting on the upstream
        self.client_gone = False
        self.watcher: asyncio.Task | None = None
        self.timer: asyncio.TimerHandle | None = None

    def watch(self) -> None:
        """Watch for a disconnect from ``WATCH_DELAY_S`` on (only once the body has been read: one
        reader at a time)."""
        if self.timer is None and self.watcher is None:
            self.timer = asyncio.get_running_loop().call_later(WATCH_DELAY_S, self._start)

    def _start(self) -> None:
        self.timer = None
        if self.watcher is None:
            self.watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        message = await self.receive()
        if message["type"] == "http.disconnect":
            self.client_gone = True
            if self.cancellable and self.task is not None:
                self.task.cancel()

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.watcher is not None and not self.watcher.done():
            self.watcher.cancel()


class DataPlane:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.catalog = services.catalog
        self.sync = StateSync(services)
        self.upstream = Upstream(services.settings)
        self.limiter = make_limiter(services.settings)
        self.failover = Failover(self.upstream, self.limiter, services.key_health)  # key pools
        # Hoisted per provider: the headers that may carry a caller's key (bytes to match ASGI).
        self._watched = {slug: frozenset(n.encode() for n in p.auth_header_names)
                         for slug, p in self.catalog.items()}
        self._strip = {slug: frozenset(p.auth_header_names) for slug, p in self.catalog.items()}
        self.universal = universal.Universal(self, services, self._gateway,  # its steps come back here
                                             self._providers)

    async def start(self) -> None:
        await self.upstream.start()
        await self.limiter.start()
        await self.sync.start()

    async def close(self) -> None:
        await self.sync.close()
        await self.upstream.close()
        await self.limiter.close()

    async def refresh(self, account_id: str) -> None:
        await self.sync.refresh(account_id)

    # -- request -----------------------------------------------------------------------------------

    def _gateway(self, account_id: str, gateway_id: str) -> GatewayState | None:
        account = self.sync.accounts.get(account_id)
        return account.gateways.get(gateway_id) if account is not None else None

    def _providers(self, account_id: str) -> Mapping[str, Provider]:
        """The providers an account can reach (``resolve_provider``'s map); the catalog for an unknown one."""
        account = self.sync.accounts.get(account_id)
        return account.providers if account is not None else self.catalog

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if universal.addressed(scope):  # /v1/{account}/{gateway}: steps, each one a request to us
            await self.universal(scope, receive, send)
            return
        exchange = Exchange(log_id=new_ulid(), account_id="", gateway_id="", provider="",
                            method=scope["method"],
                            path="", started_at=time.time())
        began = time.perf_counter()
        observer: Observer = self.services.observer
        call = Call(receive)
        delegated = False  # a dynamic route's: each of its model calls is recorded as a request
        try:
            delegated = await self._serve(scope, send, call, exchange, observer)
        except GatewayError as exc:
            await self._refuse(send, call, exchange, exc)
        except ClientGone:
            self._gone(exchange)
        except asyncio.CancelledError:
            if not call.client_gone:
                raise
            if call.task is not None:  # our own cancel: the client left
                call.task.uncancel()
            self._gone(exchange)
        except Exception as exc:  # noqa: BLE001 — the data plane never crashes; never echo the message
            log.error("data plane error", error=type(exc).__name__)
            await self._refuse(send, call, exchange, GatewayError())
        finally:
            call.stop()
            exchange.duration_ms = int((time.perf_counter() - began) * 1000)
            await _trace(scope, exchange)
            try:
                if not delegated:
                    observer.record(exchange)
            except Exception as exc:  # noqa: BLE001
                log.error("observer failed", error=type(exc).__name__)

    @staticmethod
    def _gone(exchange: Exchange) -> None:
        if not exchange.status_code:
            exchange.status_code = CLIENT_GONE
        exchange.success = False
        exchange.error = exchange.error or "client disconnected"

    async def _refuse(self, send: Any, call: Call, exchange: Exchange, exc: GatewayError) -> None:
        exchange.status_code = exc.status
        exchange.success = False
        exchange.error = exc.message
        exchange.rejected_by = exchange.rejected_by or exc.reason  # metrics count refusals by cause
        if call.started:  # too late for an error response: the client sees the stream break off
            return
        start, body = refusal.messages(exc, exchange.log_id)
        call.started = True
        try:
            await send(start)
            await send(body)
        except Exception as send_exc:  # noqa: BLE001 — the client is gone
            log.info("error response not delivered", error=type(send_exc).__name__)

    @staticmethod
    async def _answer(send: Any, call: Call, exchange: Exchange, status: int, body: bytes,
                      extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        """A JSON answer of Sluice's own (/compat/models)."""
        headers = [refusal.JSON_TYPE, (b"content-length", str(len(body)).encode()),
                   (b"cf-aig-log-id", exchange.log_id.encode()), *extra]
        call.started = True
        exchange.status_code = status
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _serve(self, scope: dict[str, Any], send: Any, call: Call, exchange: Exchange,
                     observer: Observer) -> bool:
        """Serve one request; True when it was handed to a dynamic route (nothing to record here)."""
        # -- route (in-memory only) --
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        parts = raw_path.split(b"/", 5)  # b"", b"v1", account, gateway, slug, rest
        account_id = parts[2].decode("latin-1") if len(parts) > 2 else ""
        gateway_id = parts[3].decode("latin-1") if len(parts) > 3 else ""
        exchange.account_id, exchange.gateway_id = account_id, gateway_id
        account = self.sync.accounts.get(account_id)
        gateway = account.gateways.get(gateway_id) if account is not None else None
        if gateway is None:
            raise GatewayNotFound()
        if account.key_matcher:  # type: ignore[union-attr]
            exchange.key_matcher = account.key_matcher  # type: ignore[union-attr]
        slug = parts[4].decode("latin-1") if len(parts) > 4 else ""
        rest = parts[5].decode("latin-1") if len(parts) > 5 else ""
        compat: CompatCall | None = None
        if slug == COMPAT_SLUG:  # OpenAI's API in front of any provider (compat.py): read, translate
            if answers_locally(rest):  # the model list, from the catalog: not a provider call, not logged
                exchange.collect_log = False
                listing = models_answer(scope, rest, gateway, account.tokens,  # type: ignore[union-attr]
                                        self.catalog, time.time())
                await self._answer(send, call, exchange, 200, listing)
                return False
            parsed = scope.get(PARSED_KEY)
            prepared: CompatCall | RouteCall
            if parsed is not None:  # a dynamic route's model call: its request comes parsed (attempts.py)
                call.watch()  # the body was read with the route's request: only a disconnect can come
                prepared = prepare_parsed(scope, parsed, account.providers)  # type: ignore[union-attr]
            else:
                prepared = await prepare(scope, call.receive, rest, account.providers,  # type: ignore[union-attr]
                                         self.settings.max_body_bytes, call.watch)
            if isinstance(prepared, RouteCall):  # "dynamic/{name}": the route's model calls come back here
                call.stop()  # one reader of the client's channel: the model calls listen from now on
                if call.client_gone:
                    raise ClientGone()
                await dynamic.serve(self, self.limiter, scope, call.receive, send, account,  # type: ignore[arg-type]
                                    gateway, prepared, exchange)
                return True
            compat = prepared
            scope, slug, rest = compat.scope, compat.slug, compat.path
        provider = resolve_provider(account, slug)  # type: ignore[arg-type]
        if provider is None:
            raise UnforwardableRequest(f"unknown provider {slug[:64]!r}")
        exchange.provider = slug
        exchange.path = rest
        paths.check(rest,
                    paths.FRAGMENT_KEY in scope)  # before any key is chosen: nothing leaves on a refusal
        try:
            url = provider.upstream_url(rest, scope.get("query_string", b"").decode("latin-1"), account_id)
        except ValueError as exc:
            raise UnforwardableRequest(str(exc)) from None
        forward, control = split_request(scope["headers"], self._watched_of(provider))
        if "upgrade" in control:
            raise upgrade_refused(control["upgrade"])  # before a key is chosen: never forwarded
        options.check(control)  # an option that cannot be honoured is refused, never ignored
        exchange.collect_log = options.collect_log(control, gateway)
        exchange.collect_payload = options.collect_log_payload(control)
        declared = control.get("content-length")
        max_bytes = self.settings.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise too_large(max_bytes)

        # -- credentials, then limits (nothing is forwarded on a refusal) --
        now = time.time()
        peer = scope.get("client")
        chosen = choose(gateway, provider, control, account.tokens, now,  # type: ignore[union-attr]
                        peer[0] if peer else None)
        if chosen.token_id is not None:
            self.sync.touched.add(chosen.token_id)
        key = chosen.key
        pool = pools.pool_for(gateway, slug, control, key)  # key pools: None unless failover applies
        if pool is not None:
            key = pools.first(pool, self.failover.health)
        if key is not None:
            exchange.alias, exchange.config_id = key.alias, key.config_id
            forward = with_stored_key(forward, self._strip_of(provider), (key.auth_header, key.auth_value),
                                      provider.extra_headers)  # also asks for an uncompressed answer
        elif provider.custom:  # a custom provider's headers go on every request
            forward = with_extra(forward, provider.extra_headers)
            if provider.extra_headers:
                forward = uncompressed(forward)
        # The response cache (caching.py); None in the common case. With a plan the limits wait
        # until after the lookup: a cache hit uses no stored key, so it does not count against it.
        plan = caching.plan(self.services.cache, gateway, control, exchange.method) \
            if caching.applies(gateway, control) else None
        decision = await admit(self.limiter, gateway, key) if plan is None else ADMITTED

        # -- body --
        try:
            body = compat.body if compat is not None else await read_body(call.receive, max_bytes, call.watch)
        except (GatewayError, ClientGone):
            await self.limiter.undo(decision)  # never forwarded: its hits go back
            raise
        observing = not isinstance(observer, NullObserver)
        if isinstance(body, StreamedBody):
            if declared is not None and declared.isdigit():
                forward.append(("Content-Length", declared))  # keep the client's framing (no chunked upload)
            exchange.request_size = int(declared) if declared and declared.isdigit() else 0
            if observing:
                exchange.request_body = body.head[: self.settings.log_body_max_bytes]
        else:
            exchange.request_size = len(body)
            if observing:
                exchange.request_body = body[: self.settings.log_body_max_bytes]
        if observing:
            exchange.request_headers = self._logged_headers(control, forward)
        if plan is not None:
            hit = await plan.lookup(exchange, scope.get("query_string", b"").decode("latin-1"),
                                    compat.cache_body() if compat is not None else body)
            await admit(self.limiter, gateway, key if hit is None else None)
            if hit is not None:
                call.started = True
                taps = self._tap(exchange, provider.usage_format) if observing else None
                await caching.serve(send, hit, exchange, taps)
                return False
            send = plan.recorder(send, exchange)

        # -- forward and relay; a disconnect cancels us while we wait on the upstream --
        if compat is not None:
            send = compat.wrap(send)
        call.cancellable = True
        try:
            if call.client_gone:
                raise ClientGone()
            await self._forward(scope, send, call, exchange, url, forward, body, control, gateway, key,
                                provider, observing, pool)
        finally:
            call.cancellable = False
        return False

    def _watched_of(self, provider: Provider) -> frozenset[bytes]:
        """The headers a caller's key may arrive in: hoisted for the catalog, built for a custom provider."""
        return self._watched.get(provider.slug) or frozenset(n.encode() for n in provider.auth_header_names)

    def _strip_of(self, provider: Provider) -> frozenset[str]:
        return self._strip.get(provider.slug) or frozenset(provider.auth_header_names)

    @staticmethod
    def _logged_headers(control: dict[str, str], forward: list[tuple[str, str]]) -> dict[str, str]:
        picked = {name: control[name] for name in LOGGED_CONTROL if name in control}
        for name, value in forward:
            if name in LOGGED_FORWARD:
                picked.setdefault(name, value)
        return picked

    async def _forward(self, scope: dict[str, Any], send: Any, call: Call, exchange: Exchange, url: str,
                       forward: list[tuple[str, str]], body: bytes | StreamedBody, control: dict[str, str],
                       gateway: GatewayState, key: StoredKey | None, provider: Provider, observing: bool,
                       pool: pools.Pool | None = None) -> None:
        raw = None  # an error answer already read whole (key pools)
        usage_format = provider.usage_format if observing else None
        # An error answer is checked for stored values when one went upstream: a stored key, or a
        # custom provider's extra headers (they may be credentials).
        sealed_sent = key is not None or (provider.custom and bool(provider.extra_headers))
        timeout_s, retry = options.request_timeout_s(control), options.retry_policy(control, gateway)
        try:
            if pool is not None and key is not None:
                leg = Leg(scope["method"], url, forward, body, timeout_s, retry)
                opened = await self.failover.open(leg, key, pool, gateway, self._strip_of(provider),
                                                  provider.extra_headers, exchange, self.services.observer)
                response, key, raw = opened.response, opened.key, opened.raw
            else:
                response = await self.upstream.open(scope["method"], url, forward, body, timeout_s, retry)
        except GatewayError:
            if isinstance(body, StreamedBody) and body.error is not None:
                raise body.error from None  # 413 or client gone, not an upstream failure
            raise
        try:
            if isinstance(body, StreamedBody):
                if body.error is not None:
                    raise body.error
                exchange.request_size = body.size
            exchange.status_code = response.status
            exchange.success = response.status < 400
            content_type = response.content_type
            exchange.response_content_type = content_type
            exchange.stream = bool(content_type and content_type.startswith("text/event-stream"))
            extra = [(b"cf-aig-log-id", exchange.log_id.encode())]
            if key is not None:
                extra.append((b"cf-aig-byok-alias", key.alias.encode()))
            tap, finish = self._tap(exchange, usage_format) if usage_format is not None else (None, None)
            if sealed_sent and exchange.key_matcher is not None and (
                    errorbody.must_check(response.status) or errorbody.compressed(response.raw_headers)):
                # an error, or a compressed answer from a provider that ignored accept-encoding: identity
                await self._relay_checked(response, send, call, extra, exchange.key_matcher, tap, finish, raw)
                return
            call.started = True
            headers = response_headers(response.raw_headers, extra)
            if sealed_sent and exchange.key_matcher is not None:  # a provider may quote the key
                headers = errorbody.masked_headers(headers, exchange.key_matcher)
                send = errorbody.masked(send, headers, exchange.key_matcher)
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            try:
                complete = await self.upstream.relay(response, send, tap)
            finally:
                if finish is not None:
                    finish()  # usage and body seen so far, also when the client left mid-stream
            if not complete:
                exchange.success = False
                exchange.error = "upstream connection lost mid-response"
                log.warning("upstream broke off mid-response; the client's response was cut",
                            provider=exchange.provider, gateway=exchange.gateway_id)
        finally:
            response.close()  # no-op after a clean release; otherwise never pool a half-read connection

    @staticmethod
    async def _relay_checked(response: Any, send: Any, call: Call, extra: list[tuple[bytes, bytes]],
                             matcher: Any, tap: Callable[[bytes], None] | None,
                             finish: Callable[[], None] | None, raw: bytes | None = None) -> None:
        """An error answer to a request that carried a stored key: read whole (unless ``raw`` is it),
        stored values masked (``errorbody.py``), then relayed; a 502 when it cannot be checked."""
        if raw is None:
            raw = await errorbody.read_capped(response, errorbody.ERROR_BODY_MAX)
        if raw is None:
            raise errorbody.unreadable(f"larger than {errorbody.ERROR_BODY_MAX} bytes")
        checked = await errorbody.check_soon(response_headers(response.raw_headers, []), raw, matcher)
        if tap is not None and finish is not None:
            tap(checked.logged)
            finish()
        call.started = True
        await send({"type": "http.response.start", "status": response.status,
                    "headers": checked.headers + extra})
        await send({"type": "http.response.body", "body": checked.body, "more_body": False})

    def _tap(self, exchange: Exchange, usage_format: str) -> tuple[Callable[[bytes], None], Callable[[],
                                                                                                     None]]:
        """Feed passing chunks to usage accounting and keep the first bytes for the request log."""
        usage = SSEUsage(usage_format)
        cap = self.settings.log_body_max_bytes if exchange.collect_payload else 0
        kept = bytearray()
        size = 0

        def tap(chunk: bytes) -> None:
            nonlocal size
            size += len(chunk)
            usage.feed(chunk)
            if len(kept) < cap:
                kept.extend(chunk[: cap - len(kept)])

        def finish() -> None:
            found = usage.result()
            exchange.usage = found
            exchange.model = found.model or exchange.model
            exchange.response_body = bytes(kept)
            exchange.response_size = size

        return tap, finish


async def _trace(scope: dict[str, Any], exchange: Exchange) -> None:
    """A dynamic route's model call: the route's fields on its log, its cost on the route's budgets."""
    trace = scope.get(dynamic.TRACE_KEY)
    if trace is None:
        return
    try:
        await trace.finished(exchange)
    except Exception as exc:  # noqa: BLE001 — a budget that cannot be counted never fails the request
        log.warning("dynamic route budget not counted", error=type(exc).__name__)
