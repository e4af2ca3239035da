"""OpenAI embeddings <-> Gemini ``batchEmbedContents`` (google-ai-studio), both ways.

Request: each ``input`` text -> one ``EmbedContentRequest`` (``model: "models/{model}"``, the text as
one part); ``dimensions`` -> ``outputDimensionality``. Refused: token arrays, ``user`` (Gemini has no
such field). Answer: ``embeddings[i].values`` -> ``data[i].embedding`` (floats or base64, as asked).
Gemini reports no token counts for embeddings: ``usage`` is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.compat import chat, embeddings

PROVIDER = "google-ai-studio"


def request(openai: Mapping[str, Any], model: str) -> dict[str, Any]:
    chat.refuse_unknown(openai, embeddings.SUPPORTED, PROVIDER)
    embeddings.encoding(openai)  # checked here; used for the answer
    size = embeddings.dimensions(openai)
    requests = []
    for text in embeddings.inputs(openai):
        one: dict[str, Any] = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
        if size is not None:
            one["outputDimensionality"] = size
        requests.append(one)
    return {"requests": requests}


def response(answer: Mapping[str, Any], model: str, fmt: str) -> dict[str, Any]:
    """Raises one of ``chat.MALFORMED`` for an answer of the wrong shape (the route answers 502)."""
    vectors = []
    for item in answer["embeddings"]:
        values = item["values"]
        if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
            raise TypeError("embedding values must be numbers")
        vectors.append(values)
    return embeddings.answer(vectors, model, fmt)
