"""Custom provider bodies (validated strictly, unknown fields refused) and their wire shape.

Fields and types are the official SDK's (``ai_gateway.custom_providers``); ``auth_header`` and
``auth_scheme`` are Sluice's additions: where the stored key of a provider config goes
(docs/api.md, "Custom providers"). Messages never echo a value: ``headers`` may hold credentials.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from pydantic import Field, StrictBool, StrictInt, StrictStr, field_validator

from sluice.control.gateway_settings import Strict, omittable
from sluice.keymatch import MASK
from sluice.providers.custom import (
    DEFAULT_AUTH_HEADER,
    DEFAULT_AUTH_SCHEME,
    MAX_SLUG,
    SLUG_PATTERN,
    check_header_name,
    control_free,
    parse_headers,
    provider_slug,
)

MAX_URL = 2048

Text = Annotated[StrictStr, Field(max_length=8192)]


def check_url(value: str, *, base: bool) -> str:
    """An absolute http(s) URL with a host; a base URL also has no credentials, query or fragment."""
    if len(value) > MAX_URL:
        raise ValueError(f"must be at most {MAX_URL} characters")
    if not control_free(value) or " " in value:
        raise ValueError("must not contain spaces or control characters")
    if not value.isascii():
        raise ValueError("must be ASCII (percent-encode the path; an international host name in punycode)")
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


class CustomProviderFields(Strict):
    """Every field optional: an update sends what it changes (required fields are not nullable)."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=255)] = omittable()
    slug: Annotated[StrictStr, Field(min_length=1, max_length=MAX_SLUG, pattern=SLUG_PATTERN)] = omittable()
    base_url: StrictStr = omittable()
    beta: StrictBool = omittable()
    enable: StrictBool = omittable()
    position: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] = omittable()
    description: Annotated[StrictStr, Field(max_length=1024)] | None = None
    curl_example: Text | None = None
    js_example: Text | None = None
    link: StrictStr | None = None
    headers: StrictStr | None = None
    auth_header: Annotated[StrictStr, Field(max_length=64)] = omittable()
    auth_scheme: Annotated[StrictStr, Field(max_length=64)] = omittable()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip() or not control_free(value):
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
        if not control_free(value):
            raise ValueError("must not contain control characters")
        return value


class CustomProviderCreate(CustomProviderFields):
    name: Annotated[StrictStr, Field(min_length=1, max_length=255)]
    slug: Annotated[StrictStr, Field(min_length=1, max_length=MAX_SLUG, pattern=SLUG_PATTERN)]
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
