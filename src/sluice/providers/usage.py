"""Token usage and model read from provider responses, for request logs and cost.

Pure functions, no I/O, and nothing here ever raises on bad input: a response Sluice cannot read
simply has unknown usage. ``SSEUsage`` runs on the streaming hot path, so it only looks at complete
lines of chunks that contain a usage marker and only JSON-parses those lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from sluice.exchange import Usage

MAX_LINE = 4 * 1024 * 1024  # a longer SSE line / JSON body is skipped rather than buffered
MAX_MODEL_LEN = 256


EMPTY = Usage()


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_MODEL_LEN else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _openai(obj: dict[str, Any]) -> Usage:
    # Chat Completions: usage.prompt_tokens/completion_tokens. Responses API: usage.input_tokens/
    # output_tokens, in streams nested in "response". Workers AI /run: {"result": {"usage": ...}}.
    model = _str(obj.get("model"))
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        response = _dict(obj.get("response"))
        model = _str(response.get("model")) or model
        usage = response.get("usage")
    if not isinstance(usage, dict):
        usage = _dict(_dict(obj.get("result")).get("usage"))
    tokens_in = _int(usage.get("prompt_tokens"))
    tokens_out = _int(usage.get("completion_tokens"))
    if tokens_in is None:
        tokens_in = _int(usage.get("input_tokens"))
    if tokens_out is None:
        tokens_out = _int(usage.get("output_tokens"))
    return Usage(model, tokens_in, tokens_out)


def _anthropic(obj: dict[str, Any]) -> Usage:
    # Message: model + usage. Stream: message_start wraps the message; message_delta has usage.
    if obj.get("type") == "message_start":
        obj = _dict(obj.get("message"))
    usage = _dict(obj.get("usage"))
    return Usage(_str(obj.get("model")), _int(usage.get("input_tokens")), _int(usage.get("output_tokens")))


def _google(obj: dict[str, Any]) -> Usage:
    # Thinking tokens are billed as output, so they are counted as output here.
    usage = _dict(obj.get("usageMetadata"))
    out, thoughts = _int(usage.get("candidatesTokenCount")), _int(usage.get("thoughtsTokenCount"))
    if thoughts is not None:
        out = (out or 0) + thoughts
    return Usage(_str(obj.get("modelVersion")), _int(usage.get("promptTokenCount")), out)


def _cohere(obj: dict[str, Any]) -> Usage:
    # v1: meta.billed_units (stream-end: response.meta); v2: usage.billed_units / usage.tokens
    # (stream message-end: delta.usage). Billed units win over raw token counts.
    response = _dict(obj.get("response"))
    places = (obj.get("meta"), obj.get("usage"), response.get("meta"), response.get("usage"),
              _dict(obj.get("delta")).get("usage"))
    for place in places:
        if not isinstance(place, dict):
            continue
        for key in ("billed_units", "tokens"):
            units = _dict(place.get(key))
            tokens_in, tokens_out = _int(units.get("input_tokens")), _int(units.get("output_tokens"))
            if tokens_in is not None or tokens_out is not None:
                return Usage(_str(obj.get("model")), tokens_in, tokens_out)
    return Usage(_str(obj.get("model")), None, None)


_EXTRACTORS: dict[str, Callable[[dict[str, Any]], Usage]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "google": _google,
    "cohere": _cohere,
}
# Lines that cannot hold usage are never parsed. ("usage": null chunks are skipped on purpose.)
_GATES: dict[str, re.Pattern[bytes]] = {
    "openai": re.compile(rb'"usage"\s*:\s*\{'),
    "anthropic": re.compile(rb'"usage"\s*:\s*\{'),
    "google": re.compile(rb'"usageMetadata"'),
    "cohere": re.compile(rb'"(?:billed_units|tokens)"'),
}
# A literal every gate match starts with: a substring search finds it several times faster than
# the regex engine scans a stream's text (most blocks hold none).
_NEEDLES: dict[str, tuple[bytes, ...]] = {
    "openai": (b'"usage"',),
    "anthropic": (b'"usage"',),
    "google": (b'"usageMetadata"',),
    "cohere": (b'"billed_units"', b'"tokens"'),
}


def _merge(old: Usage, new: Usage) -> Usage:
    """Later events win field by field (streams report usage cumulatively or in parts)."""
    if new == EMPTY:
        return old
    return Usage(
        new.model if new.model is not None else old.model,
        new.tokens_in if new.tokens_in is not None else old.tokens_in,
        new.tokens_out if new.tokens_out is not None else old.tokens_out,
    )


def _from_value(extract: Callable[[dict[str, Any]], Usage], value: Any, acc: Usage = EMPTY) -> Usage:
    if isinstance(value, dict):
        return _merge(acc, extract(value))
    if isinstance(value, list):  # e.g. Google streamGenerateContent without alt=sse: a JSON array
        for item in value:
            if isinstance(item, dict):
                acc = _merge(acc, extract(item))
    return acc


def usage_from_json(fmt: str, body: bytes) -> Usage:
    """Usage of a whole (non-streamed) JSON response body; ``Usage(None, None, None)`` if unknown."""
    extract = _EXTRACTORS.get(fmt)
    if extract is None or not body:
        return EMPTY
    try:
        return _from_value(extract, orjson.loads(body))
    except Exception:  # noqa: BLE001 — usage is best effort: a body it cannot read has none
        return EMPTY


def model_from_request(body: bytes) -> str | None:
    """The ``model`` of a JSON request body (up to 256 characters), or None."""
    try:
        if not body or b'"model"' not in body:
            return None
        value = orjson.loads(body)
    except Exception:  # noqa: BLE001 — best effort, as above
        return None
    return _str(value.get("model")) if isinstance(value, dict) else None


class SSEUsage:
    """Incremental usage reader for a streamed response; feed raw chunks as they pass.

    Chunks may split lines anywhere. Only complete lines are looked at, and only when the chunk
    holds the format's usage marker. A body that starts with ``{`` or ``[`` is not SSE (a plain or
    NDJSON response fed through by mistake or by design): it is buffered up to ``MAX_LINE`` and
    read at ``result()``.
    """

    __slots__ = ("_buf", "_extract", "_gate", "_mode", "_needles", "_overflow", "_usage")

    def __init__(self, fmt: str):
        self._extract = _EXTRACTORS.get(fmt)
        self._gate = _GATES.get(fmt)
        self._needles = _NEEDLES.get(fmt, ())
        self._buf = bytearray()
        self._usage = EMPTY
        self._mode = "?"  # "?" until the first non-blank byte, then "sse" or "json"
        self._overflow = False

    def feed(self, chunk: bytes) -> None:
        try:
            self._feed(chunk)
        except Exception:  # noqa: BLE001 — never let usage accounting break a stream
            self._extract = None

    def _feed(self, chunk: bytes) -> None:
        if self._extract is None or not chunk:
            return
        if isinstance(chunk, memoryview):
            chunk = chunk.tobytes()
        if self._mode == "?":
            head = bytes(chunk).lstrip()
            if not head:
                return
            self._mode = "json" if head[:1] in (b"{", b"[") else "sse"
        if self._mode == "json":
            if not self._overflow:
                self._buf += chunk
                if len(self._buf) > MAX_LINE:
                    self._buf.clear()
                    self._overflow = True
            return
        if self._overflow:  # drop the rest of an overlong line
            newline = chunk.find(b"\n")
            if newline < 0:
                return
            chunk, self._overflow = chunk[newline + 1:], False
        last = chunk.rfind(b"\n")
        if last < 0:
            self._buf += chunk
            if len(self._buf) > MAX_LINE:
                self._buf.clear()
                self._overflow = True
            return
        if self._buf:
            block = bytes(self._buf) + bytes(chunk[: last + 1])
            self._buf.clear()
        else:
            block = bytes(chunk[: last + 1])
        self._buf += chunk[last + 1:]
        self._lines(block)

    def _lines(self, block: bytes) -> None:
        """Read the lines of ``block`` that hold the usage marker (found by the gate, not by
        splitting the block: a stream carries its usage in one or two of many events)."""
        extract, gate = self._extract, self._gate
        found = [at for at in (block.find(needle) for needle in self._needles) if at >= 0]
        if not found or extract is None or gate is None:
            return
        end = 0
        for match in gate.finditer(block, min(found)):
            if match.start() < end:
                continue  # a second marker on a line already read
            start = block.rfind(b"\n", 0, match.start()) + 1
            end = block.find(b"\n", match.end())
            if end < 0:
                end = len(block)
            line = block[start:end].strip()
            if line.startswith(b"data:"):
                line = line[5:].strip()
            elif not line.startswith(b"{"):  # NDJSON (e.g. Cohere v1 streams) is accepted as well
                continue
            try:
                self._usage = _from_value(extract, orjson.loads(line), self._usage)
            except orjson.JSONDecodeError:
                pass

    def result(self) -> Usage:
        """Usage seen so far (final once the stream has ended). Safe to call more than once."""
        if self._extract is None or not self._buf or self._overflow:
            return self._usage
        body = bytes(self._buf)
        self._buf.clear()
        try:
            if self._mode == "json":
                try:
                    self._usage = _from_value(self._extract, orjson.loads(body), self._usage)
                except orjson.JSONDecodeError:
                    self._lines(body)  # NDJSON
            else:
                self._lines(body)  # a last line without its newline
        except Exception:  # noqa: BLE001 — best effort: keep the usage seen so far
            pass
        return self._usage
