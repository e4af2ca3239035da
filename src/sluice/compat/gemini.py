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

from sluice.compat import chat, stream
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
    need(raw, list, "messages", "a non-empty array")
    if not raw:
        raise TranslationError("messages", "must be a non-empty array")
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, from the assistant turns
    for i, message in enumerate(raw):
        field = f"messages[{i}]"
        need(message, dict, field, "an object")
        for name in message:
            if name not in ("role", "content", "tool_calls", "tool_call_id", "refusal") and \
                    message[name] is not None:
                raise TranslationError(f"{field}.{name}", f"not supported when translating to {PROVIDER}")
        role = message.get("role")
        if role in ("system", "developer"):
            if contents:
                raise TranslationError(f"{field}.role", f"{PROVIDER} takes system messages only before "
                                                        "the conversation starts")
            system.append(chat.text_of(message.get("content"), f"{field}.content"))
            continue
        if role == "user":
            parts, turn = _user_parts(message.get("content"), f"{field}.content"), "user"
        elif role == "assistant":
            parts, turn = _model_parts(message, field, names), "model"
        elif role == "tool":
            call_id = need(message.get("tool_call_id"), str, f"{field}.tool_call_id", "a string")
            if call_id not in names:
                raise TranslationError(f"{field}.tool_call_id", "names no tool call of an earlier "
                                                                "assistant message")
            parts, turn = [{"functionResponse": {"name": names[call_id], "response": _result(
                chat.text_of(message.get("content"), f"{field}.content"))}}], "user"
        else:
            raise TranslationError(f"{field}.role", "must be system, developer, user, assistant or tool")
        if contents and contents[-1]["role"] == turn:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": turn, "parts": parts})
    if not contents:
        raise TranslationError("messages", "needs at least one user message besides system messages")
    return "\n\n".join(system), contents


def _result(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"content": text}


def _user_parts(content: Any, field: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    need(content, list, field, "a string or an array of content parts")
    parts = []
    for i, part in enumerate(content):
        part_field = f"{field}[{i}]"
        need(part, dict, part_field, "an object")
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": need(part.get("text"), str, f"{part_field}.text", "a string")})
        elif kind == "image_url":
            image = need(part.get("image_url"), dict, f"{part_field}.image_url", "an object")
            url_field = f"{part_field}.image_url.url"
            inline = chat.data_url(need(image.get("url"), str, url_field, "a string"), url_field)
            if inline is None:
                raise TranslationError(url_field, f"{PROVIDER} takes images inline only: send a data URL")
            parts.append({"inlineData": {"mimeType": inline[0], "data": inline[1]}})
        else:
            raise TranslationError(f"{part_field}.type", f"{kind!r} parts are not supported by {PROVIDER}; "
                                                         "use text or image_url")
    return parts


def _model_parts(message: Mapping[str, Any], field: str, names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if message.get("content") is not None:
        text = chat.text_of(message["content"], f"{field}.content")
        if text:
            parts.append({"text": text})
    calls = message.get("tool_calls")
    if calls is not None:
        for j, call in enumerate(need(calls, list, f"{field}.tool_calls", "an array")):
            call_field = f"{field}.tool_calls[{j}]"
            need(call, dict, call_field, "an object")
            function = need(call.get("function"), dict, f"{call_field}.function", "an object")
            name = need(function.get("name"), str, f"{call_field}.function.name", "a string")
            names[need(call.get("id"), str, f"{call_field}.id", "a string")] = name
            args = chat.arguments(function.get("arguments"), f"{call_field}.function.arguments")
            parts.append({"functionCall": {"name": name, "args": args}})
    if not parts:
        raise TranslationError(f"{field}.content", "an assistant message needs content or tool_calls")
    return parts


def _declaration(tool: Any, field: str) -> dict[str, Any]:
    need(tool, dict, field, "an object")
    if tool.get("type") != "function":
        raise TranslationError(f"{field}.type", 'must be "function"')
    function = need(tool.get("function"), dict, f"{field}.function", "an object")
    out: dict[str, Any] = {"name": need(function.get("name"), str, f"{field}.function.name", "a string")}
    if function.get("description") is not None:
        out["description"] = need(function["description"], str, f"{field}.function.description",
                                  "a string")
    if function.get("parameters") is not None:
        # JSON Schema as given; parametersJsonSchema takes full JSON Schema (parameters, an OpenAPI subset)
        out["parametersJsonSchema"] = need(function["parameters"], dict, f"{field}.function.parameters",
                                           "an object")
    if function.get("strict") is not None:
        raise TranslationError(f"{field}.function.strict", f"not supported by {PROVIDER}")
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice in ("auto", "none"):
        return {"mode": choice.upper()}
    if choice == "required":
        return {"mode": "ANY"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = need(choice.get("function"), dict, "tool_choice.function", "an object")
        return {"mode": "ANY", "allowedFunctionNames": [
            need(function.get("name"), str, "tool_choice.function.name", "a string")]}
    raise TranslationError("tool_choice", 'must be "auto", "none", "required" or a function choice')


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
