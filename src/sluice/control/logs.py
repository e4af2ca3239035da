"""Logs API (Cloudflare-compatible): /accounts/{account_id}/ai-gateway/gateways/{gateway_id}/logs…

List (filters, order, paging, aggregates), get, raw request/response bodies, patch (feedback,
score, metadata) and delete by filters. Filter parsing lives in ``logs/filters.py``, SQL in
``store/logs.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from sluice import envelope
from sluice.clock import now as utc_now
from sluice.clock import rfc3339
from sluice.control.common import authorized, require_gateway
from sluice.control.validation import (
    MAX_PAGE,
    bool_param,
    choice_param,
    int_param,
    number_param,
    paging,
    read_json,
    require_object,
)
from sluice.errors import NotFound, ValidationError
from sluice.logs import custom, series
from sluice.logs.filters import Filter, check_query, parse_date, parse_filters
from sluice.store import logs as logstore

HEAD_MAX = 8192  # characters of a body shown inline by GET /logs/{id}
DEPRECATED_EQ = ("model", "model_type", "provider", "request_content_type", "response_content_type")
DEPRECATED_RANGES = {"cost": "cost", "duration": "duration", "tokens_in": "tokens_in",
                     "tokens_out": "tokens_out",
                     "total_tokens": "tokens"}


def _deprecated_filters(request: Request) -> list[Filter]:
    """The flat parameters Cloudflare deprecated but still accepts, as filters."""
    params = request.query_params
    out = []
    for name in ("cached", "success"):
        if name in params:
            out.append(Filter(name, "eq", (bool_param(request, name),)))
    if "feedback" in params:
        out.append(Filter("feedback", "eq",
                          (float(int_param(request, "feedback", 0, minimum=-1, maximum=1)),)))
    out += [Filter(name, "eq", (params[name],)) for name in DEPRECATED_EQ if name in params]
    for suffix, key in DEPRECATED_RANGES.items():
        for bound, operator in (("min", "ge"), ("max", "le")):
            value = number_param(request, f"{bound}_{suffix}")
            if value is not None:
                out.append(Filter(key, operator, (value,)))
    for name, operator in (("start_date", "ge"), ("end_date", "le")):
        if name in params:
            out.append(Filter("created_at", operator, (parse_date(params[name], name),)))
    return out


def _item(row: dict[str, Any]) -> dict[str, Any]:
    """The list shape: Cloudflare's fields plus Sluice's feedback, score, event_id and alias."""
    out = {name: row[name] for name in logstore.LIST_COLUMNS}
    out["model"] = row["model"] or ""
    for name in ("cached", "success", "custom_cost"):
        out[name] = bool(row[name])
    for name in ("feedback", "score", "event_id", "alias"):
        out[name] = row[name]
    if out["feedback"] is not None:
        out["feedback"] = int(out["feedback"])
    return out


def _head(body: bytes | None, size: int) -> tuple[str, bool]:
    text = (body or b"").decode("utf-8", "replace")
    return text[:HEAD_MAX], len(text) <= HEAD_MAX and len(body or b"") >= size


def _detail(row: dict[str, Any]) -> dict[str, Any]:
    out = _item(row)
    request_head: str | None
    response_head: str | None
    if row["payload_collected"]:
        request_head, request_complete = _head(row["request_body"], row["request_size"])
        response_head, response_complete = _head(row["response_body"], row["response_size"])
    else:  # cf-aig-collect-log-payload: false — no body was stored, so there is no head to show
        request_head, request_complete, response_head, response_complete = None, False, None, False
    out.update(request_head=request_head, request_head_complete=request_complete,
               request_size=row["request_size"],
               response_head=response_head, response_head_complete=response_complete,
               response_size=row["response_size"], method=row["method"], stream=bool(row["stream"]),
               user_agent=row["user_agent"], error=row["error"])
    return out


async def list_logs(request: Request) -> Response:
    gateway_id = request.path_params["gateway_id"]
    async with authorized(request) as (account_id, conn, _):  # 401 before any 400
        check_query(request.scope.get("query_string", b""))  # before anything parses the query
        page, per_page = paging(request, max_per_page=50)
        filters = parse_filters(request.query_params.multi_items()) + _deprecated_filters(request)
        order_by = choice_param(request, "order_by", "created_at", logstore.ORDER_COLUMNS)
        direction = choice_param(request, "direction", "desc", ("asc", "desc"))
        direction = choice_param(request, "order_by_direction", direction, ("asc", "desc"))
        bool_param(request, "meta_info")  # validated; aggregates are always returned
        search = request.query_params.get("search") or None
        await require_gateway(conn, account_id, gateway_id)
        condition = logstore.where(account_id, gateway_id, filters, search)
        rows = await logstore.list_logs(conn, condition, order_by, direction == "desc", page, per_page)
        totals = await logstore.aggregates(conn, condition)
    info: dict[str, Any] = envelope.page_info(page, per_page, len(rows), int(totals.pop("total_count")))
    info.update({k: (v if v is not None else 0) for k, v in totals.items()})
    return envelope.ok([_item(r) for r in rows], result_info=info)


async def _log(conn: AsyncConnection, request: Request, account_id: str) -> dict[str, Any]:
    gateway_id, log_id = request.path_params["gateway_id"], request.path_params["log_id"]
    await require_gateway(conn, account_id, gateway_id)
    row = await logstore.get_log(conn, account_id, gateway_id, log_id)
    if row is None:
        raise NotFound(f"log {log_id[:64]!r} not found")
    return row


async def get_log(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        row = await _log(conn, request, account_id)
    return envelope.ok(_detail(row))


def _raw(body: bytes | None, size: int, content_type: str | None) -> Response:
    """The stored body as it was sent; JSON only when it parses (a capped body may not)."""
    body = body or b""
    try:
        orjson.loads(body)
        media = "application/json"
    except orjson.JSONDecodeError:
        media = "text/plain; charset=utf-8"  # what the stored content type says, unless it claims JSON
        if content_type and "json" not in content_type.lower():
            media = content_type
    headers = {"x-sluice-body-complete": "true" if len(body) >= size else "false"}
    return Response(body, media_type=media, headers=headers)


def _require_payload(row: dict[str, Any], which: str) -> None:
    if not row["payload_collected"]:
        raise NotFound(f"log {row['id']}: the {which} body was not stored: the request was sent with "
                       "cf-aig-collect-log-payload: false")


async def get_log_request(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        row = await _log(conn, request, account_id)
    _require_payload(row, "request")
    return _raw(row["request_body"], row["request_size"], row["request_content_type"])


async def get_log_response(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        row = await _log(conn, request, account_id)
    _require_payload(row, "response")
    return _raw(row["response_body"], row["response_size"], row["response_content_type"])


def _moment(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    return None if raw is None else series.parse(raw, name)


async def log_series(request: Request) -> Response:
    """Sluice extension: requests, errors, tokens and cost per minute/hour/day (the console's charts),
    for the whole gateway or one key (``provider`` + ``alias``)."""
    gateway_id = request.path_params["gateway_id"]
    async with authorized(request) as (account_id, conn, _):  # 401 before any 400
        check_query(request.scope.get("query_string", b""))
        interval = request.query_params.get("interval")
        if interval is not None:
            choice_param(request, "interval", "", tuple(series.INTERVALS))
        win = series.window(_moment(request, "start"), _moment(request, "end"), interval, utc_now())
        filters = [Filter("created_at", "ge", (rfc3339(win.start),)),
                   Filter("created_at", "le", (rfc3339(win.end),))]
        filters += [Filter(name, "eq", (request.query_params[name][:256],))
                    for name in ("provider", "alias") if name in request.query_params]
        await require_gateway(conn, account_id, gateway_id)
        rows = await logstore.series(conn, logstore.where(account_id, gateway_id, filters), win.prefix)
    by_start = {series.bucket_stamp(prefix): row for prefix, row in rows.items()}
    return envelope.ok({"interval": win.interval, "start": rfc3339(win.start), "end": rfc3339(win.end),
                        "points": series.points(win, by_start)})


def _patch_values(data: dict[str, Any]) -> dict[str, Any]:
    unknown = [k for k in data if k not in ("feedback", "score", "metadata")]
    if unknown:
        raise ValidationError(f"{unknown[0][:64]}: unknown field; remove it", path=["body", unknown[0][:64]])
    if not data:
        raise ValidationError("body: send at least one of feedback, score, metadata", path=["body"])
    values: dict[str, Any] = {}
    if "feedback" in data:
        feedback = data["feedback"]
        if feedback is not None and (isinstance(feedback, bool) or feedback not in (-1, 0, 1)):
            raise ValidationError("feedback: must be -1, 0, 1 or null", path=["body", "feedback"])
        values["feedback"] = None if feedback is None else int(feedback)
    if "score" in data:
        score = data["score"]
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))
                                  or not 0 <= score <= 100):
            raise ValidationError("score: must be a number from 0 to 100, or null", path=["body", "score"])
        values["score"] = score
    if "metadata" in data:
        metadata = data["metadata"]
        if metadata is not None:
            if not isinstance(metadata, dict) or len(metadata) > custom.MAX_METADATA_ENTRIES \
                    or custom.clean_metadata(metadata) is None:
                raise ValidationError(f"metadata: must be an object of at most {custom.MAX_METADATA_ENTRIES} "
                                      "entries whose values are strings, numbers or booleans",
                                      path=["body", "metadata"])
        values["metadata"] = custom.metadata_text(metadata)  # replaces the whole object
    return values


async def edit_log(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        values = _patch_values(require_object(await read_json(request)))
        row = await _log(conn, request, account_id)
        await logstore.update_log(conn, account_id, row["gateway_id"], row["id"], values)
        row.update(values)
    return envelope.ok(_item(row))


async def delete_logs(request: Request) -> Response:
    gateway_id = request.path_params["gateway_id"]
    async with authorized(request) as (account_id, conn, _):  # 401 before any 400
        check_query(request.scope.get("query_string", b""))  # before anything parses the query
        filters = parse_filters(request.query_params.multi_items())
        order_by = choice_param(request, "order_by", "created_at", logstore.DELETE_ORDER_COLUMNS)
        direction = choice_param(request, "order_by_direction", "asc", ("asc", "desc"))
        limit: int | None = None
        if "limit" in request.query_params:
            limit = int_param(request, "limit", 0, minimum=1, maximum=MAX_PAGE)
        await require_gateway(conn, account_id, gateway_id)
        deleted = await logstore.delete_logs(conn, logstore.where(account_id, gateway_id, filters), order_by,
                                             direction == "desc", limit)
    return envelope.ok({"deleted": deleted})


__all__ = ["delete_logs", "edit_log", "get_log", "get_log_request", "get_log_response", "list_logs",
           "log_series"]
