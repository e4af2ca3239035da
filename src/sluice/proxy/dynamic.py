"""Serving a dynamic route: ``model: "dynamic/{name}"`` on ``/compat/chat/completions``.

The deployed version's graph (parsed when the state loaded: ``state.DeployedRoute``) is walked in
memory (``routing.walk``). Its two effects are:

* a rate or budget limit: the data plane's own limiter (in-process, or Redis shared by every
  process). A count limit counts the request in the element's window; a cost (budget) limit compares
  the cost the request logs recorded in its fixed window with the limit, and the cost of each model
  call made past it is added when the call ends (``Trace.finished``).
* a model call: one ``/compat`` sub-request through the data plane (``attempts.py``; the route's
  request goes over already parsed rather than as a body to read again), with the element's model,
  timeout (``cf-aig-request-timeout``), retries (``cf-aig-max-attempts``) and BYOK alias
  (``cf-aig-byok-alias``): credentials, gateway and key limits, cache and request log all apply.
  An answer below 400 is committed to the client at once with the route headers; an error, a
  connection failure or a timeout is held back and the walk takes the element's fallback output.

When no model answered, the last model error is delivered (with the route headers), or a limit
without fallback answers 429 (``RouteRateLimited``).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from sluice.errors import RouteRateLimited, UnknownRoute
from sluice.exchange import Exchange
from sluice.logs.custom import parse_metadata
from sluice.logs.records import exchange_cost
from sluice.proxy.attempts import App, Failure, Headers, Receive, Send, SubRequest, attempt
from sluice.proxy.body import ClientGone
from sluice.proxy.compat import COMPAT_SLUG, RouteCall
from sluice.proxy.credentials import GATEWAY_AUTH_HEADER, bearer, caller
from sluice.proxy.state import AccountState, DeployedRoute, GatewayState
from sluice.ratelimit.base import Budget, Check, RateLimiter
from sluice.routing.conditions import RequestView
from sluice.routing.graph import Limit, Model
from sluice.routing.walk import Walk, walk

log = structlog.get_logger("sluice.proxy")

TRACE_KEY = "sluice.route_trace"  # in a sub-request's scope: only the data plane can set it
ROUTE_HEADER = b"cf-aig-dynamic-route"
VERSION_HEADER = b"cf-aig-dynamic-route-version"
PATH_HEADER = b"cf-aig-dynamic-route-path"
MODEL_HEADER = b"cf-aig-model"  # Cloudflare's: the model used
PROVIDER_HEADER = b"cf-aig-provider"  # Cloudflare's: the slug of the provider used
EVENT_HEADER = b"cf-aig-event-id"
# The model element sets these; the caller's own values are dropped from its model calls (the
# caller's cf-aig-byok-alias too, when the element names an alias).
SET_BY_ELEMENT = frozenset({b"cf-aig-request-timeout", b"cf-aig-max-attempts", b"content-length"})
ALIAS = b"cf-aig-byok-alias"
METADATA_HEADER = b"cf-aig-metadata"
EVENT_NAME, METADATA_NAME = EVENT_HEADER.decode(), METADATA_HEADER.decode()
READ_HERE = frozenset({b"authorization", GATEWAY_AUTH_HEADER.encode(), EVENT_HEADER, METADATA_HEADER})


@dataclass(slots=True)
class Trace:
    """Rides in a model call's scope; the data plane calls ``finished`` before logging the call."""

    route: str
    version: str
    path: str
    limiter: RateLimiter
    budgets: list[Budget] = field(default_factory=list)  # what the call's cost is spent on

    async def finished(self, exchange: Exchange) -> None:
        _mark(exchange, self.route, self.version, self.path)
        if not self.budgets:
            return
        cost = exchange_cost(exchange)
        if cost > 0:
            for budget in self.budgets:
                await self.limiter.spend(budget, cost)


def _mark(exchange: Exchange, route: str, version: str, path: str) -> None:
    exchange.route, exchange.route_version, exchange.route_path = route, version, path


def _route_headers(route: DeployedRoute, path: str) -> Headers:
    """``path``: the element ids the walk took, comma-separated."""
    return [(ROUTE_HEADER, route.name.encode()), (VERSION_HEADER, route.version_id.encode()),
            (PATH_HEADER, path.encode())]


def _counter(account_id: str, gateway_id: str, route: DeployedRoute, node: Limit, key: str) -> str:
    """The limiter key of one limit element and one value of its key field (hashed: metadata values
    never reach Redis in clear, and the key stays short)."""
    digest = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    return f"route:{account_id}:{gateway_id}:{route.id}:{node.id}:{digest}"


@dataclass(frozen=True, slots=True)
class ElementCall:
    """What a model element's calls share, made once per deployed version and element rather than
    on every call: the caller's headers it replaces, its own, the commit headers and the model."""

    replaced: frozenset[bytes]
    own: tuple[tuple[bytes, bytes], ...]
    commit: tuple[tuple[bytes, bytes], ...]  # all but the path, which depends on the walk
    model: str  # "{provider}/{model}", as the model call's request names it


_ELEMENT_CALLS: dict[tuple[str, str], ElementCall] = {}
MAX_ELEMENT_CALLS = 4096  # cleared whole when full: redeployed versions' entries go with it


def _element_call(route: DeployedRoute, node: Model) -> ElementCall:
    """A version's elements never change (a deploy makes a new version id), so this key is exact."""
    key = (route.version_id, node.id)
    found = _ELEMENT_CALLS.get(key)
    if found is None:
        if len(_ELEMENT_CALLS) >= MAX_ELEMENT_CALLS:
            _ELEMENT_CALLS.clear()
        found = _ELEMENT_CALLS[key] = _make_element_call(route, node)
    return found


def _make_element_call(route: DeployedRoute, node: Model) -> ElementCall:
    own: tuple[tuple[bytes, bytes], ...] = ((b"cf-aig-request-timeout", str(node.timeout_ms).encode()),
                                            (b"cf-aig-max-attempts", str(node.retries + 1).encode()))
    replaced = SET_BY_ELEMENT
    if node.alias is not None:
        replaced, own = SET_BY_ELEMENT | {ALIAS}, (*own, (ALIAS, node.alias.encode()))
    commit = ((ROUTE_HEADER, route.name.encode()), (VERSION_HEADER, route.version_id.encode()),
              (MODEL_HEADER, node.model.encode()), (PROVIDER_HEADER, node.provider.encode()))
    return ElementCall(replaced, own, commit, f"{node.provider}/{node.model}")


class RouteRun:
    """The effects of one request's walk (``routing.walk.Effects``)."""

    def __init__(self, app: App, limiter: RateLimiter, scope: dict[str, Any], receive: Receive, send: Send,
                 gateway: GatewayState, route: DeployedRoute, request: dict[str, Any], headers: Headers,
                 done: Walk[bool]) -> None:
        self.app, self.limiter = app, limiter
        self.scope, self.receive, self.send = scope, receive, send
        self.gateway, self.route, self.request, self.headers = gateway, route, request, headers
        self.done = done
        self.budgets: list[Budget] = []
        self.failure: Failure | None = None
        self.failed_model: Model | None = None

    async def admit(self, node: Limit, key: str) -> bool:
        counter = _counter(self.gateway.account_id, self.gateway.id, self.route, node, key)
        if node.kind == "count":
            check = Check(counter, int(node.limit), node.window_s, node.technique)
            decision = await self.limiter.admit([check])
            return decision.refused is None
        budget = Budget(counter, node.window_s, node.technique)
        if await self.limiter.spent(budget) >= node.limit:
            return False
        self.budgets.append(budget)
        return True

    async def call(self, node: Model) -> bool | None:
        element = _element_call(self.route, node)
        replaced = element.replaced
        headers = [(k, v) for k, v in self.headers if k not in replaced]
        headers += element.own
        request = {**self.request, "model": element.model}  # handed over parsed
        path = ",".join(self.done.path)
        trace = Trace(self.route.name, self.route.version_id, path, self.limiter, list(self.budgets))
        commit = [*element.commit, (PATH_HEADER, path.encode())]
        sub = SubRequest(COMPAT_SLUG, "chat/completions", headers, b"", parsed=request)
        outcome = await attempt(self.app, {**self.scope, TRACE_KEY: trace}, self.gateway.account_id,
                                self.gateway.id, sub, self.receive, self.send, commit)
        if outcome.committed:
            return True
        if outcome.client_gone:
            raise ClientGone()
        self.failure, self.failed_model = outcome.failure, node
        log.info("dynamic route model failed", route=self.route.name, element=node.id, status=outcome.status)
        return None


def _control(headers: Headers) -> dict[str, str]:
    """The headers the route reads itself (its model calls get them all, as they came)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k in READ_HERE}


async def serve(app: App, limiter: RateLimiter, scope: dict[str, Any], receive: Receive, send: Send,
                account: AccountState, gateway: GatewayState, call: RouteCall, exchange: Exchange) -> None:
    """Run ``call`` through its route; raises ``GatewayError`` for a refusal before any model answered
    (the caller answers it and records ``exchange``: a route's 429 is logged under compat with the
    route's fields), ``ClientGone`` when the client left."""
    request_id = exchange.log_id
    control = _control(scope["headers"])
    peer = scope.get("client")
    # gateway authentication before the walk (a refused caller uses no route limit, learns no name);
    # a Sluice token may come as OpenAI's bearer token, as on /compat
    caller(gateway, [bearer(control.get("authorization", ""))], control, account.tokens, time.time(),
           peer[0] if peer else None)
    route = account.routes.get((gateway.id, call.name))
    if route is None:
        raise UnknownRoute(f"model: no dynamic route named {call.name[:64]!r} is deployed on this gateway")
    event_id = control.get(EVENT_NAME) or request_id
    headers: Headers = [(k, v) for k, v in scope["headers"] if k != EVENT_HEADER]
    headers.append((EVENT_HEADER, event_id.encode("latin-1")))
    metadata = parse_metadata(control.get(METADATA_NAME)) or {}
    view = RequestView(event_id, metadata, call.request)
    done: Walk[bool] = Walk()
    run = RouteRun(app, limiter, scope, receive, send, gateway, route, call.request, headers, done)
    await walk(route.graph, view, run, done)
    if done.answer:
        return
    path = ",".join(done.path)
    route_headers = _route_headers(route, path)
    if run.failure is not None and run.failed_model is not None:
        await run.failure.deliver(send, [*route_headers, (MODEL_HEADER, run.failed_model.model.encode()),
                                          (PROVIDER_HEADER, run.failed_model.provider.encode())])
        return
    assert done.refused_by is not None  # no answer and no model failure: a limit ended the walk
    limit = done.refused_by
    exchange.provider, exchange.path = COMPAT_SLUG, "chat/completions"
    _mark(exchange, route.name, route.version_id, path)
    raise RouteRateLimited(
        f"dynamic route {route.name!r}: element {limit.id!r} allows at most {limit.limit:g} "
        f"{'requests' if limit.kind == 'count' else 'in cost'} per {limit.window_s}s and has no fallback",
        {k.decode(): v.decode() for k, v in route_headers})
