"""Custom providers API: an account's own upstreams, used as ``custom-{slug}`` (docs/api.md).

The extra ``headers`` of a definition may hold credentials: they are sealed like any stored key, as a
secret ``custom_provider_{id}_headers`` (scope ``ai_gateway``) in the account's default store, which
keeps them under key rotation; only their names are returned. Writes run under the account's
key-write lock (they touch secrets and what provider configs may refer to).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from sluice import envelope
from sluice.clock import new_id, now, rfc3339
from sluice.control.common import authorized, services
from sluice.control.custom_schemas import (
    CUSTOM_DEFAULTS,
    STORED_FIELDS,
    CustomProviderCreate,
    CustomProviderFields,
    custom_provider_wire,
    parse_headers,
)
from sluice.control.validation import bool_param, paging, parse_model, read_json, require_object
from sluice.errors import Conflict, NotFound, ValidationError
from sluice.providers.custom import provider_slug
from sluice.secrets import vault
from sluice.store import queries

KIND = "custom_provider"  # change feed kind
MAX_SEARCH = 256


async def _seal_headers(conn: AsyncConnection, request: Request, account_id: str, provider_id: str,
                        secret_id: str | None, text: str | None) -> dict[str, Any]:
    """The header columns once the extra headers are ``text`` (null or ``{}``: none, secret deleted)."""
    headers = parse_headers(text) if text is not None else {}
    if not headers:
        if secret_id is not None:
            await queries.delete_secret(conn, secret_id)
        return {"header_names": None, "headers_secret_id": None}
    value = orjson.dumps(headers).decode()
    keyring = services(request).keyring
    secret = await queries.get_secret(conn, account_id, secret_id) if secret_id is not None else None
    if secret is not None:
        await vault.replace_value(conn, keyring, secret, value)
    else:
        store = await vault.default_store(conn, account_id)
        secret = await vault.create_secret(conn, keyring, account_id=account_id, store_id=store["id"],
                                           name=f"custom_provider_{provider_id}_headers", value=value,
                                           scopes=["ai_gateway"], created_by=provider_id)
    return {"header_names": orjson.dumps(list(headers)).decode(), "headers_secret_id": secret["id"]}


async def _refuse_if_used(conn: AsyncConnection, account_id: str, row: dict[str, Any], doing: str) -> None:
    """Provider configs name a custom provider by slug: it cannot go (or be renamed) under them."""
    slug = provider_slug(row["slug"])
    used = await queries.configs_using_provider(conn, account_id, slug)
    if used:
        raise Conflict(f"{used} provider config(s) use {slug}; delete them before you {doing}")


async def _require(conn: AsyncConnection, request: Request, account_id: str) -> dict[str, Any]:
    provider_id = request.path_params["provider_id"]
    row = await queries.get_custom_provider(conn, account_id, provider_id)
    if row is None:
        raise NotFound(f"custom provider {provider_id[:64]!r} not found")
    return row


async def create_provider(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        body = parse_model(CustomProviderCreate, require_object(await read_json(request)))
        await queries.lock_key_writes(conn, account_id)
        if await queries.custom_provider_by_slug(conn, account_id, body.slug) is not None:
            raise Conflict(f"a custom provider with slug {body.slug!r} already exists in this account")
        provider_id, stamp = new_id(), rfc3339(now())
        row: dict[str, Any] = {**dict.fromkeys(STORED_FIELDS), **CUSTOM_DEFAULTS,
                               **body.model_dump(exclude_unset=True, include=set(STORED_FIELDS)),
                               "id": provider_id, "account_id": account_id, "created_at": stamp,
                               "modified_at": stamp}
        row.update(await _seal_headers(conn, request, account_id, provider_id, None, body.headers))
        await queries.insert_custom_provider(conn, row)
        await queries.record_change(conn, account_id, KIND)
    await services(request).on_change(account_id)
    return envelope.ok(custom_provider_wire(row))


def _optional_bool(request: Request, name: str) -> bool | None:
    return bool_param(request, name) if name in request.query_params else None


async def list_providers(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        page, per_page = paging(request)
        search = request.query_params.get("search") or None
        if search is not None and len(search) > MAX_SEARCH:
            raise ValidationError(f"search: must be at most {MAX_SEARCH} characters",
                                  path=["query", "search"])
        rows, total = await queries.list_custom_providers(
            conn, account_id, beta=_optional_bool(request, "beta"), enable=_optional_bool(request, "enable"),
            search=search, page=page, per_page=per_page)
    return envelope.ok([custom_provider_wire(r) for r in rows],
                       result_info=envelope.page_info(page, per_page, len(rows), total))


async def get_provider(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        row = await _require(conn, request, account_id)
    return envelope.ok(custom_provider_wire(row))


async def update_provider(request: Request) -> Response:
    """A merge: fields left out keep their value; ``null`` clears an optional one (docs/api.md)."""
    async with authorized(request) as (account_id, conn, _):
        body = parse_model(CustomProviderFields, require_object(await read_json(request)))
        if not body.model_fields_set:
            raise ValidationError("body: send at least one field to change", path=["body"])
        await queries.lock_key_writes(conn, account_id)
        row = await _require(conn, request, account_id)
        values = body.model_dump(include=body.model_fields_set & set(STORED_FIELDS))
        if values.get("slug", row["slug"]) != row["slug"]:
            await _refuse_if_used(conn, account_id, row, "change its slug")
            if await queries.custom_provider_by_slug(conn, account_id, values["slug"]) is not None:
                raise Conflict(f"a custom provider with slug {values['slug']!r} already exists in this "
                               "account")
        if "headers" in body.model_fields_set:
            values.update(await _seal_headers(conn, request, account_id, row["id"], row["headers_secret_id"],
                                              body.headers))
        values["modified_at"] = rfc3339(now())
        await queries.update_custom_provider(conn, row["id"], values)
        await queries.record_change(conn, account_id, KIND)
        updated = {**row, **values}
    await services(request).on_change(account_id)
    return envelope.ok(custom_provider_wire(updated))


async def delete_provider(request: Request) -> Response:
    """Refused (409) while provider configs use the provider: their stored keys would go nowhere."""
    async with authorized(request) as (account_id, conn, _):
        await queries.lock_key_writes(conn, account_id)
        row = await _require(conn, request, account_id)
        await _refuse_if_used(conn, account_id, row, "delete it")
        await queries.delete_custom_provider(conn, row["id"])
        if row["headers_secret_id"] is not None:
            await queries.delete_secret(conn, row["headers_secret_id"])
        await queries.record_change(conn, account_id, KIND)
    await services(request).on_change(account_id)
    return envelope.ok(custom_provider_wire(row))
