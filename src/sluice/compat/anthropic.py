"""OpenAI chat completions <-> Anthropic Messages (``POST /v1/messages``), both ways, streams included.

Request: ``system``/``developer`` messages -> ``system``; user text and images (data URLs -> base64
sources, http(s) URLs -> url sources); assistant text and ``tool_calls`` -> ``tool_use`` blocks;
``tool`` messages -> ``tool_result`` blocks in a user turn; consecutive turns of one role are merged
(Anthropic alternates roles). ``max_tokens`` is required by Anthropic: ``DEFAULT_MAX_TOKENS`` when
the request has none. ``temperature`` above 1 is refused (Anthropic's range is 0..1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from sluice.compat import chat, messages, stream
from sluice.compat.chat import need

PROVIDER = "anthropic"
DEFAULT_MAX_TOKENS = 4096
SUPPORTED = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream",
    "stream_options", "tools", "tool_choice", "parallel_tool_calls", "user",
})
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
          "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter"}


# -- request --------------------------------------------------------------------------------------------

def request(openai: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The Anthropic Messages body for an OpenAI chat-completions body (``model`` without prefix)."""
    chat.refuse_unknown(openai, SUPPORTED, PROVIDER)
    system, turns = _messages(openai.get("messages"))
    out: dict[str, Any] = {"model": model, "messages": turns,
                           "max_tokens": chat.max_tokens(openai) or DEFAULT_MAX_TOKENS}
    if system:
        out["system"] = system
    temperature = chat.number(openai, "temperature", 0, 1)
    if temperature is not None:
        out["temperature"] = temperature
    top_p = chat.number(openai, "top_p", 0, 1)
    if top_p is not None:
        out["top_p"] = top_p
    stop = chat.stop_sequences(openai)
    if stop:
        out["stop_sequences"] = stop
    if openai.get("stream") is not None and need(openai["stream"], bool, "stream", "a boolean"):
        out["stream"] = True
    chat.include_usage(openai)  # checked here; used by the stream translator
    tools = openai.get("tools")
    if tools is not None:
        out["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(need(tools, list, "tools",
                                                                                   "an array"))]
    choice = _tool_choice(openai.get("tool_choice"), openai.get("parallel_tool_calls"))
    if choice is not None:
        out["tool_choice"] = choice
    user = openai.get("user")
    if user is not None:
        out["metadata"] = {"user_id": need(user, str, "user", "a string")}
    return out


def _messages(raw: Any) -> tuple[str, list[dict[str, Any]]]:
    return messages.conversation(raw, PROVIDER, "content", _turn)


def _turn(role: str, message: Mapping[str, Any], field: str) -> tuple[str, list[dict[str, Any]]]:
    if role == "user":
        return "user", _user_blocks(message.get("content"), f"{field}.content")
    if role == "assistant":
        return "assistant", _assistant_blocks(message, field)
    call_id = need(message.get("tool_call_id"), str, f"{field}.tool_call_id", "a string")
    return "user", [{"type": "tool_result", "tool_use_id": call_id,
                     "content": chat.text_of(message.get("content"), f"{field}.content")}]


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _image(url: str, inline: tuple[str, str] | None, field: str) -> dict[str, Any]:
    source = {"type": "base64", "media_type": inline[0], "data": inline[1]} if inline else \
        {"type": "url", "url": url}
    return {"type": "image", "source": source}


def _tool_use(id_: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": id_, "name": name, "input": args}


def _user_blocks(content: Any, field: str) -> list[dict[str, Any]]:
    return messages.user_parts(content, field, PROVIDER, _text, _image)


def _assistant_blocks(message: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    return messages.assistant_parts(message, field, _text, _tool_use)


def _tool(tool: Any, field: str) -> dict[str, Any]:
    function, out = messages.function_tool(tool, field)
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    out["input_schema"] = need(schema, dict, f"{field}.function.parameters", "an object")
    if function.get("strict") is not None:
        out["strict"] = need(function["strict"], bool, f"{field}.function.strict", "a boolean")
    return out


MODES = {"auto": "auto", "none": "none", "required": "any", "function": "tool"}


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    picked = messages.function_choice(choice)
    out: dict[str, Any] | None = None
    if picked is not None:
        mode, name = picked
        out = {"type": MODES[mode], **({"name": name} if name is not None else {})}
    if parallel is not None and not need(parallel, bool, "parallel_tool_calls", "a boolean"):
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out


# -- response -------------------------------------------------------------------------------------------

def response(message: Mapping[str, Any], created: int) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` for an Anthropic ``message``."""
    texts, calls = [], []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append(chat.tool_call(block.get("id", ""), block.get("name", ""), block.get("input", {})))
        # thinking and server-tool blocks have no chat-completions field: not requested, not shown
    return chat.completion(message.get("id", ""), created, message.get("model", ""),
                           chat.assistant_message("".join(texts) if texts or not calls else None, calls),
                           FINISH.get(message.get("stop_reason") or "", "stop"),
                           _usage(message.get("usage") or {}))


def _usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + (usage.get("cache_creation_input_tokens") or 0) + cached
    return chat.usage(prompt, usage.get("output_tokens") or 0, cached)


def error(status: int, body: bytes) -> bytes:
    """An OpenAI error body for an Anthropic error (the HTTP status is kept by the caller)."""
    try:
        detail = orjson.loads(body).get("error") or {}
        message, kind = str(detail.get("message") or ""), str(detail.get("type") or "")
    except (orjson.JSONDecodeError, AttributeError):
        message, kind = "", ""
    return chat.error_body(message or f"{PROVIDER} answered HTTP {status}", kind or "upstream_error")


# -- stream ---------------------------------------------------------------------------------------------

class StreamTranslator(stream.StreamTranslator):
    """Anthropic's SSE (``message_start``, ``content_block_*``, ``message_delta``, ``message_stop``)
    -> OpenAI ``chat.completion.chunk`` events."""

    __slots__ = ("_cached", "_completion", "_prompt", "_tool_index")

    def __init__(self, created: int, include_usage: bool) -> None:
        super().__init__(created, include_usage)
        self._tool_index: dict[int, int] = {}  # content block index -> OpenAI tool_calls index
        self._prompt = self._cached = self._completion = 0

    def _event(self, event: dict[str, Any]) -> bytes:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._count(message.get("usage") or {})
            return self._writer_for(message.get("id", ""), message.get("model", "")).delta(
                {"role": "assistant", "content": ""})
        writer = self._writer
        if kind == "error":
            detail = event.get("error") or {}
            return self._error(str(detail.get("message") or "upstream stream error"),
                               str(detail.get("type") or "upstream_error"))
        if writer is None:
            return b""
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return writer.delta({"content": delta.get("text", "")})
            if delta.get("type") == "input_json_delta" and event.get("index") in self._tool_index:
                call = {"index": self._tool_index[event["index"]],
                        "function": {"arguments": delta.get("partial_json", "")}}
                return writer.delta({"tool_calls": [call]})
            return b""  # thinking/signature deltas: not part of chat completions
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self._tool_index[event.get("index", 0)] = len(self._tool_index)
                call = {"index": index, "id": block.get("id", ""), "type": "function",
                        "function": {"name": block.get("name", ""), "arguments": ""}}
                return writer.delta({"tool_calls": [call]})
            if block.get("type") == "text" and block.get("text"):
                return writer.delta({"content": block["text"]})
            return b""
        if kind == "message_delta":
            self._count(event.get("usage") or {})
            reason = (event.get("delta") or {}).get("stop_reason")
            return writer.delta({}, FINISH.get(reason or "", "stop"))
        if kind == "message_stop":
            return self._done(chat.usage(self._prompt, self._completion, self._cached))
        return b""  # ping, content_block_stop

    def _count(self, usage: Mapping[str, Any]) -> None:
        """message_start carries the input side; message_delta the cumulative output (and, on
        newer API versions, the input side again)."""
        if usage.get("input_tokens") is not None:
            self._cached = usage.get("cache_read_input_tokens") or 0
            created = usage.get("cache_creation_input_tokens") or 0
            self._prompt = usage["input_tokens"] + created + self._cached
        if usage.get("output_tokens") is not None:
            self._completion = usage["output_tokens"]
