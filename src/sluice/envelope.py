"""Cloudflare's v4 response envelope, built here and nowhere else."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from sluice.errors import ApiError, FieldErrors


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def ok(result: Any, *, status: int = 200, result_info: dict[str, int] | None = None,
       key: str = "result") -> JSONResponse:
    """``key``: where the result goes; a few Cloudflare operations answer ``data`` or ``route``
    instead of ``result`` (the official SDK reads them there), beside the usual fields."""
    body: dict[str, Any] = {key: result, "success": True, "errors": [], "messages": []}
    if result_info is not None:
        body["result_info"] = result_info
    return JSONResponse(body, status_code=status)


def page_info(page: int, per_page: int, count: int, total_count: int) -> dict[str, int]:
    return {
        "page": page,
        "per_page": per_page,
        "count": count,
        "total_count": total_count,
        "total_pages": (total_count + per_page - 1) // per_page if per_page else 0,
    }


def error_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"result": None, "success": False, "errors": errors, "messages": []}


def error(exc: ApiError) -> JSONResponse:
    if isinstance(exc, FieldErrors):
        return validation_errors(exc.items)
    item: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.path is not None:
        item["path"] = exc.path
    return JSONResponse(error_body([item]), status_code=exc.status, headers=exc.headers)


def validation_errors(items: list[tuple[list[str | int], str]]) -> JSONResponse:
    """Several field errors at once (pydantic reports all of them); each names its field."""
    errors = [{"code": 7001, "message": message, "path": path} for path, message in items]
    return JSONResponse(error_body(errors), status_code=400)


def gateway_error_body(status: int, internal_code: int, message: str) -> bytes:
    """Data-plane error body: Cloudflare's AiGatewayError shape (note: ``error``, not ``errors``)."""
    return orjson.dumps(
        {
            "success": False,
            "result": [],
            "messages": [],
            "error": [{"code": internal_code, "message": message}],
            "name": "AiGatewayError",
            "httpCode": status,
            "internalCode": internal_code,
        }
    )
