"""The OpenAI request's messages and tools, walked for a provider that translates them (pure).

The walk, the checks and the field names of every refusal are shared; each provider module says
only what its parts look like (callbacks that build one text, image or tool-call part).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sluice.compat.chat import arguments, data_url, need, text_of
from sluice.errors import TranslationError

MESSAGE_FIELDS = frozenset({"role", "content", "tool_calls", "tool_call_id", "refusal"})
# (role: user, assistant or tool; the message; its field name) -> (the provider's turn role, its parts)
Turn = Callable[[str, Mapping[str, Any], str], tuple[str, list[dict[str, Any]]]]


def conversation(raw: Any, provider: str, parts_key: str, turn: Turn) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI ``messages`` for a provider that takes the system prompt apart and wants alternating
    turns: ``(system text, turns)``. System and developer messages (only before the conversation)
    are joined; every other message becomes a turn by ``turn``; consecutive turns of one role are
    merged (their parts under ``parts_key``)."""
    need(raw, list, "messages", "a non-empty array")
    if not raw:
        raise TranslationError("messages", "must be a non-empty array")
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        field = f"messages[{i}]"
        need(message, dict, field, "an object")
        for name in message:
            if name not in MESSAGE_FIELDS and message[name] is not None:
                raise TranslationError(f"{field}.{name}", f"not supported when translating to {provider}")
        role = message.get("role")
        if role in ("system", "developer"):
            if turns:
                raise TranslationError(f"{field}.role", f"{provider} takes system messages only before "
                                                        "the conversation starts")
            system.append(text_of(message.get("content"), f"{field}.content"))
            continue
        if role not in ("user", "assistant", "tool"):
            raise TranslationError(f"{field}.role", "must be system, developer, user, assistant or tool")
        turn_role, parts = turn(role, message, field)
        if turns and turns[-1]["role"] == turn_role:
            turns[-1][parts_key].extend(parts)
        else:
            turns.append({"role": turn_role, parts_key: parts})
    if not turns:
        raise TranslationError("messages", "needs at least one user message besides system messages")
    return "\n\n".join(system), turns


def user_parts(content: Any, field: str, provider: str, text: Callable[[str], dict[str, Any]],
               image: Callable[[str, tuple[str, str] | None, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """A user message's ``content`` as provider parts: ``text(t)`` for the string or each text part,
    ``image(url, inline, field)`` for each image part (``inline``: a data URL's media type and data,
    None for an http(s) URL). Other part types are refused."""
    if isinstance(content, str):
        return [text(content)]
    need(content, list, field, "a string or an array of content parts")
    parts = []
    for i, part in enumerate(content):
        part_field = f"{field}[{i}]"
        need(part, dict, part_field, "an object")
        kind = part.get("type")
        if kind == "text":
            parts.append(text(need(part.get("text"), str, f"{part_field}.text", "a string")))
        elif kind == "image_url":
            image_url = need(part.get("image_url"), dict, f"{part_field}.image_url", "an object")
            url_field = f"{part_field}.image_url.url"
            url = need(image_url.get("url"), str, url_field, "a string")
            parts.append(image(url, data_url(url, url_field), url_field))
        else:
            raise TranslationError(f"{part_field}.type", f"{kind!r} parts are not supported by {provider}; "
                                                         "use text or image_url")
    return parts


def assistant_parts(message: Mapping[str, Any], field: str, text: Callable[[str], dict[str, Any]],
                    call: Callable[[str, str, dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
    """An assistant message as provider parts: ``text(t)`` for non-empty content, then
    ``call(id, name, arguments)`` for each tool call. One of them is required."""
    parts: list[dict[str, Any]] = []
    if message.get("content") is not None:
        content = text_of(message["content"], f"{field}.content")
        if content:
            parts.append(text(content))
    calls = message.get("tool_calls")
    if calls is not None:
        for j, item in enumerate(need(calls, list, f"{field}.tool_calls", "an array")):
            call_field = f"{field}.tool_calls[{j}]"
            need(item, dict, call_field, "an object")
            function = need(item.get("function"), dict, f"{call_field}.function", "an object")
            id_ = need(item.get("id"), str, f"{call_field}.id", "a string")
            name = need(function.get("name"), str, f"{call_field}.function.name", "a string")
            args = arguments(function.get("arguments"), f"{call_field}.function.arguments")
            parts.append(call(id_, name, args))
    if not parts:
        raise TranslationError(f"{field}.content", "an assistant message needs content or tool_calls")
    return parts


def function_tool(tool: Any, field: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``tools[i]`` entry: ``(its function object, {"name", "description"?})``, both checked."""
    need(tool, dict, field, "an object")
    if tool.get("type") != "function":
        raise TranslationError(f"{field}.type", 'must be "function"')
    function = need(tool.get("function"), dict, f"{field}.function", "an object")
    out: dict[str, Any] = {"name": need(function.get("name"), str, f"{field}.function.name", "a string")}
    if function.get("description") is not None:
        out["description"] = need(function["description"], str, f"{field}.function.description", "a string")
    return function, out


def function_choice(choice: Any) -> tuple[str, str | None] | None:
    """``tool_choice`` as ``(mode, function name)``: mode "auto", "none", "required" (no name) or
    "function" (with the name); None when absent."""
    if choice is None:
        return None
    if choice in ("auto", "none", "required"):
        return choice, None
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = need(choice.get("function"), dict, "tool_choice.function", "an object")
        return "function", need(function.get("name"), str, "tool_choice.function.name", "a string")
    raise TranslationError("tool_choice", 'must be "auto", "none", "required" or a function choice')
