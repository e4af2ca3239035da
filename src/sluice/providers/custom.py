"""Custom providers: an account's own upstreams, reached as ``custom-{slug}`` (docs/gateway.md).

Pure: turns a stored definition (and its decrypted extra headers) into a ``Provider`` the data plane
uses like a catalog one. A custom provider is OpenAI-compatible: usage is read as OpenAI's, /compat
passes chat completions through to ``{base_url}/chat/completions`` and embeddings to
``{base_url}/embeddings``. Its stored key goes in ``auth_header`` with ``auth_scheme``
(``Authorization: Bearer`` unless the definition says otherwise; then a caller's ``Authorization:
Bearer`` is taken as its own key or Sluice token, as for anthropic), and its ``headers`` are sent on
every request the caller did not send them on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from sluice.providers.registry import Compat, Provider

PREFIX = "custom-"
# The part after custom-: lower-case, 1..57, so custom-{slug} fits the 64 characters every provider
# slug column holds (provider configs, request logs).
MAX_SLUG = 64 - len(PREFIX)
_SLUG = rf"[a-z0-9](?:[a-z0-9-]{{0,{MAX_SLUG - 2}}}[a-z0-9])?"
SLUG_PATTERN = rf"^{_SLUG}$"
PROVIDER_SLUG_PATTERN = rf"^{PREFIX}{_SLUG}$"
DEFAULT_AUTH_HEADER = "authorization"
DEFAULT_AUTH_SCHEME = "Bearer "
# /compat: OpenAI's chat and embeddings paths under base_url, passed through; no models are listed
# (Sluice does not know them).
COMPAT = Compat(format="passthrough", chat_path="chat/completions", stream_path="chat/completions",
                embeddings_path="embeddings", models=(), embedding_models=(), models_reviewed=0)

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
        alt_auth=() if auth_header == DEFAULT_AUTH_HEADER
        else ((DEFAULT_AUTH_HEADER, DEFAULT_AUTH_SCHEME),),
        auth_scheme=DEFAULT_AUTH_SCHEME if row.get("auth_scheme") is None else row["auth_scheme"],
        extra_headers=tuple(headers.items()),  # names lower-case (parse_headers)
        usage_format="openai",
        stored_keys=True,
        overridden=True,  # base_url is used verbatim: no catalog templates
        compat=COMPAT,
        custom=True,
    )


# -- extra headers: validated on write (the API) and again on load (a sealed value is re-read) --------

MAX_HEADERS_TEXT = 8192  # Cloudflare's maxLength of headers
MAX_HEADERS = 32
MAX_HEADER_VALUE = 4096
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")  # an HTTP header name (RFC 9110 token)
# Set by the HTTP layer or by the gateway itself: never from a definition.
RESERVED_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-authenticate",
    "proxy-authorization", "proxy-connection", "te", "trailer", "upgrade", "expect",
})




def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def control_free(value: str) -> bool:
    return not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)


def check_header_name(name: str) -> str:
    if not _TOKEN.match(name):
        raise ValueError("must be an HTTP header name (letters, digits and !#$%&'*+.^_`|~-, 1..128)")
    lower = name.lower()
    if lower in RESERVED_HEADERS or lower.startswith("cf-aig-"):
        raise ValueError(f"header {lower!r} is set by the gateway, not by a custom provider")
    return lower


def parse_headers(text: str) -> dict[str, str]:
    """``headers``: a JSON object of header name -> string value, names lower-cased and unique."""
    if len(text) > MAX_HEADERS_TEXT:
        raise ValueError(f"must be at most {MAX_HEADERS_TEXT} characters")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError("must be a JSON object (as a string) of header names to string values") from None
    if not isinstance(data, dict):
        raise ValueError("must be a JSON object (as a string) of header names to string values")
    if len(data) > MAX_HEADERS:
        raise ValueError(f"must hold at most {MAX_HEADERS} headers")
    out: dict[str, str] = {}
    for name, value in data.items():
        lower = check_header_name(name)
        if lower in out:
            raise ValueError(f"header {lower!r} is given twice")
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"header {lower!r}: the value must be a non-empty string")
        if len(value) > MAX_HEADER_VALUE or not control_free(value) or not _latin1(value):
            raise ValueError(f"header {lower!r}: the value must be at most {MAX_HEADER_VALUE} characters "
                             "of ISO-8859-1 (what an HTTP header carries), without control characters")
        out[lower] = value
    return out
