"""Secrets Store API: /accounts/{account_id}/secrets_store/... (values are write-only)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from sluice import envelope
from sluice.clock import new_id, now, rfc3339
from sluice.control.common import authorized, services
from sluice.control.schemas import (
    SecretCreate,
    SecretDuplicate,
    SecretPatch,
    SecretRef,
    StoreCreate,
    secret_wire,
    store_wire,
)
from sluice.control.validation import (
    bool_param,
    choice_param,
    paging,
    parse_model,
    read_json,
    require_object,
)
from sluice.errors import Conflict, FieldErrors, NotFound, StoreNotEmpty, ValidationError
from sluice.secrets import vault
from sluice.store import queries

SECRETS_QUOTA = 1000


async def _store(conn: AsyncConnection, account_id: str, store_id: str) -> dict[str, Any]:
    store = await queries.get_store(conn, account_id, store_id)
    if store is None:
        raise NotFound(f"secrets store {store_id[:64]!r} not found")
    return store


async def _secret(conn: AsyncConnection, account_id: str, store_id: str, secret_id: str) -> dict[str, Any]:
    secret = await queries.get_secret(conn, account_id, secret_id)
    if secret is None or secret["store_id"] != store_id:
        raise NotFound(f"secret {secret_id[:64]!r} not found")
    return secret


async def create_store(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        body = parse_model(StoreCreate, require_object(await read_json(request)))
        await queries.lock_key_writes(conn, account_id)
        if await queries.store_by_name(conn, account_id, body.name):
            raise Conflict(f"a store named {body.name!r} already exists")
        stamp = rfc3339(now())
        row = await queries.insert_store(conn, {"id": new_id(), "account_id": account_id, "name": body.name,
                                                "created": stamp, "modified": stamp})
    return envelope.ok(store_wire(row))


async def list_stores(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        page, per_page = paging(request)
        order = choice_param(request, "order", "created", ("name", "created", "modified"))
        descending = choice_param(request, "direction", "asc", ("asc", "desc")) == "desc"
        rows, total = await queries.list_stores(conn, account_id, order, descending, page, per_page)
    return envelope.ok([store_wire(r) for r in rows],
                       result_info=envelope.page_info(page, per_page, len(rows), total))


async def get_store(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        row = await _store(conn, account_id, request.path_params["store_id"])
    return envelope.ok(store_wire(row))


async def delete_store(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        force = bool_param(request, "force")
        await queries.lock_key_writes(conn, account_id)
        row = await _store(conn, account_id, request.path_params["store_id"])
        if not force and await queries.count_secrets(conn, store_id=row["id"]):
            raise StoreNotEmpty()
        await queries.delete_store(conn, row["id"])
        await queries.record_change(conn, account_id, "secret")
    await services(request).on_change(account_id)
    return envelope.ok(store_wire(row))


async def create_secrets(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        data = await read_json(request)
        if not isinstance(data, list) or not data:
            raise ValidationError("body: expected a non-empty JSON array of secrets", path=["body"])
        items: list[SecretCreate] = []
        errors: list[tuple[list[str | int], str]] = []
        for index, item in enumerate(data):
            try:
                items.append(parse_model(SecretCreate, item, root="body"))
            except FieldErrors as exc:
                errors.extend(([p[0], index, *p[1:]], m) for p, m in exc.items)
        if errors:
            raise FieldErrors(errors)
        names = [i.name for i in items]
        if len(set(names)) != len(names):
            raise ValidationError("body: secret names must be unique within one request", path=["body"])
        await queries.lock_key_writes(conn, account_id)
        store = await _store(conn, account_id, request.path_params["store_id"])
        if await queries.count_secrets(conn, account_id=account_id) + len(items) > SECRETS_QUOTA:
            raise ValidationError(f"body: the account's quota of {SECRETS_QUOTA} secrets would be exceeded",
                                  path=["body"])
        created = []
        for item in items:
            if await queries.secret_by_name(conn, store["id"], item.name):
                raise Conflict(f"a secret named {item.name!r} already exists in this store")
            created.append(await vault.create_secret(
                conn, services(request).keyring, account_id=account_id, store_id=store["id"], name=item.name,
                value=item.value, scopes=list(item.scopes), comment=item.comment))
    return envelope.ok([secret_wire(r) for r in created])


async def list_secrets(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        page, per_page = paging(request)
        order = choice_param(request, "order", "created",
                             ("name", "comment", "created", "modified", "status"))
        descending = choice_param(request, "direction", "asc", ("asc", "desc")) == "desc"
        scopes = request.query_params.getlist("scopes") or None
        store = await _store(conn, account_id, request.path_params["store_id"])
        rows, total = await queries.list_secrets(conn, store["id"], search=request.query_params.get("search"),
                                                 scopes=scopes, order=order, descending=descending,
                                                 page=page, per_page=per_page)
    return envelope.ok([secret_wire(r) for r in rows],
                       result_info=envelope.page_info(page, per_page, len(rows), total))


async def get_secret(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        row = await _secret(conn, account_id, request.path_params["store_id"],
                            request.path_params["secret_id"])
    return envelope.ok(secret_wire(row))


async def patch_secret(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        body = parse_model(SecretPatch, require_object(await read_json(request)))
        if not body.model_fields_set:
            raise ValidationError("body: send at least one of value, scopes, comment", path=["body"])
        await queries.lock_key_writes(conn, account_id)
        row = await _secret(conn, account_id, request.path_params["store_id"],
                            request.path_params["secret_id"])
        if body.value is not None:
            await vault.replace_value(conn, services(request).keyring, row, body.value)
        values: dict[str, Any] = {"modified": rfc3339(now())}
        if body.scopes is not None:
            values["scopes"] = orjson.dumps(list(body.scopes)).decode()
        if "comment" in body.model_fields_set:
            values["comment"] = body.comment
        await queries.update_secret(conn, row["id"], values)
        await queries.record_change(conn, account_id, "secret")
        updated = await queries.get_secret(conn, account_id, row["id"])
        assert updated is not None  # updated above in this transaction, under the key-write lock
    await services(request).on_change(account_id)
    return envelope.ok(secret_wire(updated))


async def delete_secret(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        await queries.lock_key_writes(conn, account_id)
        row = await _secret(conn, account_id, request.path_params["store_id"],
                            request.path_params["secret_id"])
        users = await queries.secret_references(conn, row["id"])
        if users:
            raise Conflict(f"secret is used by {users} provider config(s) or custom provider(s); "
                           "delete those first")
        await queries.delete_secret(conn, row["id"])
        await queries.record_change(conn, account_id, "secret")
    await services(request).on_change(account_id)
    return envelope.ok(secret_wire(row))


def _secret_ids(data: Any) -> list[str]:
    """The ids of a bulk delete: Cloudflare's body, a JSON array of ``{"id": ...}``, each id once."""
    if not isinstance(data, list) or not data:
        raise ValidationError('body: expected a non-empty JSON array of {"id": "<secret id>"}', path=["body"])
    if len(data) > SECRETS_QUOTA:
        raise ValidationError(f"body: at most {SECRETS_QUOTA} secrets per request", path=["body"])
    ids: list[str] = []
    errors: list[tuple[list[str | int], str]] = []
    for index, item in enumerate(data):
        try:
            ids.append(parse_model(SecretRef, item).id)
        except FieldErrors as exc:
            errors.extend(([p[0], index, *p[1:]], m) for p, m in exc.items)
    if errors:
        raise FieldErrors(errors)
    if len(set(ids)) != len(ids):
        raise ValidationError("body: each secret id may appear only once", path=["body"])
    return ids


async def delete_secrets(request: Request) -> Response:
    """Bulk delete, all or nothing, under the same lock and rules as deleting one secret."""
    async with authorized(request) as (account_id, conn, _):
        ids = _secret_ids(await read_json(request))
        await queries.lock_key_writes(conn, account_id)
        store = await _store(conn, account_id, request.path_params["store_id"])
        found = {row["id"]: row for row in await queries.store_secrets(conn, store["id"], ids)}
        missing = [secret_id for secret_id in ids if secret_id not in found]
        if missing:
            raise NotFound(f"secret {missing[0][:64]!r} not found in this store; nothing was deleted")
        in_use = await queries.secrets_references(conn, ids)
        if in_use:
            secret_id, users = next((i, in_use[i]) for i in ids if i in in_use)
            raise Conflict(f"secret {secret_id!r} is used by {users} provider config(s) or custom "
                           "provider(s); delete those first; nothing was deleted")
        await queries.delete_secrets(conn, ids)
        await queries.record_change(conn, account_id, "secret")
    await services(request).on_change(account_id)
    return envelope.ok([secret_wire(found[secret_id]) for secret_id in ids])


async def duplicate_secret(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        body = parse_model(SecretDuplicate, require_object(await read_json(request)))
        await queries.lock_key_writes(conn, account_id)
        store_id = request.path_params["store_id"]
        await _secret(conn, account_id, store_id, request.path_params["secret_id"])
        if await queries.secret_by_name(conn, store_id, body.name):
            raise Conflict(f"a secret named {body.name!r} already exists in this store")
        sealed = await queries.get_secret(conn, account_id, request.path_params["secret_id"], sealed=True)
        keyring = services(request).keyring
        value = vault.open_row(keyring, sealed)  # type: ignore[arg-type]
        row = await vault.create_secret(conn, keyring, account_id=account_id, store_id=store_id,
                                        name=body.name,
                                        value=value, scopes=list(body.scopes), comment=body.comment)
    return envelope.ok(secret_wire(row))


async def quota(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        usage = await queries.count_secrets(conn, account_id=account_id)
    return envelope.ok({"secrets": {"quota": SECRETS_QUOTA, "usage": usage}})
