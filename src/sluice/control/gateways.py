"""Gateways API: /accounts/{account_id}/ai-gateway/gateways[/{gateway_id}]."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from sluice import envelope
from sluice.cache.keys import gateway_prefix
from sluice.control.common import authorized, is_account_custom_provider, require_gateway, services
from sluice.control.schemas import GatewayCreate, GatewayFields, gateway_body, gateway_wire
from sluice.control.validation import paging, parse_model, read_json, require_object
from sluice.errors import Conflict, ValidationError
from sluice.store import queries, routes


async def _check_store(conn: AsyncConnection, account_id: str, store_id: str | None) -> None:
    if store_id is not None and await queries.get_store(conn, account_id, store_id) is None:
        raise ValidationError(f"store_id: no secrets store {store_id!r} in this account",
                              path=["body", "store_id"])


async def create_gateway(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        fields = parse_model(GatewayCreate, require_object(await read_json(request)))
        if await queries.get_gateway(conn, account_id, fields.id) is not None:
            raise Conflict(f"a gateway with id {fields.id!r} already exists")
        await _check_store(conn, account_id, fields.store_id)
        row = await queries.insert_gateway(conn, account_id, fields.id, gateway_body(fields, None))
        await queries.record_change(conn, account_id, "gateway")
    await services(request).on_change(account_id)
    return envelope.ok(gateway_wire(row))


async def list_gateways(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        page, per_page = paging(request)
        search = request.query_params.get("search") or None
        rows, total = await queries.list_gateways(conn, account_id, search, page, per_page)
    return envelope.ok([gateway_wire(r) for r in rows],
                       result_info=envelope.page_info(page, per_page, len(rows), total))


async def get_gateway(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        row = await require_gateway(conn, account_id, request.path_params["gateway_id"])
    return envelope.ok(gateway_wire(row))


async def update_gateway(request: Request) -> Response:
    gateway_id = request.path_params["gateway_id"]
    async with authorized(request) as (account_id, conn, _):
        data = require_object(await read_json(request))
        if data.get("id", gateway_id) == gateway_id:
            data.pop("id", None)  # tolerate the id repeated in the body; a different one is refused
        fields = parse_model(GatewayFields, data)
        current = await require_gateway(conn, account_id, gateway_id)
        await _check_store(conn, account_id, fields.store_id)
        row = await queries.update_gateway(conn, account_id, gateway_id, gateway_body(fields, current))
        await queries.record_change(conn, account_id, "gateway")
    await services(request).on_change(account_id)
    cache = services(request).cache
    if cache is not None and row and row.get("cache_invalidate_on_update"):
        await cache.invalidate(gateway_prefix(account_id, gateway_id))
    return envelope.ok(gateway_wire(row))  # type: ignore[arg-type]


async def delete_gateway(request: Request) -> Response:
    gateway_id = request.path_params["gateway_id"]
    async with authorized(request) as (account_id, conn, _):
        await queries.lock_key_writes(conn, account_id)  # its configs and their secrets go too
        row = await require_gateway(conn, account_id, gateway_id)
        await queries.delete_gateway(conn, account_id, gateway_id)
        await routes.delete_gateway_routes(conn, account_id, gateway_id)
        await services(request).on_gateway_delete(conn, account_id, gateway_id)  # its logs, activity, cache
        await queries.record_change(conn, account_id, "gateway")
    await services(request).on_change(account_id)
    return envelope.ok(gateway_wire(row))


async def gateway_url(request: Request) -> Response:
    provider = request.path_params["provider"]
    async with authorized(request) as (account_id, conn, _):
        gateway = await require_gateway(conn, account_id, request.path_params["gateway_id"])
        custom = await is_account_custom_provider(conn, account_id, provider)
    if provider not in services(request).catalog and not custom:
        raise ValidationError(f"provider: unknown provider {provider[:64]!r}", path=["path", "provider"])
    # The configured public URL; the request's Host only when unset (a client could send any Host).
    base = services(request).settings.public_url or str(request.base_url).rstrip("/")
    return envelope.ok(f"{base}/v1/{account_id}/{gateway['id']}/{provider}")
