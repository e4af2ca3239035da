"""The OpenAI side of ``/compat``: reading a chat-completions request, building OpenAI responses,
stream chunks and error bodies.

Every check names the field as OpenAI's own errors do (``messages[2].content[0].image_url``).
A field the target provider cannot honour is refused, never dropped; a neutral value (``n: 1``,
``presence_penalty: 0``, ``logprobs: false``…) is accepted because it asks for nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from sluice.errors import TranslationError

DONE = b"data: [DONE]\n\n"
MODEL_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Fields with an effect only at their neutral value: accepted when absent, null or equal to it.
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "n": (1,), "presence_penalty": (0, 0.0), "frequency_penalty": (0, 0.0), "logprobs": (False,),
    "logit_bias": ({},), "store": (False,), "modalities": (["text"],), "service_tier": ("auto", "default"),
    "parallel_tool_calls": (True,), "response_format": ({"type": "text"},), "top_logprobs": (0,),
}


def parse_body(body: bytes) -> dict[str, Any]:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise TranslationError("", "request body is not valid JSON") from None
    if not isinstance(request, dict):
        raise TranslationError("", "request body must be a JSON object")
    return request


def split_model(request: Mapping[str, Any]) -> tuple[str, str]:
    """``"anthropic/claude-x"`` -> ``("anthropic", "claude-x")``; the model may hold more slashes."""
    model = request.get("model")
    if not isinstance(model, str) or "/" not in model:
        raise TranslationError("model", 'must be a string "{provider}/{model}", '
                                        'e.g. "anthropic/claude-sonnet-4-5"')
    provider, _, name = model.partition("/")
    if not provider or not name:
        raise TranslationError("model", 'must be a string "{provider}/{model}"')
    return provider, name


def fill_path(template: str, model: str) -> str:
    """A provider path from the catalog with ``{model}`` filled in. There the model is one path
    segment: only the characters model names use, never a dot segment."""
    if "{model}" not in template:
        return template
    if not MODEL_SEGMENT.fullmatch(model) or model.strip(".") == "":
        raise TranslationError("model", "this provider's model names are letters, digits, '.', '-' and '_'")
    return template.replace("{model}", model)


def refuse_unknown(request: Mapping[str, Any], supported: frozenset[str], provider: str) -> None:
    """Refuse every field ``provider`` cannot honour (unless absent, null or neutral)."""
    for field, value in request.items():
        if field in supported or value is None or value in NEUTRAL.get(field, ()):
            continue
        raise TranslationError(field, f"not supported when translating to {provider}")


# -- typed reads that name the field ----------------------------------------------------------------

def need(value: Any, kind: type | tuple[type, ...], field: str, what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise TranslationError(field, f"must be {what}")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def number(request: Mapping[str, Any], field: str, low: float, high: float) -> float | None:
    value = request.get(field)
    if value is None:
        return None
    need(value, (int, float), field, "a number")
    if not low <= value <= high:
        raise TranslationError(field, f"must be between {low:g} and {high:g} for this provider")
    return value  # type: ignore[no-any-return]


def positive_int(request: Mapping[str, Any], field: str) -> int | None:
    value = request.get(field)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TranslationError(field, "must be a positive integer")
    return value


def max_tokens(request: Mapping[str, Any]) -> int | None:
    """``max_completion_tokens`` (current) or ``max_tokens`` (deprecated), not both different."""
    new, old = positive_int(request, "max_completion_tokens"), positive_int(request, "max_tokens")
    if new is not None and old is not None and new != old:
        raise TranslationError("max_tokens", "conflicts with max_completion_tokens; send one of them")
    return new if new is not None else old


def stop_sequences(request: Mapping[str, Any]) -> list[str] | None:
    stop = request.get("stop")
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    need(stop, list, "stop", "a string or an array of strings")
    for i, item in enumerate(stop):
        need(item, str, f"stop[{i}]", "a string")
    return stop or None


def include_usage(request: Mapping[str, Any]) -> bool:
    options = request.get("stream_options")
    if options is None:
        return False
    need(options, dict, "stream_options", "an object")
    for name in options:
        if name != "include_usage":
            raise TranslationError(f"stream_options.{name}", "not supported")
    return bool(need(options.get("include_usage", False), bool, "stream_options.include_usage", "a boolean"))


def text_of(content: Any, field: str) -> str:
    """A message content that must be text: a string or an array of ``text`` parts."""
    if isinstance(content, str):
        return content
    need(content, list, field, "a string or an array of text parts")
    texts = []
    for i, part in enumerate(content):
        need(part, dict, f"{field}[{i}]", "an object")
        if part.get("type") != "text":
            raise TranslationError(f"{field}[{i}].type", "only text parts are allowed here")
        texts.append(need(part.get("text"), str, f"{field}[{i}].text", "a string"))
    return "".join(texts)


def data_url(url: str, field: str) -> tuple[str, str] | None:
    """``data:image/png;base64,AAAA`` -> ``("image/png", "AAAA")``; None for an ordinary URL."""
    if not url.startswith("data:"):
        return None
    head, comma, data = url[5:].partition(",")
    media_type, _, encoding = head.partition(";")
    if not comma or encoding != "base64" or not media_type.startswith("image/"):
        raise TranslationError(field, "a data URL must be data:image/<type>;base64,<data>")
    return media_type, data


def arguments(raw: Any, field: str) -> dict[str, Any]:
    """A tool call's ``function.arguments`` (a JSON text) as the object the providers take."""
    need(raw, str, field, "a JSON text")
    try:
        value = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise TranslationError(field, "is not valid JSON") from None
    return need(value, dict, field, "a JSON object")  # type: ignore[no-any-return]


# -- responses ----------------------------------------------------------------------------------------

def usage(prompt: int, completion: int, cached: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": prompt + completion}
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def completion(id_: str, created: int, model: str, message: dict[str, Any], finish: str | None,
               usage_: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": id_, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": usage_}


def assistant_message(text: str | None, tool_calls: list[dict[str, Any]]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def tool_call(id_: str, name: str, args: Any) -> dict[str, Any]:
    return {"id": id_, "type": "function",
            "function": {"name": name, "arguments": orjson.dumps(args).decode()}}


def error_body(message: str, type_: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> bytes:
    """OpenAI's error shape, which the ``openai`` SDK reads into its exceptions."""
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def translation_error_body(error: TranslationError) -> bytes:
    return error_body(error.message, param=error.field or None)


class ChunkWriter:
    """Serialises ``chat.completion.chunk`` events for one stream (same id, created and model)."""

    __slots__ = ("_head", "_tail")

    def __init__(self, id_: str, created: int, model: str, with_usage: bool) -> None:
        head = orjson.dumps({"id": id_, "object": "chat.completion.chunk", "created": created,
                             "model": model})
        self._head = b"data: " + head[:-1] + b',"choices":'
        # OpenAI sends "usage": null on every chunk but the last when include_usage is set
        self._tail = b',"usage":null}\n\n' if with_usage else b"}\n\n"

    def delta(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return self._head + orjson.dumps([choice]) + self._tail

    def usage(self, usage_: dict[str, Any]) -> bytes:
        return self._head + b'[],"usage":' + orjson.dumps(usage_) + b"}\n\n"


def stream_error(message: str, type_: str, code: str | None = None) -> bytes:
    """An error inside an open stream: the ``openai`` SDK raises it from a ``data: {"error": …}`` event."""
    return b"data: " + error_body(message, type_, None, code) + b"\n\n"


# What a malformed provider answer raises inside a translator (a non-object where an object belongs…)
MALFORMED = (AttributeError, TypeError, KeyError, IndexError, ValueError, OverflowError)
UNREADABLE_STREAM = stream_error("the provider's stream could not be translated", "upstream_error")
