"""The OpenAPI schemas of the dynamic routes API (bodies from the pydantic models; results by hand,
as the official SDK types them), merged into ``openapi_doc``'s components."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from sluice.control import route_schemas as rs
from sluice.routing.graph import TYPES

Schema = dict[str, Any]
TEXT: Schema = {"type": "string"}
HEX32: Schema = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
ELEMENT: Schema = {"type": "object", "required": ["id", "type", "outputs"], "properties": {
    "id": TEXT, "type": {"enum": list(TYPES)},
    "properties": {"type": "object"}, "outputs": {"type": "object"}}}


def bodies(model: Callable[[type[BaseModel]], Schema]) -> dict[str, Schema]:
    elements = {"type": "array", "minItems": 1, "items": ELEMENT}
    return {
        "RouteCreate": {**model(rs.RouteCreate), "properties": {**model(rs.RouteCreate)["properties"],
                                                                "elements": elements}},
        "RouteUpdate": model(rs.RouteUpdate),
        "RouteVersionCreate": {**model(rs.VersionCreate), "properties": {"elements": elements}},
        "RouteDeploymentCreate": model(rs.DeploymentCreate),
    }


def results(stamp: Schema) -> dict[str, Schema]:
    deployment = {"type": "object", "required": ["deployment_id", "version_id", "created_at"],
                  "properties": {"deployment_id": HEX32, "version_id": HEX32, "created_at": stamp}}
    version = {"type": "object", "required": ["version_id", "created_at", "data", "active"], "properties": {
        "version_id": HEX32, "created_at": stamp, "data": {"type": "string", "description": "elements, JSON"},
        "active": {"enum": ["true", "false"]}, "is_valid": {"type": "boolean"}}}
    base_props = {"id": HEX32, "name": TEXT, "gateway_id": TEXT, "created_at": stamp, "modified_at": stamp,
                  "elements": {"type": "array", "items": ELEMENT}}
    base = {"type": "object", "required": list(base_props), "properties": base_props}
    route = {"type": "object", "required": [*base_props, "account_tag", "version", "deployment"],
             "properties": {**base_props, "account_tag": HEX32, "version": version, "deployment": deployment}}

    def listing(kind: str, item: Schema) -> Schema:
        return {"type": "object", "required": [kind, "page", "per_page", "order_by", "order_by_direction"],
                "properties": {kind: {"type": "array", "items": item}, "page": {"type": "integer"},
                               "per_page": {"type": "integer"}, "order_by": TEXT,
                               "order_by_direction": {"enum": ["asc", "desc"]},
                               "total_count": {"type": "integer", "minimum": 0}}}

    return {
        "Route": route,
        "RouteBase": base,
        "RouteVersion": {"allOf": [base, version]},
        "RouteDeployed": {"allOf": [base, {"type": "object", "required": ["deployment", "version"],
                                           "properties": {"deployment": deployment, "version": version}}]},
        "RouteVersionCreated": {"allOf": [base, {"type": "object", "required": ["version_id", "version"],
                                                 "properties": {"version_id": HEX32, "version": version}}]},
        "RouteList": listing("routes", route),
        "RouteVersionList": listing("versions", version),
        "RouteDeploymentList": listing("deployments", deployment),
    }
