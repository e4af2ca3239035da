"""Dynamic routes' SQL: routes, their immutable versions and their deployment history."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.errors import Conflict
from sluice.store.queries import Row, _count, _insert, _one, _page, _rows
from sluice.store.schema import dynamic_route_deployments as deployments
from sluice.store.schema import dynamic_route_versions as versions
from sluice.store.schema import dynamic_routes as routes


def _taken(name: str) -> str:
    return f"a route named {name!r} already exists on this gateway"


async def insert_route(conn: AsyncConnection, route: Row, version: Row, deployment: Row) -> None:
    """A new route with its first version, deployed."""
    await _insert(conn, routes, route, _taken(route["name"]))
    await conn.execute(insert(versions).values(**version))
    await conn.execute(insert(deployments).values(**deployment))


async def get_route(conn: AsyncConnection, account_id: str, gateway_id: str, route_id: str, *,
                    lock: bool = False) -> Row | None:
    """``lock``: held until the transaction ends (PostgreSQL), so versions and deployments of one
    route are numbered one at a time; SQLite's BEGIN IMMEDIATE serialises writers anyway."""
    stmt = select(routes).where(routes.c.account_id == account_id, routes.c.gateway_id == gateway_id,
                                routes.c.id == route_id)
    return _one(await conn.execute(stmt.with_for_update() if lock else stmt))


async def list_routes(conn: AsyncConnection, account_id: str, gateway_id: str, page: int,
                      per_page: int) -> tuple[list[Row], int]:
    where = and_(routes.c.account_id == account_id, routes.c.gateway_id == gateway_id)
    stmt = select(routes).where(where).order_by(routes.c.created_at, routes.c.id)
    return _rows(await conn.execute(_page(stmt, page, per_page))), await _count(conn, routes, where)


async def update_route(conn: AsyncConnection, route: Row, values: Row) -> None:
    try:
        await conn.execute(update(routes).where(routes.c.id == route["id"]).values(**values))
    except IntegrityError:
        raise Conflict(_taken(str(values.get("name", route["name"])))) from None


async def delete_route(conn: AsyncConnection, route_id: str) -> None:
    for table in (deployments, versions):
        await conn.execute(delete(table).where(table.c.route_id == route_id))
    await conn.execute(delete(routes).where(routes.c.id == route_id))


async def delete_gateway_routes(conn: AsyncConnection, account_id: str, gateway_id: str) -> None:
    ids = select(routes.c.id).where(routes.c.account_id == account_id, routes.c.gateway_id == gateway_id)
    for table in (deployments, versions):
        await conn.execute(delete(table).where(table.c.route_id.in_(ids)))
    await conn.execute(delete(routes).where(routes.c.account_id == account_id,
                                            routes.c.gateway_id == gateway_id))


async def _next_seq(conn: AsyncConnection, table: Any, route_id: str) -> int:
    last = (await conn.execute(select(func.max(table.c.seq)).where(table.c.route_id == route_id))).scalar()
    return int(last or 0) + 1


async def add_version(conn: AsyncConnection, row: Row) -> Row:
    """``row`` without ``seq``: the next number of the route's history."""
    row = {**row, "seq": await _next_seq(conn, versions, row["route_id"])}
    await conn.execute(insert(versions).values(**row))
    return row


async def add_deployment(conn: AsyncConnection, row: Row) -> Row:
    row = {**row, "seq": await _next_seq(conn, deployments, row["route_id"])}
    await conn.execute(insert(deployments).values(**row))
    return row


async def get_version(conn: AsyncConnection, route_id: str, version_id: str) -> Row | None:
    return _one(await conn.execute(select(versions).where(versions.c.route_id == route_id,
                                                          versions.c.id == version_id)))


async def versions_by_id(conn: AsyncConnection, version_ids: Iterable[str]) -> dict[str, Row]:
    rows = _rows(await conn.execute(select(versions).where(versions.c.id.in_(list(version_ids)))))
    return {row["id"]: row for row in rows}


async def latest_deployments(conn: AsyncConnection, route_ids: Iterable[str]) -> dict[str, Row]:
    """The newest deployment of each route."""
    newest = (select(deployments.c.route_id, func.max(deployments.c.seq).label("seq"))
              .where(deployments.c.route_id.in_(list(route_ids))).group_by(deployments.c.route_id)
              .subquery())
    stmt = select(deployments).join(newest, and_(deployments.c.route_id == newest.c.route_id,
                                                 deployments.c.seq == newest.c.seq))
    return {row["route_id"]: row for row in _rows(await conn.execute(stmt))}


async def history(conn: AsyncConnection, table_name: str, route_id: str, page: int,
                  per_page: int) -> tuple[list[Row], int]:
    """A route's versions or deployments (``table_name``), newest first."""
    table = versions if table_name == "versions" else deployments
    where = table.c.route_id == route_id
    stmt = select(table).where(where).order_by(table.c.seq.desc())
    return _rows(await conn.execute(_page(stmt, page, per_page))), await _count(conn, table, where)


async def deployed(conn: AsyncConnection, account_id: str) -> list[Row]:
    """Every route of the account with its deployed version's elements (the data plane's state)."""
    stmt = (select(routes.c.id, routes.c.gateway_id, routes.c.name, routes.c.deployed_version_id,
                   versions.c.seq, versions.c.elements)
            .join(versions, versions.c.id == routes.c.deployed_version_id)
            .where(routes.c.account_id == account_id))
    return _rows(await conn.execute(stmt))
