"""Who is calling the management API, and may they do this on this account (docs/api.md#authentication)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from sluice.clock import now
from sluice.errors import AccountForbidden, AuthenticationError, Forbidden
from sluice.identity.credentials import hash_value
from sluice.identity.permissions import ALL_GROUPS
from sluice.identity.restrictions import restrictions
from sluice.store import queries


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller: an account-owned token, or a user via the legacy global API key."""

    accounts: frozenset[str]
    permissions: frozenset[str]
    token: dict | None = None  # the token row when authenticated by token

    def authorize(self, account_id: str, accepted: tuple[str, ...]) -> None:
        # The account check comes first and never says whether that account exists.
        if account_id not in self.accounts:
            raise AccountForbidden()
        if not self.permissions.intersection(accepted):
            wanted = " or ".join(repr(p) for p in accepted)
            raise Forbidden(f"Authentication error: this token lacks the permission {wanted}")


class LocationForbidden(AccountForbidden):
    """Cloudflare's answer to a token used from an address its ``condition.request_ip`` excludes."""


def check_token(token: dict, at: float, host: str | None) -> None:
    """401 unless the token is active inside its validity window; 403 / 9109 from a refused address."""
    rules = restrictions(token)
    if token["status"] != "active" or not rules.in_window(at):
        raise AuthenticationError()
    if not rules.permits_ip(host):
        raise LocationForbidden(f"Cannot use the access token from location: {host or 'unknown'}")


async def authenticate(request: Request, conn: AsyncConnection) -> Principal:
    headers = request.headers
    authorization = headers.get("authorization", "")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationError()
        token = await queries.token_by_hash(conn, hash_value(value.strip()))
        if token is None:
            raise AuthenticationError()
        check_token(token, now().timestamp(), request.client.host if request.client else None)
        return Principal(frozenset({token["account_id"]}), frozenset(orjson.loads(token["permissions"])),
                         token)
    email, key = headers.get("x-auth-email", ""), headers.get("x-auth-key", "")
    if email and key:
        account_ids = await queries.user_accounts(conn, email, hash_value(key))
        if account_ids is None:
            raise AuthenticationError()
        return Principal(frozenset(account_ids), frozenset(ALL_GROUPS))
    raise AuthenticationError()
