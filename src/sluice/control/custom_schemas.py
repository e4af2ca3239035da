"""Custom provider bodies (validated strictly, unknown fields refused) and their wire shape.

Fields and types are the official SDK's (``ai_gateway.custom_providers``); ``auth_header`` and
``auth_scheme`` are Sluice's additions: where the stored key of a provider config goes
(docs/api.md, "Custom providers"). Messages never echo a value: ``headers`` may hold credentials.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from pydantic import Field, StrictBool, StrictInt, StrictStr, field_validator

from sluice.control.gateway_settings import Strict, omittable
from sluice.keymatch import MASK
from sluice.providers.custom import DEFAULT_AUTH_HEADER, DEFAULT_AUTH_SCHEME, SLUG_PATTERN, provider_slug

MAX_URL = 2048
MAX_HEADERS_TEXT = 8192  # Cloudflare's maxLength of headers
MAX_HEADERS = 32
MAX_HEADER_VALUE = 4096
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")  # an HTTP header name (RFC 9110 token)
# Set by the HTTP layer or by the gateway itself: never from a definition.
RESERVED_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-authenticate",
    "proxy-authorization", "proxy-connection", "te", "trailer", "upgrade", "expect",
})

Text = Annotated[StrictStr, Field(max_length=8192)]


def _control_free(value: str) -> bool:
    return not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)


def check_url(value: str, *, base: bool) -> str:
    """An absolute http(s) URL with a host; a base URL also has no credentials, query or fragment."""
    if len(value) > MAX_URL:
        raise ValueError(f"must be at most {MAX_URL} characters")
    if not _control_free(value) or " " in value:
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 — raises ValueError on a bad port
    except ValueError:
        raise ValueError("must be an absolute http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL (https://host/...)")
    if base and (parts.username is not None or parts.password is not None):
        raise ValueError("must not hold credentials; send them in headers or a provider config")
    if base and (parts.query or parts.fragment or value.endswith(("?", "#"))):
        raise ValueError("must not have a query string or fragment")
    return value.rstrip("/") if base else value


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
        if len(value) > MAX_HEADER_VALUE or not _control_free(value):
            raise ValueError(f"header {lower!r}: the value must be at most {MAX_HEADER_VALUE} characters "
                             "without control characters")
        out[lower] = value
    return out


class CustomProviderFields(Strict):
    """Every field optional: an update sends what it changes (required fields are not nullable)."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=255)] = omittable()
    slug: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=SLUG_PATTERN)] = omittable()
    base_url: StrictStr = omittable()
    beta: StrictBool = omittable()
    enable: StrictBool = omittable()
    position: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] = omittable()
    description: Annotated[StrictStr, Field(max_length=1024)] | None = None
    curl_example: Text | None = None
    js_example: Text | None = None
    link: StrictStr | None = None
    headers: StrictStr | None = None
    auth_header: StrictStr = omittable()
    auth_scheme: Annotated[StrictStr, Field(max_length=64)] = omittable()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip() or not _control_free(value):
            raise ValueError("must not be blank or hold control characters")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_url(value, base=True)

    @field_validator("link")
    @classmethod
    def _link(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, base=False)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: str | None) -> str | None:
        if value is not None:
            parse_headers(value)
        return value

    @field_validator("auth_header")
    @classmethod
    def _auth_header(cls, value: str) -> str:
        return check_header_name(value)

    @field_validator("auth_scheme")
    @classmethod
    def _auth_scheme(cls, value: str) -> str:
        if not _control_free(value):
            raise ValueError("must not contain control characters")
        return value


class CustomProviderCreate(CustomProviderFields):
    name: Annotated[StrictStr, Field(min_length=1, max_length=255)]
    slug: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=SLUG_PATTERN)]
    base_url: StrictStr


CUSTOM_DEFAULTS: dict[str, Any] = {"beta": False, "enable": True, "position": 0,
                                   "auth_header": DEFAULT_AUTH_HEADER, "auth_scheme": DEFAULT_AUTH_SCHEME}
# Stored as given; the extra headers are sealed instead (custom_providers.py).
STORED_FIELDS = ("name", "slug", "base_url", "beta", "enable", "position", "description", "curl_example",
                 "js_example", "link", "auth_header", "auth_scheme")


def custom_provider_wire(row: dict[str, Any]) -> dict[str, Any]:
    """The SDK's shape (plus ``provider`` and Sluice's auth fields); header values are never returned."""
    names = orjson.loads(row["header_names"]) if row.get("header_names") else None
    headers = None if names is None else orjson.dumps(dict.fromkeys(names, MASK.decode())).decode()
    return {
        "id": row["id"], "name": row["name"], "slug": row["slug"], "provider": provider_slug(row["slug"]),
        "base_url": row["base_url"], "beta": bool(row["beta"]), "enable": bool(row["enable"]),
        "position": row["position"], "description": row["description"], "curl_example": row["curl_example"],
        "js_example": row["js_example"], "link": row["link"], "logo": None, "headers": headers,
        "auth_header": row["auth_header"], "auth_scheme": row["auth_scheme"],
        "created_at": row["created_at"], "modified_at": row["modified_at"],
    }
