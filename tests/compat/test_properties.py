"""Property tests: any OpenAI chat or embeddings request either translates or is refused with a 400
naming a field of the request -- never another exception (which the route would answer 500).
Arbitrary JSON in any field gets the same guarantee, for every provider /compat serves (through
``sluice.proxy.compat.translate``, the route's whole translation step) and for the translators
alone. Provider answers of any shape translate or raise one of the exceptions the route turns
into a 502."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.compat import anthropic, chat, gemini, gemini_embed
from sluice.errors import TranslationError
from sluice.providers.registry import load_catalog
from sluice.proxy import compat as route

TEXT = st.text(max_size=12)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                    max_leaves=8)
IMAGE_URL = st.sampled_from(["data:image/png;base64,iVBORw0KGgo=", "https://example.com/a.png",
                             "data:text/plain,hi", "data:image/png,raw"])
PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries(
        {"url": IMAGE_URL}, optional={"detail": st.sampled_from(["auto", "low"])})}),
    st.fixed_dictionaries({"type": st.just("input_audio"),
                           "input_audio": st.fixed_dictionaries({"data": TEXT, "format": st.just("wav")})}),
)
CONTENT = TEXT | st.lists(PART, max_size=3)
ARGS = st.sampled_from(['{"city":"Paris"}', "", "{}", "[1]", "{bad"])
CALL = st.fixed_dictionaries({"id": st.sampled_from(["call_0", "call_1"]), "type": st.just("function"),
                              "function": st.fixed_dictionaries({"name": st.sampled_from(["f", "g"]),
                                                                 "arguments": ARGS})})
MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "developer"]), "content": CONTENT}),
    st.fixed_dictionaries({"role": st.just("user"), "content": CONTENT}, optional={"name": TEXT}),
    st.fixed_dictionaries({"role": st.just("assistant")},
                          optional={"content": st.none() | CONTENT, "tool_calls": st.lists(CALL, max_size=2),
                                    "refusal": st.none()}),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": st.sampled_from(["call_0", "call_9"]),
                           "content": CONTENT}),
)
TOOL = st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
    {"name": st.sampled_from(["f", "g"])},
    optional={"description": TEXT, "parameters": st.just({"type": "object", "properties": {}}),
              "strict": st.booleans()})})
OPTIONAL = {
    "max_tokens": st.integers(1, 10_000), "max_completion_tokens": st.integers(1, 10_000),
    "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "n": st.integers(1, 3),
    "stop": st.none() | TEXT | st.lists(TEXT, max_size=4), "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "presence_penalty": st.floats(-2, 2), "frequency_penalty": st.floats(-2, 2),
    "logprobs": st.booleans(), "top_logprobs": st.integers(0, 20), "seed": st.integers(-2**31, 2**31),
    "user": TEXT, "tools": st.lists(TOOL, max_size=2), "parallel_tool_calls": st.booleans(),
    "tool_choice": st.sampled_from(["auto", "none", "required",
                                    {"type": "function", "function": {"name": "f"}}]),
    "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"},
                                        {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}]),
    "logit_bias": st.dictionaries(st.sampled_from(["50256", "1"]), st.integers(-100, 100), max_size=1),
    "store": st.booleans(), "metadata": st.dictionaries(TEXT, TEXT, max_size=2),
    "reasoning_effort": st.sampled_from(["low", "medium", "high"]),
}
REQUEST = st.fixed_dictionaries({"model": st.just("p/m"),
                                 "messages": st.lists(MESSAGE, min_size=1, max_size=5)}, optional=OPTIONAL)


def _names_a_field(refused: TranslationError, request: dict[str, Any]) -> None:
    assert refused.field, "a refusal must name the field"
    top = re.split(r"[.\[]", refused.field, maxsplit=1)[0]
    assert top in request, f"{refused.field!r} names no field of the request"


def _translate_or_refuse(request: dict[str, Any]) -> None:
    for translate in (lambda r: anthropic.request(r, "m"), gemini.request):
        try:
            translate(request)
        except TranslationError as refused:
            _names_a_field(refused, request)


CATALOG = load_catalog({})
SERVED = sorted(slug for slug, provider in CATALOG.items() if provider.compat is not None)
MODEL = st.builds(lambda slug, name: f"{slug}/{name}",
                  st.sampled_from([*SERVED, "cohere", "nope", ""]),
                  st.sampled_from(["m", "gemini-2.5-flash", "@cf/meta/llama-3.1-8b-instruct", "a/b", "..",
                                   "x y", "%2e%2e", ""]) | TEXT) | JSON


def _route_translates_or_refuses(path: str, request: dict[str, Any]) -> None:
    """The whole translation step of the route, for any provider: a request to send, or a refusal."""
    body = json.dumps(request).encode()  # as a client may send it: integers of any size, Infinity
    try:
        provider, upstream = route.translate(path, body, CATALOG)
    except TranslationError as refused:
        if refused.field == "":  # the body as a whole: only when it is not JSON orjson reads
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(body)
        else:
            _names_a_field(refused, request)
        return
    assert provider.compat is not None
    orjson.dumps(upstream.body)
    segments = upstream.path.partition("?")[0].split("/")
    assert not {".", ".."} & set(segments) and "" not in segments, upstream.path


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REQUEST)
def test_valid_openai_request_translates_or_names_the_field(request: dict[str, Any]) -> None:
    _translate_or_refuse(request)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REQUEST, st.sampled_from([*sorted(OPTIONAL), "messages", "model"]), JSON)
def test_any_json_in_any_field_is_refused_cleanly(request: dict[str, Any], field: str, value: Any) -> None:
    _translate_or_refuse({**request, field: value})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REQUEST, MODEL)
def test_chat_for_any_provider_translates_or_names_the_field(request: dict[str, Any], model: Any) -> None:
    _route_translates_or_refuses(route.CHAT, {**request, "model": model})


EMBED_OPTIONAL = {"encoding_format": st.sampled_from(["float", "base64"]), "dimensions": st.integers(1, 3072),
                  "user": TEXT}
EMBED_REQUEST = st.fixed_dictionaries(
    {"model": MODEL, "input": TEXT | st.lists(TEXT, max_size=4) | st.lists(st.integers(0, 50_000), max_size=4)
     | st.lists(st.lists(st.integers(0, 50_000), max_size=3), max_size=3)},
    optional=EMBED_OPTIONAL)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EMBED_REQUEST)
def test_embeddings_for_any_provider_translate_or_name_the_field(request: dict[str, Any]) -> None:
    _route_translates_or_refuses(route.EMBEDDINGS, request)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EMBED_REQUEST, st.sampled_from([*sorted(EMBED_OPTIONAL), "input"]), JSON)
def test_any_json_in_any_embeddings_field_is_refused_cleanly(request: dict[str, Any], field: str,
                                                             value: Any) -> None:
    request = {**request, field: value, "model": "google-ai-studio/e"}
    try:
        gemini_embed.request(request, "e")
    except TranslationError as refused:
        _names_a_field(refused, request)
    _route_translates_or_refuses(route.EMBEDDINGS, request)


@settings(max_examples=150, deadline=None)
@given(JSON | st.fixed_dictionaries({"embeddings": st.lists(
    JSON | st.fixed_dictionaries({"values": JSON | st.lists(st.floats() | st.integers(), max_size=4)}),
    max_size=3)}), st.sampled_from(["float", "base64"]))
def test_any_embeddings_answer_translates_or_raises_a_known_malformation(answer: Any, fmt: str) -> None:
    try:
        orjson.dumps(gemini_embed.response(answer, "m", fmt))
    except chat.MALFORMED:
        pass


@settings(max_examples=150, deadline=None)
@given(st.lists(JSON, min_size=1, max_size=4))
def test_any_json_as_messages_is_refused_cleanly(messages: list[Any]) -> None:
    _translate_or_refuse({"model": "p/m", "messages": messages})


# Provider events of the right kinds with arbitrary values in the fields the translators read.
FIELDS = ("message", "content_block", "delta", "index", "usage", "error", "candidates", "content",
          "parts", "usageMetadata", "finishReason", "functionCall", "text", "promptFeedback")
EVENT = st.one_of(JSON, st.fixed_dictionaries(
    {"type": st.sampled_from(["message_start", "content_block_start", "content_block_delta", "message_delta",
                              "message_stop", "error"])},
    optional={field: JSON for field in FIELDS}), st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4))


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENT, min_size=1, max_size=6), st.sampled_from(["anthropic", "google-ai-studio"]))
def test_any_upstream_stream_translates_or_ends_in_a_stream_error(events: list[Any], provider: str) -> None:
    """A provider stream of arbitrary JSON events never raises out of the translator."""
    translator: Any = anthropic.StreamTranslator(0, True) if provider == "anthropic" else \
        gemini.StreamTranslator(0, "m", True)
    out = b"".join(translator.feed(f"data: {json.dumps(event)}\n\n".encode()) for event in events)
    out += translator.close()
    assert out.count(b'"upstream_error"') <= 1


@settings(max_examples=150, deadline=None)
@given(EVENT, st.sampled_from(["anthropic", "google-ai-studio"]))
def test_any_upstream_answer_translates_or_raises_a_known_malformation(answer: Any, provider: str) -> None:
    """The route answers 502 for exactly these exceptions; anything else would be a 500."""
    try:
        if provider == "anthropic":
            anthropic.response(answer, 0)
        else:
            gemini.response(answer, 0, "m")
    except chat.MALFORMED:
        pass
