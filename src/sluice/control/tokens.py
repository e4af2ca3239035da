"""Account API tokens API and token verification (docs/api.md: Authentication, Tokens; docs/security.md
"API tokens").

A token may only grant permission groups its creator holds (Cloudflare's model), and may only
change, roll or delete a token that holds nothing its caller lacks: otherwise ``Account API Tokens
Write`` alone would be full admin (mint an admin token, or roll one and read its new value).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sluice import envelope
from sluice.clock import new_id, now, rfc3339
from sluice.control.auth import Principal, authenticate
from sluice.control.common import authorized, services
from sluice.control.schemas import TokenCreate, TokenUpdate, token_status, token_wire
from sluice.control.validation import paging, parse_model, read_json, require_object
from sluice.errors import AuthenticationError, Forbidden, NotFound, ValidationError
from sluice.identity.credentials import hash_value, new_token
from sluice.identity.permissions import (
    ACCOUNT_SCOPE,
    ALL_GROUPS,
    GROUP_IDS,
    group_name,
)
from sluice.store import queries


def _group(policy_index: int, group_index: int, group_id: str | None, name: str | None) -> str:
    path: list[str | int] = ["body", "policies", policy_index, "permission_groups", group_index]
    by_id = group_name(group_id) if group_id is not None else None
    by_name = name if name in GROUP_IDS else None
    where = f"policies[{policy_index}].permission_groups[{group_index}]"
    if (group_id is not None and by_id is None) or (name is not None and by_name is None):
        raise ValidationError(f"{where}: unknown permission group; known (name or Cloudflare id): "
                              + ", ".join(f"{n} ({GROUP_IDS[n]})" for n in ALL_GROUPS), path=path)
    if by_id is not None and by_name is not None and by_id != by_name:
        raise ValidationError(f"{where}: id and name name different permission groups", path=path)
    chosen = by_id or by_name
    if chosen is None:
        raise ValidationError(f"{where}: give the group's id (or name)", path=path)
    return chosen


def _resources(resources: dict[str, Any] | None, account_id: str, index: int) -> dict[str, Any]:
    """Sluice tokens are account-owned and cover the whole account: the one resource there is."""
    own = f"{ACCOUNT_SCOPE}.{account_id}"
    if not resources:
        return {own: "*"}
    for key, value in resources.items():
        if key not in (own, f"{ACCOUNT_SCOPE}.*") or value != "*":
            raise ValidationError(
                f"policies[{index}].resources: {key[:96]!r} is not this account; a token here covers the "
                f"whole account it belongs to, so resources may only be {{{own!r}: '*'}} (or omitted)",
                path=["body", "policies", index, "resources"])
    return dict(resources)


def _policy(groups: list[str], resources: dict[str, Any]) -> dict[str, Any]:
    return {"id": new_id(), "effect": "allow",
            "permission_groups": [{"id": GROUP_IDS[g], "name": g} for g in groups], "resources": resources}


def granted(body: TokenCreate, account_id: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The permission groups a request grants (sorted names) and the policies to store and show."""
    names: set[str] = set(body.permissions or [])
    policies = []
    for i, policy in enumerate(body.policies or []):
        groups = [_group(i, j, g.id, g.name) for j, g in enumerate(policy.permission_groups)]
        names.update(groups)
        policies.append(_policy(sorted(set(groups)), _resources(policy.resources, account_id, i)))
    if body.permissions:
        policies.append(_policy(sorted(set(body.permissions)), {f"{ACCOUNT_SCOPE}.{account_id}": "*"}))
    if not names:
        raise ValidationError("permissions: give at least one permission group", path=["body", "permissions"])
    return sorted(names), policies


def within_caller(principal: Principal, permissions: list[str], verb: str) -> None:
    """403 naming each permission group the caller would hand out (or act on) without holding it."""
    missing = [p for p in permissions if p not in principal.permissions]
    if missing:
        raise Forbidden(f"Authentication error: cannot {verb} a token with "
                        f"{', '.join(repr(m) for m in missing)}: the calling token does not hold it "
                        "(a token may only grant what its creator holds)")


def _stamp(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{field}: must be an RFC 3339 timestamp", path=["body", field]) from None
    if moment.tzinfo is None:
        raise ValidationError(f"{field}: must include a time zone (e.g. Z)", path=["body", field])
    try:
        return rfc3339(moment)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValidationError(f"{field}: out of range", path=["body", field]) from None


def window(body: TokenCreate, at: str, current_expiry: str | None = None) -> tuple[str | None, str | None]:
    """(not_before, expires_on), normalised; ``at`` is now. An unchanged expiry may stay in the past."""
    not_before, expires_on = _stamp(body.not_before, "not_before"), _stamp(body.expires_on, "expires_on")
    if expires_on is not None and expires_on <= at and expires_on != current_expiry:
        raise ValidationError("expires_on: must be in the future", path=["body", "expires_on"])
    if not_before is not None and expires_on is not None and not_before >= expires_on:
        raise ValidationError("not_before: must be before expires_on", path=["body", "not_before"])
    return not_before, expires_on


def _condition(body: TokenCreate) -> str | None:
    request_ip = body.condition.request_ip if body.condition is not None else None
    if request_ip is None or not (request_ip.allow or request_ip.not_in):
        return None
    rule = {"in": request_ip.allow or [], "not_in": request_ip.not_in or []}
    return orjson.dumps({"request_ip": rule}).decode()


def token_row(account_id: str, name: str, value: str, permissions: list[str], expires_on: str | None = None,
              **restrictions: str | None) -> dict:
    stamp = rfc3339(now())
    return {"id": new_id(), "account_id": account_id, "name": name, "value_hash": hash_value(value),
            "permissions": orjson.dumps(permissions).decode(), "status": "active", "expires_on": expires_on,
            "last_used_on": None, "issued_on": stamp, "modified_on": stamp, **restrictions}


async def create_token(request: Request) -> Response:
    data = await read_json(request)  # read before the transaction: a slow client holds nothing
    async with authorized(request) as (account_id, conn, principal):
        body = parse_model(TokenCreate, require_object(data))
        permissions, policies = granted(body, account_id)
        within_caller(principal, permissions, "create")
        not_before, expires_on = window(body, rfc3339(now()))
        value = new_token()
        row = await queries.insert_token(conn, token_row(
            account_id, body.name, value, permissions, expires_on, not_before=not_before,
            condition=_condition(body), policies=orjson.dumps(policies).decode()))
        await queries.record_change(conn, account_id, "token")
    await services(request).on_change(account_id)
    return envelope.ok({**token_wire(row), "value": value})


async def _own_token(conn: Any, account_id: str, request: Request, principal: Principal, verb: str) -> dict:
    row = await queries.get_token(conn, account_id, request.path_params["token_id"])
    if row is None:
        raise NotFound("token not found")
    within_caller(principal, orjson.loads(row["permissions"]), verb)
    return row


async def update_token(request: Request) -> Response:
    """PUT replaces name, policies, condition, not_before and expires_on; an omitted status is kept."""
    data = await read_json(request)
    async with authorized(request) as (account_id, conn, principal):
        body = parse_model(TokenUpdate, require_object(data))
        row = await _own_token(conn, account_id, request, principal, "change")
        permissions, policies = granted(body, account_id)
        within_caller(principal, permissions, "grant")
        not_before, expires_on = window(body, rfc3339(now()), row["expires_on"])
        values = {"name": body.name, "permissions": orjson.dumps(permissions).decode(),
                  "policies": orjson.dumps(policies).decode(), "condition": _condition(body),
                  "not_before": not_before, "expires_on": expires_on, "status": body.status or row["status"],
                  "modified_on": rfc3339(now())}
        await queries.update_token(conn, row["id"], values)
        await queries.record_change(conn, account_id, "token")
    await services(request).on_change(account_id)
    return envelope.ok(token_wire({**row, **values}))


async def roll_token(request: Request) -> Response:
    """A new value, returned once; the old one stops working (this process: before the response)."""
    data = await read_json(request, required=False)
    if data is not None:
        for key in require_object(data):
            raise ValidationError(f"{key[:64]}: unknown field; the roll takes no fields",
                                  path=["body", key[:64]])
    async with authorized(request) as (account_id, conn, principal):
        row = await _own_token(conn, account_id, request, principal, "roll")
        value = new_token()
        await queries.update_token(conn, row["id"], {"value_hash": hash_value(value),
                                                     "modified_on": rfc3339(now())})
        await queries.record_change(conn, account_id, "token")
    await services(request).on_change(account_id)
    return envelope.ok(value)


async def list_tokens(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        page, per_page = paging(request, max_per_page=50)
        rows, total = await queries.list_tokens(conn, account_id, page, per_page)
    return envelope.ok([token_wire(r) for r in rows],
                       result_info=envelope.page_info(page, per_page, len(rows), total))


async def get_token(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        row = await queries.get_token(conn, account_id, request.path_params["token_id"])
    if row is None:
        raise NotFound("token not found")
    return envelope.ok(token_wire(row))


async def delete_token(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, principal):
        row = await _own_token(conn, account_id, request, principal, "delete")
        await queries.delete_token(conn, row["id"])
        await queries.record_change(conn, account_id, "token")
    await services(request).on_change(account_id)
    return envelope.ok({"id": row["id"]})


async def permission_groups(request: Request) -> Response:
    """The groups a token here can hold; ``is_selectable`` says whether the caller may grant it."""
    async with authorized(request) as (_, _conn, principal):
        pass
    # The SDK documents these values as URL-encoded by the caller, so they may arrive encoded twice.
    name, scope = (unquote(v) if v is not None else None
                   for v in (request.query_params.get("name"), request.query_params.get("scope")))
    groups = [{"id": GROUP_IDS[g], "name": g, "is_selectable": g in principal.permissions,
               "scopes": [ACCOUNT_SCOPE]} for g in ALL_GROUPS
              if (name is None or name == g) and (scope is None or scope == ACCOUNT_SCOPE)]
    return envelope.ok(groups)


async def verify(request: Request) -> Response:
    """Valid for any usable token; on an account path the token must belong to that account."""
    async with services(request).db.begin() as conn:
        principal = await authenticate(request, conn)
    if principal.token is None:
        raise AuthenticationError("Authentication error: verify takes an API token, not a global API key")
    account_id = request.path_params.get("account_id")
    if account_id is not None:
        principal.authorize(account_id, tuple(principal.permissions) or ("-",))
    token = principal.token
    return envelope.ok({"id": token["id"], "status": token_status(token, rfc3339(now())),
                        "expires_on": token["expires_on"], "not_before": token.get("not_before")})


async def identity(request: Request) -> Response:
    """Sluice extension: who the caller is — accounts and permission groups — for any valid credentials
    (the console signs in with it: Cloudflare's verify names neither the account nor the permissions, and
    a read-only token may not read its own token)."""
    async with services(request).db.begin() as conn:
        principal = await authenticate(request, conn)
    token = principal.token
    return envelope.ok({
        "accounts": sorted(principal.accounts),
        "permissions": [group for group in ALL_GROUPS if group in principal.permissions],
        "credential": "api_token" if token is not None else "global_api_key",
        "token": None if token is None else {"id": token["id"], "name": token["name"],
                                             "expires_on": token["expires_on"]},
    })
