"""The Universal endpoint: ``POST /v1/{account_id}/{gateway_id}`` (also with a trailing slash) with a
JSON array of steps, tried in order until one answers (docs/gateway.md#universal-endpoint).

The body is read (≤ 1 MiB) and parsed (``steps.py``, pure) before anything is forwarded: a body that
does not read is a 400 naming the field. Each step then runs as an ordinary provider-path request
through the data plane (``attempts.py``): credentials, limits, cache, retries, timeouts and one
request log per step, all linked by one event id (the request's ``cf-aig-event-id``, else a new one).
The first answer below 400 goes to the client as it arrives (a stream included) with ``cf-aig-step``
(its index, 0 for the first step) and ``cf-aig-event-id``; an error answer, a connection failure or a
timeout moves on to the next step; when every step failed the last step's error answer is sent.
Provider keys belong in the steps: one on the request itself would reach every step's provider, so it
is refused (a Sluice token there authenticates to the gateway for every step).

A request refused before any step runs (unknown gateway, wrong method, a bad body) is counted in the
metrics only, like other requests refused before routing: it has no provider to log it under.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from sluice.clock import new_ulid
from sluice.errors import (
    GatewayError,
    GatewayNotFound,
    InvalidSteps,
    RequestTooLarge,
    UniversalMethodNotAllowed,
)
from sluice.exchange import Exchange
from sluice.providers.registry import Provider
from sluice.proxy import paths, refusal
from sluice.proxy.attempts import App, Receive, Send, SubRequest, in_turn
from sluice.proxy.body import BUFFER_LIMIT, ClientGone, StreamedBody, read_body, too_large
from sluice.proxy.compat import COMPAT_SLUG
from sluice.proxy.state import GatewayState
from sluice.proxy.steps import EVENT_ID, StepError, inherited, parse
from sluice.proxy.upgrade import upgrade_refused
from sluice.services import Services

log = structlog.get_logger("sluice.proxy")

STEP_HEADER = b"cf-aig-step"


def addressed(scope: dict[str, Any]) -> bool:
    """Is this ``/v1/{account}/{gateway}`` or ``/v1/{account}/{gateway}/`` (no provider segment)?"""
    raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    slashes = raw.count(b"/")
    return slashes == 3 or (slashes == 4 and raw.endswith(b"/"))


class StepProviders:
    """The slugs a step may name: the account's providers (the catalog's and its custom providers'),
    and ``compat`` (OpenAI's chat format, translated)."""

    def __init__(self, catalog: Mapping[str, object]) -> None:
        self.catalog = catalog

    def __contains__(self, slug: object) -> bool:
        return slug == COMPAT_SLUG or slug in self.catalog


class Universal:
    def __init__(self, app: App, services: Services,
                 find_gateway: Callable[[str, str], GatewayState | None],
                 find_providers: Callable[[str], Mapping[str, Provider]]) -> None:
        self.app = app  # the data plane: each step is one request to it
        self.services = services
        self.find_gateway = find_gateway
        self.find_providers = find_providers  # an account's providers (state.py resolve_provider's map)
        self.catalog = services.catalog
        self.providers = StepProviders(services.catalog)
        # Every provider's auth headers: on the request (not in a step) they may hold only a Sluice token.
        self.auth_headers = _auth_headers(services.catalog)
        self.max_body_bytes = services.settings.max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        parts = (scope.get("raw_path") or scope["path"].encode("utf-8")).split(b"/")
        account_id = parts[2].decode("latin-1") if len(parts) > 2 else ""
        gateway_id = parts[3].decode("latin-1") if len(parts) > 3 else ""
        try:
            await self._serve(scope, receive, send, account_id, gateway_id)
        except GatewayError as exc:
            await self._refuse(scope, send, account_id, gateway_id, exc)
        except ClientGone:
            return
        except Exception as exc:  # noqa: BLE001 — never crash; never echo the message
            log.error("universal endpoint error", error=type(exc).__name__)
            await self._refuse(scope, send, account_id, gateway_id, GatewayError())

    async def _serve(self, scope: dict[str, Any], receive: Receive, send: Send, account_id: str,
                     gateway_id: str) -> None:
        if self.find_gateway(account_id, gateway_id) is None:
            raise GatewayNotFound()
        paths.check("", paths.FRAGMENT_KEY in scope)  # a '#' in the target: refused as on the provider path
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        upgrade = _header(headers, b"upgrade")
        if upgrade is not None:  # e.g. the Universal WebSocket API's handshake: not served
            raise upgrade_refused(upgrade)
        if scope["method"] != "POST":
            raise UniversalMethodNotAllowed()
        declared = _header(headers, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise too_large(self.max_body_bytes)
        body = await read_body(receive, self.max_body_bytes, _nothing)
        if isinstance(body, StreamedBody) or len(body) > BUFFER_LIMIT:  # held whole, resent per step
            raise RequestTooLarge(f"Universal: request body too large: the limit is {BUFFER_LIMIT} bytes")
        event_id = (_header(headers, EVENT_ID) or new_ulid()).encode("latin-1")
        providers = self.find_providers(account_id)
        custom = providers is not self.catalog  # the account has custom providers (state.py)
        try:
            steps = parse(body, StepProviders(providers) if custom else self.providers)
            common = inherited(headers, _auth_headers(providers) if custom else self.auth_headers, event_id)
        except StepError as exc:
            raise InvalidSteps(exc.message) from None
        requests = (SubRequest(step.provider, step.endpoint, step.request_headers(common), step.body)
                    for step in steps)  # built one at a time, as the chain reaches each
        await in_turn(self.app, scope, account_id, gateway_id, requests, receive, send,
                      lambda index: [(STEP_HEADER, str(index).encode()), (EVENT_ID, event_id)])

    async def _refuse(self, scope: dict[str, Any], send: Send, account_id: str, gateway_id: str,
                      exc: GatewayError) -> None:
        exchange = Exchange(log_id=new_ulid(), account_id=account_id, gateway_id=gateway_id, provider="",
                            method=scope["method"], path="", started_at=time.time(),
                            status_code=exc.status, error=exc.message, rejected_by=exc.reason)
        start, body = refusal.messages(exc, exchange.log_id)
        try:
            await send(start)
            await send(body)
        except Exception as send_exc:  # noqa: BLE001 — the client is gone
            log.info("error response not delivered", error=type(send_exc).__name__)
        try:
            self.services.observer.record(exchange)  # provider "": counted, not logged
        except Exception as obs_exc:  # noqa: BLE001
            log.error("observer failed", error=type(obs_exc).__name__)


def _auth_headers(providers: Mapping[str, Provider]) -> frozenset[bytes]:
    return frozenset(name.encode() for provider in providers.values() for name in provider.auth_header_names)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _nothing() -> None:
    return None
