"""``/v1/{account}/{gateway}/compat/…``: OpenAI's API in front of any provider.

``chat/completions`` and ``embeddings``: the request is read and translated first (``sluice.compat``,
pure), then continues through the data plane exactly as a provider-path request to the provider named
in ``model`` ("{provider}/{model}"): the same credentials, limits, cache, retries and request log,
which records the provider and model actually called. How each provider is reached is catalog data
(``compat`` in catalog.toml): pass-through providers get the body with the bare model name on their
path; anthropic and gemini get their native format, and their answers (JSON, SSE, errors) are
translated back as they pass (``TranslatingSend``).

``models`` (and ``models/{provider}/{model}``) is answered here from the catalog: nothing goes upstream.

The caller's ``Authorization: Bearer …`` (OpenAI's convention) moves to the provider's own auth
header, so a Sluice token or the caller's own key is recognised as on the provider path.
``accept-encoding`` is not forwarded: a translated answer must arrive uncompressed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson
import structlog

from sluice.compat import anthropic, chat, embeddings, gemini, gemini_embed, models
from sluice.errors import (
    CompatMethodNotAllowed,
    CompatPathNotServed,
    RequestTooLarge,
    TranslationError,
    Untranslatable,
    UpstreamUnreachable,
)
from sluice.providers.registry import Compat, Provider
from sluice.proxy.body import BUFFER_LIMIT, StreamedBody, read_body
from sluice.proxy.credentials import GATEWAY_AUTH_HEADER, bearer, caller
from sluice.proxy.state import GatewayState, TokenState

log = structlog.get_logger("sluice.proxy")

COMPAT_SLUG = "compat"
CHAT, EMBEDDINGS, MODELS = "chat/completions", "embeddings", "models"
DYNAMIC_PREFIX = "dynamic"  # chat with model "dynamic/{name}": a dynamic route (docs/routing.md)
CACHE_MARK = b"compat\n"  # a /compat answer is never served to the provider path, nor the reverse
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a buffered (non-streamed) answer larger than this is refused
Send = Callable[[dict[str, Any]], Awaitable[None]]


def refused(error: TranslationError) -> Untranslatable:
    """A 400 whose body is OpenAI's error shape, naming the field (``param``)."""
    return Untranslatable(error.message, body=chat.translation_error_body(error))


def answers_locally(rest: str) -> bool:
    """``models`` and ``models/…`` are answered from the catalog (``models_answer``)."""
    route = rest.partition("?")[0]
    return route == MODELS or route.startswith(MODELS + "/")


@dataclass(slots=True)
class RouteCall:
    """``model: "dynamic/{name}"``: the request goes to a dynamic route (``dynamic.py``)."""

    name: str
    request: dict[str, Any]  # the parsed OpenAI request


@dataclass(slots=True)
class CompatCall:
    scope: dict[str, Any]  # the request as the provider path sees it (headers, query string)
    slug: str
    path: str
    body: bytes
    wrap: Callable[[Send], Send]  # the answer's translation, identity for pass-through
    # The response cache keys on the caller's OpenAI body: the cached answer is the translated one,
    # and it depends on more than the native body (stream_options.include_usage is not sent upstream).
    # A request handed over parsed (``prepare_parsed``) is serialised only when the cache asks.
    cache_source: bytes | dict[str, Any]

    def cache_body(self) -> bytes:
        source = self.cache_source
        return CACHE_MARK + (source if isinstance(source, bytes) else orjson.dumps(source))


@dataclass(slots=True)
class Upstream:
    """A translated request: what to send, where, and how its answer comes back."""

    body: Any
    path: str
    wrap: Callable[[Send], Send]


def _unchanged(send: Send) -> Send:
    return send


async def prepare(scope: dict[str, Any], receive: Any, rest: str, catalog: Mapping[str, Provider],
                  max_bytes: int, watch: Callable[[], None]) -> CompatCall | RouteCall:
    """Read and translate a ``/compat`` request; raises ``GatewayError`` (404, 405, 413, 400). A chat
    request naming a dynamic route is handed back as a ``RouteCall``."""
    route = rest.partition("?")[0]
    if route not in (CHAT, EMBEDDINGS):
        raise CompatPathNotServed(f"compat: {route[:64]!r} is not served; the paths are {CHAT}, {EMBEDDINGS} "
                                  f"and {MODELS}")
    if scope["method"] != "POST":
        raise CompatMethodNotAllowed(f"compat: {route} takes POST")
    body = await read_body(receive, max_bytes, watch)
    if isinstance(body, StreamedBody):
        raise RequestTooLarge(f"compat: request body too large: the limit is {BUFFER_LIMIT} bytes")
    try:
        named = routed(body) if route == CHAT else None
        if named is not None:
            return named
        provider, upstream = translate(route, body, catalog)
    except TranslationError as error:
        raise refused(error) from None
    return _compat_call(scope, provider, upstream, body)


def prepare_parsed(scope: dict[str, Any], request: dict[str, Any],
                   catalog: Mapping[str, Provider]) -> CompatCall:
    """A chat request its caller already read and parsed (a dynamic route's model call, ``request``
    naming the element's model): translated as ``prepare`` would, without reading or parsing a body.
    Its cache key is the body the caller would have sent (``request`` serialised). Raises
    ``GatewayError`` (400)."""
    try:
        provider, upstream = translate_request(CHAT, request, catalog)
    except TranslationError as error:
        raise refused(error) from None
    return _compat_call(scope, provider, upstream, request)


def _compat_call(scope: dict[str, Any], provider: Provider, upstream: Upstream,
                 cache_source: bytes | dict[str, Any]) -> CompatCall:
    path, _, query = upstream.path.partition("?")
    headers = _headers(scope["headers"], provider)
    return CompatCall({**scope, "headers": headers, "query_string": query.encode()}, provider.slug, path,
                      orjson.dumps(upstream.body), upstream.wrap, cache_source)


def routed(body: bytes) -> RouteCall | None:
    """The route a chat body names (``"model": "dynamic/{name}"``), else None; the body is parsed
    only when it can name one."""
    if b'"dynamic/' not in body:
        return None
    request = chat.parse_body(body)
    slug, name = chat.split_model(request)
    return RouteCall(name, request) if slug == DYNAMIC_PREFIX else None


def translate(route: str, body: bytes, catalog: Mapping[str, Provider]) -> tuple[Provider, Upstream]:
    """The provider a ``chat/completions`` or ``embeddings`` body names, and what to send it; raises
    ``TranslationError`` (never anything else: tests/compat/test_properties.py)."""
    return translate_request(route, chat.parse_body(body), catalog)


def translate_request(route: str, request: dict[str, Any],
                      catalog: Mapping[str, Provider]) -> tuple[Provider, Upstream]:
    """``translate`` for a body already parsed."""
    slug, model = chat.split_model(request)
    provider = catalog.get(slug)
    compat = _served(catalog, provider, slug, route)
    assert provider is not None  # _served refused an unknown provider
    return provider, (_chat if route == CHAT else _embeddings)(request, model, compat)


def _served(catalog: Mapping[str, Provider], provider: Provider | None, slug: str, route: str) -> Compat:
    compat = provider.compat if provider is not None else None
    if compat is None or (route == EMBEDDINGS and compat.embeddings_path is None):
        reachable = ", ".join(sorted(_serving(catalog, route)))
        raise TranslationError("model", f"provider {slug[:64]!r} is not served by /compat/{route}; one of: "
                                        f"{reachable}")
    return compat


def _serving(catalog: Mapping[str, Provider], route: str) -> Iterator[str]:
    for slug, provider in catalog.items():
        if provider.compat is not None and (route != EMBEDDINGS or provider.compat.embeddings_path):
            yield slug


def _chat(request: dict[str, Any], model: str, compat: Compat) -> Upstream:
    stream = request.get("stream") is True
    path = chat.fill_path(compat.stream_path if stream else compat.chat_path, model)
    if compat.format == "passthrough":
        return Upstream({**request, "model": model}, path, _unchanged)
    include_usage = chat.include_usage(request)
    created = int(time.time())
    if compat.format == "anthropic":
        def wrap(send: Send) -> Send:
            return TranslatingSend(send, stream, anthropic.response, anthropic.error,
                                   lambda: anthropic.StreamTranslator(created, include_usage), created)
        return Upstream(anthropic.request(request, model), path, wrap)

    def wrap_gemini(send: Send) -> Send:
        return TranslatingSend(send, stream, lambda answer, at: gemini.response(answer, at, model),
                               gemini.error, lambda: gemini.StreamTranslator(created, model, include_usage),
                               created)
    return Upstream(gemini.request(request), path, wrap_gemini)


def _embeddings(request: dict[str, Any], model: str, compat: Compat) -> Upstream:
    assert compat.embeddings_path is not None
    path = chat.fill_path(compat.embeddings_path, model)
    if compat.format == "passthrough":
        return Upstream({**request, "model": model}, path, _unchanged)
    fmt = embeddings.encoding(request)

    def wrap(send: Send) -> Send:
        return TranslatingSend(send, False, lambda answer, _: gemini_embed.response(answer, model, fmt),
                               gemini.error, None, 0)
    return Upstream(gemini_embed.request(request, model), path, wrap)


def models_answer(scope: Mapping[str, Any], rest: str, gateway: GatewayState,
                  tokens: Mapping[str, TokenState], catalog: Mapping[str, Provider], now: float) -> bytes:
    """``GET /compat/models`` (OpenAI's list) or ``/compat/models/{provider}/{model}`` (one model).

    Gateway authentication applies as on every path. Listed: the providers this gateway holds a stored
    key for; when the caller brings its own provider key (``Authorization: Bearer`` that is not a Sluice
    token), every provider ``/compat`` serves, as the caller's key may be for any of them. Raises
    ``GatewayError`` (401, 404, 405)."""
    if scope["method"] != "GET":
        raise CompatMethodNotAllowed(f"compat: {MODELS} takes GET")
    control = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
               if name in (b"authorization", GATEWAY_AUTH_HEADER.encode())}
    peer = scope.get("client")
    _, own = caller(gateway, (bearer(control.get("authorization", "")),), control, tokens, now,
                    peer[0] if peer else None)
    listed = [(slug, p.compat.models + p.compat.embedding_models, p.compat.models_reviewed)
              for slug, p in catalog.items()
              if p.compat is not None and (own or _has_key(gateway, slug))]
    route = rest.partition("?")[0]
    if route == MODELS:
        return models.listing(listed)
    model_id = unquote(route[len(MODELS) + 1:])  # the openai SDK sends "anthropic%2Fclaude-…"
    found = models.find(listed, model_id)
    if found is None:
        message = f"The model '{model_id[:128]}' does not exist or this gateway cannot reach it"
        raise CompatPathNotServed(message, body=chat.error_body(message, "invalid_request_error", "model",
                                                                "model_not_found"))
    return found


def _has_key(gateway: GatewayState, slug: str) -> bool:
    keys = gateway.keys.get(slug)
    return keys is not None and bool(keys.by_alias or keys.default)


def _headers(raw: list[tuple[bytes, bytes]], provider: Provider) -> list[tuple[bytes, bytes]]:
    """The caller's ``Authorization: Bearer`` in the provider's own auth header; no compression."""
    target = provider.auth_header.encode()
    present = {name for name, _ in raw}
    out = []
    for name, value in raw:
        if name == b"accept-encoding":
            continue
        if name == b"authorization" and target != b"authorization" and target not in present:
            bare = value[7:].strip() if value[:7].lower() == b"bearer " else value
            out.append((target, provider.auth_scheme.encode() + bare))
            continue
        out.append((name, value))
    return out


class TranslatingSend:
    """Wraps the client's ``send``: the provider's answer goes out in OpenAI's format.

    A 2xx event stream is translated chunk by chunk as it arrives; anything else (a JSON answer, an
    error) is buffered to its end, translated, and sent with its own length.
    """

    def __init__(self, send: Send, stream: bool, response: Callable[[Any, int], dict[str, Any]],
                 error: Callable[[int, bytes], bytes], translator: Callable[[], Any] | None,
                 created: int) -> None:
        self._send = send
        self._stream = stream
        self._response = response
        self._error = error
        self._translator_factory = translator
        self._created = created
        self._translator: Any = None
        self._start: dict[str, Any] | None = None
        self._buffer = bytearray()

    async def __call__(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = [(k, v) for k, v in message["headers"] if k not in (b"content-length", b"content-type")]
            content_type = dict(message["headers"]).get(b"content-type", b"")
            if message["status"] < 400 and self._stream and content_type.startswith(b"text/event-stream") \
                    and self._translator_factory is not None:
                self._translator = self._translator_factory()
                headers.append((b"content-type", b"text/event-stream; charset=utf-8"))
                await self._send({**message, "headers": headers})
            else:
                self._start = {**message, "headers": headers}
            return
        if kind != "http.response.body":
            await self._send(message)
            return
        more = message.get("more_body", False)
        if self._translator is not None:
            out = self._translator.feed(message.get("body", b""))
            if not more:
                out += self._translator.close()
            if out or not more:
                await self._send({"type": "http.response.body", "body": out, "more_body": more})
            return
        self._buffer += message.get("body", b"")
        if len(self._buffer) > MAX_ANSWER_BYTES:
            raise UpstreamUnreachable("compat: the provider's answer is too large to translate")
        if not more:
            await self._finish()

    async def _finish(self) -> None:
        assert self._start is not None
        status = self._start["status"]
        if status >= 400:
            body = self._error(status, bytes(self._buffer))
        else:
            try:
                body = orjson.dumps(self._response(orjson.loads(self._buffer), self._created))
            except chat.MALFORMED as exc:  # JSONDecodeError is a ValueError
                log.warning("compat: the provider's answer could not be translated", error=type(exc).__name__)
                status = 502
                body = chat.error_body("the provider's answer could not be translated", "upstream_error")
        headers = [*self._start["headers"], (b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
        await self._send({**self._start, "status": status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})
