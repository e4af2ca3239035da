"""The answers of ``GET /compat/models`` and ``GET /compat/models/{provider}/{model}`` (pure).

Model ids are ``"{provider}/{model}"``, as ``/compat`` takes them; ``owned_by`` is the provider.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

# (provider slug, model names, created): one provider's listed models
Listed = tuple[str, Iterable[str], int]


def model(slug: str, name: str, created: int) -> dict[str, Any]:
    return {"id": f"{slug}/{name}", "object": "model", "created": created, "owned_by": slug}


def listing(providers: Iterable[Listed]) -> bytes:
    data = [model(slug, name, created) for slug, names, created in providers for name in names]
    return orjson.dumps({"object": "list", "data": data})


def find(providers: Iterable[Listed], model_id: str) -> bytes | None:
    """One model's object, or None when no listed provider lists it."""
    slug, _, name = model_id.partition("/")
    for listed_slug, names, created in providers:
        if listed_slug == slug and name in names:
            return orjson.dumps(model(slug, name, created))
    return None
