"""Account API tokens API and token verification (SPEC §2)."""

from __future__ import annotations

from datetime import datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sluice import envelope
from sluice.clock import new_id, now, rfc3339
from sluice.control.auth import authenticate
from sluice.control.common import authorized, services
from sluice.control.schemas import TokenCreate, token_wire
from sluice.control.validation import paging, parse_model, read_json, require_object
from sluice.errors import AuthenticationError, NotFound, ValidationError
from sluice.identity.credentials import hash_value, new_token
from sluice.identity.permissions import ALL_GROUPS
from sluice.store import queries


def _permissions(body: TokenCreate) -> list[str]:
    names = list(body.permissions or [])
    for policy in body.policies or []:
        for group in policy.permission_groups:
            name = group.name or group.id
            if name not in ALL_GROUPS:
                raise ValidationError(f"policies: unknown permission group {str(name)[:64]!r}; known: "
                                      f"{', '.join(ALL_GROUPS)}", path=["body", "policies"])
            names.append(name)
    if not names:
        raise ValidationError("permissions: give at least one permission group", path=["body", "permissions"])
    return sorted(set(names))


def _expiry(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError("expires_on: must be an RFC 3339 timestamp", path=["body", "expires_on"]) from None
    if moment.tzinfo is None:
        raise ValidationError("expires_on: must include a time zone (e.g. Z)", path=["body", "expires_on"])
    try:
        return rfc3339(moment)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValidationError("expires_on: out of range", path=["body", "expires_on"]) from None


def token_row(account_id: str, name: str, value: str, permissions: list[str], expires_on: str | None = None) -> dict:
    stamp = rfc3339(now())
    return {"id": new_id(), "account_id": account_id, "name": name, "value_hash": hash_value(value),
            "permissions": orjson.dumps(permissions).decode(), "status": "active", "expires_on": expires_on,
            "last_used_on": None, "issued_on": stamp, "modified_on": stamp}


async def create_token(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        body = parse_model(TokenCreate, require_object(await read_json(request)))
        value = new_token()
        row = await queries.insert_token(conn, token_row(account_id, body.name, value, _permissions(body),
                                                         _expiry(body.expires_on)))
        await queries.record_change(conn, account_id, "token")
    await services(request).on_change(account_id)
    return envelope.ok({**token_wire(row), "value": value})


async def list_tokens(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        page, per_page = paging(request, max_per_page=50)
        rows, total = await queries.list_tokens(conn, account_id, page, per_page)
    return envelope.ok([token_wire(r) for r in rows], result_info=envelope.page_info(page, per_page, len(rows), total))


async def get_token(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        row = await queries.get_token(conn, account_id, request.path_params["token_id"])
    if row is None:
        raise NotFound("token not found")
    return envelope.ok(token_wire(row))


async def delete_token(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        row = await queries.get_token(conn, account_id, request.path_params["token_id"])
        if row is None:
            raise NotFound("token not found")
        await queries.delete_token(conn, row["id"])
        await queries.record_change(conn, account_id, "token")
    await services(request).on_change(account_id)
    return envelope.ok({"id": row["id"]})


async def verify(request: Request) -> Response:
    """Valid for any active token; on an account path the token must belong to that account."""
    async with services(request).db.begin() as conn:
        principal = await authenticate(request, conn)
    if principal.token is None:
        raise AuthenticationError("Authentication error: verify takes an API token, not a global API key")
    account_id = request.path_params.get("account_id")
    if account_id is not None:
        principal.authorize(account_id, tuple(principal.permissions) or ("-",))
    token = principal.token
    return envelope.ok({"id": token["id"], "status": token["status"], "expires_on": token["expires_on"]})
