"""Turning request input into validated values, or errors that name the field and say what is wrong."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from starlette.requests import Request

from sluice.control.gateway_settings import VARIANT
from sluice.errors import BodyTooLarge, ClientClosed, FieldErrors, NoRoute, RequestTimeout, ValidationError

Model = TypeVar("Model", bound=BaseModel)

ACCOUNT_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_MANAGEMENT_BODY = 1024 * 1024
MAX_PAGE = 1_000_000_000  # keeps (page - 1) * per_page inside a 64-bit SQL OFFSET


def _location(error: Mapping[str, Any]) -> list[str | int]:
    """Where the error is, without the tags pydantic puts in for the variant of a union it tried."""
    return [p for p in error["loc"] if not (isinstance(p, str) and p.startswith(VARIANT))]


def _describe(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    field = ".".join(str(p) for p in _location(error)) or "body"
    if kind == "extra_forbidden":
        return f"{field}: unknown field; remove it"
    if kind == "missing":
        return f"{field}: field required"
    if error.get("input", ...) is None:
        return f"{field}: must not be null"
    message = error["msg"]
    # pydantic prefixes custom ValueErrors with "Value error, "; the rest already reads well.
    message = message.removeprefix("Value error, ")
    return f"{field}: {message}"


def parse_model(model: type[Model], data: Any, root: str = "body") -> Model:
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        items = []
        for error in exc.errors(include_url=False):
            path: list[str | int] = [root, *_location(error)]
            # input values are never echoed: they may be secrets
            items.append((path, _describe(error)))
        raise FieldErrors(items) from None


def _too_large(size: str) -> BodyTooLarge:
    return BodyTooLarge(f"request body is {size} bytes; the limit is {MAX_MANAGEMENT_BODY}")


async def read_body(request: Request, timeout_s: float) -> bytes:
    """The request body, read once, before any transaction or lock is taken: a slow client then
    holds up only itself. Refused at once when Content-Length is over the limit; a chunked body is
    read no further than the limit; the whole body must arrive within ``timeout_s``."""
    cached: bytes | None = getattr(request.state, "body", None)
    if cached is not None:
        return cached
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_MANAGEMENT_BODY:
        raise _too_large(declared)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await request.receive()
                if message["type"] == "http.disconnect":
                    raise ClientClosed()
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > MAX_MANAGEMENT_BODY:
                    raise _too_large(f"over {MAX_MANAGEMENT_BODY}")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {timeout_s:g} s") from None
    body = b"".join(chunks)
    request.state.body = body
    return body


async def read_json(request: Request, *, required: bool = True) -> Any:
    body = await read_body(request, request.app.state.services.settings.body_timeout_s)
    if not body.strip():
        if required:
            raise ValidationError("body: a JSON request body is required", path=["body"])
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"body: malformed JSON ({exc.msg} at position {exc.pos})",
                              path=["body"]) from None
    if b"\\u0000" in body:  # the only way JSON spells U+0000; raw control characters are malformed
        refused = _nul_error(data, ["body"])
        if refused is not None:
            if getattr(request.state, "authorized", False):
                raise refused
            # raised by authorized(): an anonymous caller gets 401 first
            request.state.refused_input = refused
    return data


def _nul_error(data: Any, root: list[str | int]) -> ValidationError | None:
    """PostgreSQL text cannot hold U+0000, so no stored string may: refused on every backend alike.
    A loop, not recursion: JSON nests deeper than Python's recursion limit."""
    pending: list[tuple[Any, list[str | int]]] = [(data, root)]
    while pending:
        value, path = pending.pop()
        items: Any = value.items() if isinstance(value, dict) \
            else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            where = [*path, key.replace("\x00", "") if isinstance(key, str) else key]
            if (isinstance(key, str) and "\x00" in key) or (isinstance(item, str) and "\x00" in item):
                field = ".".join(str(p) for p in where[1:]) or "body"
                return ValidationError(f"{field}: must not contain the control character U+0000 (NUL)",
                                       path=where)
            if isinstance(item, (dict, list)):
                pending.append((item, where))
    return None


def require_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError("body: expected a JSON object", path=["body"])
    return data


def account_id_param(request: Request) -> str:
    account_id: str = request.path_params["account_id"]
    if not ACCOUNT_ID.match(account_id):
        raise NoRoute()
    return account_id


def paging(request: Request, *, max_per_page: int = 100, default_per_page: int = 20) -> tuple[int, int]:
    return (
        int_param(request, "page", 1, minimum=1, maximum=MAX_PAGE),
        int_param(request, "per_page", default_per_page, minimum=1, maximum=max_per_page),
    )


def int_param(request: Request, name: str, default: int, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name}: must be a whole number", path=["query", name]) from None
    if minimum is not None and value < minimum:
        raise ValidationError(f"{name}: must be >= {minimum}", path=["query", name])
    if maximum is not None and value > maximum:
        raise ValidationError(f"{name}: must be <= {maximum}", path=["query", name])
    return value


def number_param(request: Request, name: str) -> float | None:
    """A finite number from the query string, or None when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValidationError(f"{name}: must be a number", path=["query", name])
    return value


def choice_param(request: Request, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = request.query_params.get(name, default)
    if value not in allowed:
        raise ValidationError(f"{name}: must be one of {', '.join(allowed)}", path=["query", name])
    return value


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise ValidationError(f"{name}: must be true or false", path=["query", name])
