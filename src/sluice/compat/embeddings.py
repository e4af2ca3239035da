"""The OpenAI side of ``/compat/embeddings``: reading an embeddings request, building the answer.

Only what a translated provider needs is read here; a pass-through provider gets the body as sent.
``encoding_format: "base64"`` (what the ``openai`` SDK asks for by default) is honoured for a
translated answer: each vector as little-endian float32, base64-encoded, as OpenAI sends it.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from typing import Any

from sluice.compat.chat import need
from sluice.errors import TranslationError

SUPPORTED = frozenset({"model", "input", "encoding_format", "dimensions"})
MAX_INPUTS = 2048  # OpenAI's own limit on inputs per request


def inputs(request: Mapping[str, Any]) -> list[str]:
    """``input`` as a list of texts: a string or a non-empty array of strings (token arrays are
    refused: a translated provider takes text)."""
    value = request.get("input")
    if isinstance(value, str):
        return [value]
    need(value, list, "input", "a string or an array of strings")
    if not value:
        raise TranslationError("input", "must not be empty")
    if len(value) > MAX_INPUTS:
        raise TranslationError("input", f"at most {MAX_INPUTS} inputs per request")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TranslationError(f"input[{i}]", "must be a string (token arrays are not supported by "
                                                  "this provider)")
    return value  # type: ignore[no-any-return]


def encoding(request: Mapping[str, Any]) -> str:
    value = request.get("encoding_format")
    if value is None:
        return "float"
    if value not in ("float", "base64"):
        raise TranslationError("encoding_format", 'must be "float" or "base64"')
    return value  # type: ignore[no-any-return]


def dimensions(request: Mapping[str, Any]) -> int | None:
    value = request.get("dimensions")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TranslationError("dimensions", "must be a positive integer")
    return value


def answer(vectors: list[list[float]], model: str, fmt: str, prompt_tokens: int = 0) -> dict[str, Any]:
    """OpenAI's ``list`` of ``embedding`` objects (``usage`` counts what the provider reported)."""
    data = [{"object": "embedding", "index": i, "embedding": _encode(vector, fmt)}
            for i, vector in enumerate(vectors)]
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}


def _encode(vector: list[float], fmt: str) -> list[float] | str:
    if fmt == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
