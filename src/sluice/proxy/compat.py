"""``/v1/{account}/{gateway}/compat/chat/completions``: OpenAI's chat API in front of any provider.

The request is read and translated first (``sluice.compat``, pure), then continues through the data
plane exactly as a provider-path request to the provider named in ``model`` ("{provider}/{model}"):
the same credentials, limits, cache, retries and request log, which records the provider and model
actually called. OpenAI-compatible providers (custom providers included: ``custom-{slug}/{model}``
goes to ``{base_url}/chat/completions``) get the body with the bare model name, on their chat path;
anthropic and google-ai-studio get their native format, and their answers (JSON, SSE, errors)
are translated back as they pass (``TranslatingSend``).

The caller's ``Authorization: Bearer …`` (OpenAI's convention) moves to the provider's own auth
header, so a Sluice token or the caller's own key is recognised as on the provider path.
``accept-encoding`` is not forwarded: a translated answer must arrive uncompressed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from sluice.compat import anthropic, chat, gemini
from sluice.errors import (
    CompatMethodNotAllowed,
    CompatPathNotServed,
    RequestTooLarge,
    TranslationError,
    Untranslatable,
    UpstreamUnreachable,
)
from sluice.providers import custom
from sluice.providers.registry import Provider
from sluice.proxy.body import BUFFER_LIMIT, StreamedBody, read_body

log = structlog.get_logger("sluice.proxy")

COMPAT_SLUG = "compat"
# OpenAI-compatible providers: the chat path under each one's base URL.
PASS_THROUGH = {
    "openai": "chat/completions", "groq": "chat/completions", "cerebras": "chat/completions",
    "mistral": "v1/chat/completions", "deepseek": "chat/completions", "grok": "v1/chat/completions",
    "openrouter": "v1/chat/completions", "perplexity-ai": "chat/completions",
}
TRANSLATED = ("anthropic", "google-ai-studio")
CACHE_MARK = b"compat\n"  # a /compat answer is never served to the provider path, nor the reverse
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a buffered (non-streamed) answer larger than this is refused
Send = Callable[[dict[str, Any]], Awaitable[None]]


def refused(error: TranslationError) -> Untranslatable:
    """A 400 whose body is OpenAI's error shape, naming the field (``param``)."""
    return Untranslatable(error.message, body=chat.translation_error_body(error))


@dataclass(slots=True)
class CompatCall:
    scope: dict[str, Any]  # the request as the provider path sees it (headers, query string)
    slug: str
    path: str
    body: bytes
    wrap: Callable[[Send], Send]  # the answer's translation, identity for pass-through
    # The response cache keys on the caller's OpenAI body: the cached answer is the translated one,
    # and it depends on more than the native body (stream_options.include_usage is not sent upstream).
    cache_body: bytes


async def prepare(scope: dict[str, Any], receive: Any, rest: str, catalog: Mapping[str, Provider],
                  max_bytes: int, watch: Callable[[], None]) -> CompatCall:
    """Read and translate a ``/compat`` request; raises ``GatewayError`` (404, 405, 413, 400)."""
    if rest.partition("?")[0] != "chat/completions":
        raise CompatPathNotServed("compat: only chat/completions is served (models, embeddings: not yet)")
    if scope["method"] != "POST":
        raise CompatMethodNotAllowed()
    body = await read_body(receive, max_bytes, watch)
    if isinstance(body, StreamedBody):
        raise RequestTooLarge(f"compat: request body too large: the limit is {BUFFER_LIMIT} bytes")
    try:
        request = chat.parse_body(body)
        slug, model = chat.split_model(request)
        provider = catalog.get(slug)
        if provider is None or (slug not in PASS_THROUGH and slug not in TRANSLATED and not provider.custom):
            reachable = ", ".join(sorted((*PASS_THROUGH, *TRANSLATED, "custom-{slug}")))
            raise TranslationError("model", f"provider {slug[:64]!r} is not served by /compat; one of: "
                                            f"{reachable}")
        stream = request.get("stream") is True
        include_usage = chat.include_usage(request)
        created = int(time.time())
        wrap: Callable[[Send], Send]
        query = b""
        if slug == "anthropic":
            upstream_body, path = anthropic.request(request, model), anthropic.PATH

            def wrap(send: Send) -> Send:
                return TranslatingSend(send, stream, anthropic.response, anthropic.error,
                                       lambda: anthropic.StreamTranslator(created, include_usage), created)
        elif slug == "google-ai-studio":
            upstream_body, path = gemini.request(request), gemini.path(model, stream)
            path, _, raw_query = path.partition("?")
            query = raw_query.encode()

            def wrap(send: Send) -> Send:
                return TranslatingSend(send, stream, lambda answer, at: gemini.response(answer, at, model),
                                       gemini.error,
                                       lambda: gemini.StreamTranslator(created, model, include_usage),
                                       created)
        else:
            upstream_body = {**request, "model": model}
            path = custom.COMPAT_PATH if provider.custom else PASS_THROUGH[slug]

            def wrap(send: Send) -> Send:
                return send
    except TranslationError as error:
        raise refused(error) from None
    headers = _headers(scope["headers"], provider)
    return CompatCall({**scope, "headers": headers, "query_string": query}, slug, path,
                      orjson.dumps(upstream_body), wrap, CACHE_MARK + body)


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
                 error: Callable[[int, bytes], bytes], translator: Callable[[], Any], created: int) -> None:
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
            if message["status"] < 400 and self._stream and content_type.startswith(b"text/event-stream"):
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
            except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError, IndexError) as exc:
                log.warning("compat: the provider's answer could not be translated", error=type(exc).__name__)
                status = 502
                body = chat.error_body("the provider's answer could not be translated", "upstream_error")
        headers = [*self._start["headers"], (b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
        await self._send({**self._start, "status": status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})
