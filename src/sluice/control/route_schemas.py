"""Dynamic routes' request bodies and wire shapes, as the official SDK types them
(``cloudflare.types.ai_gateway.dynamic_routing_*``); the elements themselves are validated by
``sluice.routing.graph`` (every fault names the element and the field)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import Field, StrictStr

from sluice.control.schemas import Strict

ROUTE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
RouteName = Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=ROUTE_NAME_PATTERN)]
Elements = Annotated[list[Any], Field(description="routing elements: start, conditional, percentage, "
                                                  "rate (rate_limit), model, end; see docs/routing.md")]
HEX32 = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{32}$")]


class RouteCreate(Strict):
    name: RouteName
    elements: Elements


class RouteUpdate(Strict):
    name: RouteName


class VersionCreate(Strict):
    elements: Elements


class DeploymentCreate(Strict):
    version_id: HEX32


def deployment_wire(row: dict[str, Any]) -> dict[str, Any]:
    return {"deployment_id": row["id"], "version_id": row["version_id"], "created_at": row["created_at"]}


def version_wire(row: dict[str, Any], route: dict[str, Any]) -> dict[str, Any]:
    """``data``: the version's elements as JSON text; ``active``: "true" for the deployed version."""
    return {"version_id": row["id"], "created_at": row["created_at"], "data": row["elements"],
            "active": "true" if row["id"] == route["deployed_version_id"] else "false", "is_valid": True}


def route_base(route: dict[str, Any], elements: str) -> dict[str, Any]:
    """The fields every route result has; ``elements``: a version's stored JSON."""
    return {"id": route["id"], "name": route["name"], "gateway_id": route["gateway_id"],
            "created_at": route["created_at"], "modified_at": route["modified_at"],
            "elements": orjson.loads(elements)}


def route_wire(route: dict[str, Any], version: dict[str, Any], deployment: dict[str, Any]) -> dict[str, Any]:
    """A route with its deployed version's elements, that version and its latest deployment."""
    return {**route_base(route, version["elements"]), "account_tag": route["account_id"],
            "version": version_wire(version, route), "deployment": deployment_wire(deployment)}


def listing(kind: str, items: list[dict[str, Any]], page: int, per_page: int, total: int,
            direction: str) -> dict[str, Any]:
    """The ``data`` of a list response (paged; ``total_count`` is Sluice's addition)."""
    return {kind: items, "page": page, "per_page": per_page, "order_by": "created_at",
            "order_by_direction": direction, "total_count": total}
