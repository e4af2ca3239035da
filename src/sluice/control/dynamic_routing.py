"""Dynamic routes API: routes, their immutable versions and deployments (docs/routing.md).

Shapes follow the official SDK (``client.ai_gateway.dynamic_routing``): create, get, delete, versions
and deployments answer in the v4 envelope's ``result``; the three lists answer ``{"data": …}`` and
update ``{"route": …}`` beside ``success``, which is how the SDK reads them.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from sluice import envelope
from sluice.clock import new_id, now, rfc3339
from sluice.control.common import authorized, require_gateway, services
from sluice.control.route_schemas import (
    DeploymentCreate,
    RouteCreate,
    RouteUpdate,
    VersionCreate,
    deployment_wire,
    listing,
    route_base,
    route_wire,
    version_wire,
)
from sluice.control.validation import paging, parse_model, read_json, require_object
from sluice.errors import NotFound
from sluice.routing.graph import parse_graph
from sluice.store import queries
from sluice.store import routes as store

CHANGE_KIND = "route"


def _elements(request: Request, elements: list[Any]) -> str:
    """The elements as stored, once the graph they make is valid (400 naming element and field)."""
    parse_graph(elements, services(request).catalog.__contains__)
    return orjson.dumps(elements).decode()


async def _route(conn: AsyncConnection, request: Request, account_id: str, *, lock: bool = False) -> dict:
    gateway_id, route_id = request.path_params["gateway_id"], request.path_params["route_id"]
    await require_gateway(conn, account_id, gateway_id)
    route = await store.get_route(conn, account_id, gateway_id, route_id, lock=lock)
    if route is None:
        raise NotFound(f"route {route_id[:64]!r} not found")
    return route


async def _deployed(conn: AsyncConnection, route: dict[str, Any]) -> dict[str, Any]:
    """The route's live version."""
    return (await store.versions_by_id(conn, [route["deployed_version_id"]]))[route["deployed_version_id"]]


async def _wire(conn: AsyncConnection, route: dict[str, Any]) -> dict[str, Any]:
    version = await _deployed(conn, route)
    deployment = (await store.latest_deployments(conn, [route["id"]]))[route["id"]]
    return route_wire(route, version, deployment)


async def _changed(conn: AsyncConnection, account_id: str) -> None:
    await queries.record_change(conn, account_id, CHANGE_KIND)


async def create_route(request: Request) -> Response:
    gateway_id = request.path_params["gateway_id"]
    async with authorized(request) as (account_id, conn, _):
        body = parse_model(RouteCreate, require_object(await read_json(request)))
        elements = _elements(request, body.elements)
        await require_gateway(conn, account_id, gateway_id)
        stamp = rfc3339(now())
        route = {"id": new_id(), "account_id": account_id, "gateway_id": gateway_id, "name": body.name,
                 "deployed_version_id": new_id(), "created_at": stamp, "modified_at": stamp}
        version = {"id": route["deployed_version_id"], "route_id": route["id"], "seq": 1,
                   "elements": elements, "created_at": stamp}
        deployment = {"id": new_id(), "route_id": route["id"], "version_id": version["id"], "seq": 1,
                      "created_at": stamp}
        await store.insert_route(conn, route, version, deployment)
        await _changed(conn, account_id)
    await services(request).on_change(account_id)
    return envelope.ok(route_wire(route, version, deployment))


async def list_routes(request: Request) -> Response:
    gateway_id = request.path_params["gateway_id"]
    async with authorized(request) as (account_id, conn, _):
        page, per_page = paging(request)
        await require_gateway(conn, account_id, gateway_id)
        rows, total = await store.list_routes(conn, account_id, gateway_id, page, per_page)
        versions = await store.versions_by_id(conn, [r["deployed_version_id"] for r in rows])
        deployed = await store.latest_deployments(conn, [r["id"] for r in rows])
    items = [route_wire(r, versions[r["deployed_version_id"]], deployed[r["id"]]) for r in rows]
    return envelope.ok(listing("routes", items, page, per_page, total, "asc"), key="data")


async def get_route(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        wire = await _wire(conn, await _route(conn, request, account_id))
    return envelope.ok(wire)


async def update_route(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        body = parse_model(RouteUpdate, require_object(await read_json(request)))
        route = await _route(conn, request, account_id, lock=True)
        route = {**route, "name": body.name, "modified_at": rfc3339(now())}
        await store.update_route(conn, route, {"name": route["name"], "modified_at": route["modified_at"]})
        await _changed(conn, account_id)
        wire = await _wire(conn, route)
    await services(request).on_change(account_id)
    return envelope.ok(wire, key="route")


async def delete_route(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        route = await _route(conn, request, account_id, lock=True)
        version = await _deployed(conn, route)
        await store.delete_route(conn, route["id"])
        await _changed(conn, account_id)
    await services(request).on_change(account_id)
    return envelope.ok(route_base(route, version["elements"]))


async def create_version(request: Request) -> Response:
    """A new immutable version; it serves nothing until deployed."""
    async with authorized(request) as (account_id, conn, _):
        body = parse_model(VersionCreate, require_object(await read_json(request)))
        elements = _elements(request, body.elements)
        route = await _route(conn, request, account_id, lock=True)
        stamp = rfc3339(now())
        version = await store.add_version(conn, {"id": new_id(), "route_id": route["id"],
                                                 "elements": elements, "created_at": stamp})
        route = {**route, "modified_at": stamp}
        await store.update_route(conn, route, {"modified_at": stamp})
    # the SDK types the route's fields; version_id and version say which version was made
    return envelope.ok({**route_base(route, elements), "version_id": version["id"],
                        "version": version_wire(version, route)})


async def list_versions(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        page, per_page = paging(request)
        route = await _route(conn, request, account_id)
        rows, total = await store.history(conn, "versions", route["id"], page, per_page)
    items = [version_wire(row, route) for row in rows]
    return envelope.ok(listing("versions", items, page, per_page, total, "desc"), key="data")


async def get_version(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        route = await _route(conn, request, account_id)
        version = await store.get_version(conn, route["id"], request.path_params["version_id"])
    if version is None:
        raise NotFound(f"version {request.path_params['version_id'][:64]!r} not found")
    return envelope.ok({**route_base(route, version["elements"]), **version_wire(version, route)})


async def create_deployment(request: Request) -> Response:
    """Makes a version live: the next request of this process routes by it; others learn through the
    change feed. Deploying an earlier version is the roll-back."""
    async with authorized(request) as (account_id, conn, _):
        body = parse_model(DeploymentCreate, require_object(await read_json(request)))
        route = await _route(conn, request, account_id, lock=True)
        version = await store.get_version(conn, route["id"], body.version_id)
        if version is None:
            raise NotFound(f"version {body.version_id!r} not found on this route")
        stamp = rfc3339(now())
        deployment = await store.add_deployment(conn, {"id": new_id(), "route_id": route["id"],
                                                       "version_id": version["id"], "created_at": stamp})
        route = {**route, "deployed_version_id": version["id"], "modified_at": stamp}
        await store.update_route(conn, route, {"deployed_version_id": version["id"], "modified_at": stamp})
        await _changed(conn, account_id)
    await services(request).on_change(account_id)
    return envelope.ok({**route_base(route, version["elements"]), "deployment": deployment_wire(deployment),
                        "version": version_wire(version, route)})


async def list_deployments(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        page, per_page = paging(request)
        route = await _route(conn, request, account_id)
        rows, total = await store.history(conn, "deployments", route["id"], page, per_page)
    items = [deployment_wire(row) for row in rows]
    return envelope.ok(listing("deployments", items, page, per_page, total, "desc"), key="data")
