"""OpenAI chat completions <-> Gemini ``generateContent`` (google-ai-studio), both ways, streams included.

Request: ``system``/``developer`` -> ``systemInstruction``; user text and images (data URLs only:
AI Studio does not fetch arbitrary URLs, so an http(s) image URL is refused); assistant text and
``tool_calls`` -> ``functionCall`` parts in a ``model`` turn; ``tool`` messages -> ``functionResponse``
parts (the function's name is looked up from the assistant turn that made the call; a non-object
result is wrapped as ``{"content": text}``); sampling -> ``generationConfig``.
Path (catalog.toml): ``v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse`` to stream.
Gemini gives function calls no id on older models: ``call_{n}`` ids are made up in that case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from sluice.compat import chat, messages, stream
from sluice.compat.chat import need
from sluice.errors import TranslationError

PROVIDER = "google-ai-studio"
SUPPORTED = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream",
    "stream_options", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "seed", "n",
    "response_format",
})
FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
          "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
          "IMAGE_SAFETY": "content_filter"}


# -- request --------------------------------------------------------------------------------------------

def request(openai: Mapping[str, Any]) -> dict[str, Any]:
    """The ``generateContent`` body for an OpenAI chat-completions body (the model goes in the path)."""
    chat.refuse_unknown(openai, SUPPORTED, PROVIDER)
    system, contents = _contents(openai.get("messages"))
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": system}]}
    config: dict[str, Any] = {}
    for field, name, low, high in (("temperature", "temperature", 0, 2), ("top_p", "topP", 0, 1),
                                   ("presence_penalty", "presencePenalty", -2, 2),
                                   ("frequency_penalty", "frequencyPenalty", -2, 2)):
        value = chat.number(openai, field, low, high)
        if value is not None:
            config[name] = value
    limit = chat.max_tokens(openai)
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = chat.stop_sequences(openai)
    if stop:
        config["stopSequences"] = stop
    if openai.get("seed") is not None:
        config["seed"] = need(openai["seed"], int, "seed", "an integer")
    n = chat.positive_int(openai, "n")
    if n is not None and n != 1:
        raise TranslationError("n", "only 1 is supported")
    config.update(_response_format(openai.get("response_format")))
    if config:
        out["generationConfig"] = config
    if openai.get("stream") is not None:
        need(openai["stream"], bool, "stream", "a boolean")
    chat.include_usage(openai)
    tools = openai.get("tools")
    if tools is not None:
        declarations = [_declaration(t, f"tools[{i}]") for i, t in enumerate(need(tools, list, "tools",
                                                                                    "an array"))]
        if declarations:
            out["tools"] = [{"functionDeclarations": declarations}]
    choice = _tool_choice(openai.get("tool_choice"))
    if choice is not None:
        out["toolConfig"] = {"functionCallingConfig": choice}
    return out


def _contents(raw: Any) -> tuple[str, list[dict[str, Any]]]:
    names: dict[str, str] = {}  # tool call id -> function name, from the assistant turns

    def turn(role: str, message: Mapping[str, Any], field: str) -> tuple[str, list[dict[str, Any]]]:
        if role == "user":
            return "user", _user_parts(message.get("content"), f"{field}.content")
        if role == "assistant":
            return "model", _model_parts(message, field, names)
        call_id = need(message.get("tool_call_id"), str, f"{field}.tool_call_id", "a string")
        if call_id not in names:
            raise TranslationError(f"{field}.tool_call_id",
                                   "names no tool call of an earlier assistant message")
        result = _result(chat.text_of(message.get("content"), f"{field}.content"))
        return "user", [{"functionResponse": {"name": names[call_id], "response": result}}]

    return messages.conversation(raw, PROVIDER, "parts", turn)


def _result(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"content": text}


def _text(text: str) -> dict[str, Any]:
    return {"text": text}


def _image(url: str, inline: tuple[str, str] | None, field: str) -> dict[str, Any]:
    if inline is None:
        raise TranslationError(field, f"{PROVIDER} takes images inline only: send a data URL")
    return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}


def _user_parts(content: Any, field: str) -> list[dict[str, Any]]:
    return messages.user_parts(content, field, PROVIDER, _text, _image)


def _model_parts(message: Mapping[str, Any], field: str, names: dict[str, str]) -> list[dict[str, Any]]:
    def call(id_: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        names[id_] = name  # a later tool message names the call by id; Gemini wants the function's name
        return {"functionCall": {"name": name, "args": args}}

    return messages.assistant_parts(message, field, _text, call)


def _declaration(tool: Any, field: str) -> dict[str, Any]:
    function, out = messages.function_tool(tool, field)
    if function.get("parameters") is not None:
        # JSON Schema as given; parametersJsonSchema takes full JSON Schema (parameters, an OpenAPI subset)
        out["parametersJsonSchema"] = need(function["parameters"], dict, f"{field}.function.parameters",
                                           "an object")
    if function.get("strict") is not None:
        raise TranslationError(f"{field}.function.strict", f"not supported by {PROVIDER}")
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    picked = messages.function_choice(choice)
    if picked is None:
        return None
    mode, name = picked
    if name is not None:
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    return {"mode": "ANY" if mode == "required" else mode.upper()}


def _response_format(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    need(value, dict, "response_format", "an object")
    kind = value.get("type")
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = need(value.get("json_schema"), dict, "response_format.json_schema", "an object")
        schema = need(spec.get("schema"), dict, "response_format.json_schema.schema", "an object")
        return {"responseMimeType": "application/json", "responseJsonSchema": schema}
    raise TranslationError("response_format.type", 'must be "text", "json_object" or "json_schema"')


# -- response -------------------------------------------------------------------------------------------

def response(answer: Mapping[str, Any], created: int, model: str) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` for a ``GenerateContentResponse``."""
    candidates = answer.get("candidates") or [{}]
    candidate = candidates[0]
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if part.get("thought"):
            continue  # thought summaries have no chat-completions field
        if "text" in part:
            texts.append(part["text"])
        elif "functionCall" in part:
            call = part["functionCall"]
            calls.append(chat.tool_call(call.get("id") or f"call_{len(calls)}", call.get("name", ""),
                                        call.get("args") or {}))
    finish = _finish(candidate.get("finishReason"), bool(calls), answer)
    return chat.completion(answer.get("responseId") or "", created, answer.get("modelVersion") or model,
                           chat.assistant_message("".join(texts) if texts or not calls else None, calls),
                           finish, _usage(answer.get("usageMetadata") or {}))


def _finish(reason: str | None, called: bool, answer: Mapping[str, Any]) -> str | None:
    if reason is None:
        blocked = (answer.get("promptFeedback") or {}).get("blockReason")
        return "content_filter" if blocked else None
    if called and reason == "STOP":
        return "tool_calls"
    return FINISH.get(reason, "stop")


def _usage(meta: Mapping[str, Any]) -> dict[str, Any]:
    completion = (meta.get("candidatesTokenCount") or 0) + (meta.get("thoughtsTokenCount") or 0)
    return chat.usage(meta.get("promptTokenCount") or 0, completion, meta.get("cachedContentTokenCount"))


def error(status: int, body: bytes) -> bytes:
    """An OpenAI error body for a Google error ``{"error": {"code", "message", "status"}}``."""
    try:
        detail = orjson.loads(body)
        if isinstance(detail, list):  # the streaming endpoint wraps errors in an array
            detail = detail[0]
        detail = detail.get("error") or {}
        message, kind = str(detail.get("message") or ""), str(detail.get("status") or "")
    except (orjson.JSONDecodeError, AttributeError, IndexError):
        message, kind = "", ""
    return chat.error_body(message or f"{PROVIDER} answered HTTP {status}",
                           kind.lower() or "upstream_error", code=kind or None)


# -- stream ---------------------------------------------------------------------------------------------

class StreamTranslator(stream.StreamTranslator):
    """``streamGenerateContent?alt=sse`` (one ``GenerateContentResponse`` per event, no end marker)
    -> OpenAI ``chat.completion.chunk`` events. The end of the upstream stream sends the usage chunk
    (when asked for) and ``[DONE]``."""

    __slots__ = ("_calls", "_model", "_usage")

    def __init__(self, created: int, model: str, include_usage: bool) -> None:
        super().__init__(created, include_usage)
        self._model = model
        self._calls = 0
        self._usage: dict[str, Any] = {}

    def _end(self) -> bytes:
        return self._done(_usage(self._usage))

    def _event(self, answer: dict[str, Any]) -> bytes:
        if "error" in answer:
            return self._error(*_stream_error(answer["error"]))
        out = bytearray()
        writer = self._writer
        if writer is None:
            writer = self._writer_for(answer.get("responseId") or "",
                                      answer.get("modelVersion") or self._model)
            out += writer.delta({"role": "assistant", "content": ""})
        if answer.get("usageMetadata"):
            self._usage = answer["usageMetadata"]
        candidate = (answer.get("candidates") or [{}])[0]
        for part in (candidate.get("content") or {}).get("parts") or ():
            if part.get("thought"):
                continue
            if "text" in part:
                out += writer.delta({"content": part["text"]})
            elif "functionCall" in part:
                call = part["functionCall"]
                index, self._calls = self._calls, self._calls + 1
                out += writer.delta({"tool_calls": [{
                    "index": index, "id": call.get("id") or f"call_{index}", "type": "function",
                    "function": {"name": call.get("name", ""),
                                 "arguments": orjson.dumps(call.get("args") or {}).decode()}}]})
        finish = _finish(candidate.get("finishReason"), self._calls > 0, answer)
        if finish is not None:
            out += writer.delta({}, finish)
        return bytes(out)


def _stream_error(detail: Any) -> tuple[str, str]:
    if not isinstance(detail, dict):
        return "upstream stream error", "upstream_error"
    return (str(detail.get("message") or "upstream stream error"),
            str(detail.get("status") or "upstream_error").lower())
