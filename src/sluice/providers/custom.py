"""Custom providers: an account's own upstreams, reached as ``custom-{slug}`` (docs/gateway.md).

Pure: turns a stored definition (and its decrypted extra headers) into a ``Provider`` the data plane
uses like a catalog one. A custom provider is OpenAI-compatible (usage is read as OpenAI's, /compat
passes chat completions through to ``{base_url}/chat/completions``), its stored key goes in
``auth_header`` with ``auth_scheme`` (``Authorization: Bearer`` unless the definition says otherwise;
then a caller's ``Authorization: Bearer`` is taken as its own key or Sluice token, as for anthropic),
and its ``headers`` are sent on every request the caller did not send them on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sluice.providers.registry import Provider

PREFIX = "custom-"
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"  # the part after custom-; lower-case, 1..64
PROVIDER_SLUG_PATTERN = r"^custom-[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
DEFAULT_AUTH_HEADER = "authorization"
DEFAULT_AUTH_SCHEME = "Bearer "
COMPAT_PATH = "chat/completions"  # /compat's path under a custom provider's base_url

_PROVIDER_SLUG = re.compile(PROVIDER_SLUG_PATTERN)


def is_custom(slug: str) -> bool:
    """Whether ``slug`` names a custom provider (``custom-{slug}``), whether or not one exists."""
    return slug.startswith(PREFIX) and _PROVIDER_SLUG.match(slug) is not None


def provider_slug(slug: str) -> str:
    return PREFIX + slug


def custom_provider(row: Mapping[str, Any], headers: Mapping[str, str]) -> Provider:
    """The ``Provider`` of one stored definition; ``headers`` are its decrypted extra headers."""
    auth_header = row.get("auth_header") or DEFAULT_AUTH_HEADER
    return Provider(
        slug=provider_slug(row["slug"]),
        base_url=str(row["base_url"]).rstrip("/"),
        auth_header=auth_header,
        # OpenAI's SDKs always send Authorization: Bearer: there it is the caller's key (or a Sluice
        # token), as for catalog providers with another auth header.
        alt_auth=() if auth_header == DEFAULT_AUTH_HEADER else ((DEFAULT_AUTH_HEADER, DEFAULT_AUTH_SCHEME),),
        auth_scheme=DEFAULT_AUTH_SCHEME if row.get("auth_scheme") is None else row["auth_scheme"],
        extra_headers=tuple((name.lower(), value) for name, value in headers.items()),
        usage_format="openai",
        stored_keys=True,
        overridden=True,  # base_url is used verbatim: no catalog templates
        custom=True,
    )
