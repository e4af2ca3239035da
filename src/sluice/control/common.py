"""Shared steps of every management handler: services, authentication, authorisation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from sluice.control.auth import Principal, authenticate
from sluice.control.endpoint import routed_by
from sluice.control.validation import account_id_param, read_body
from sluice.errors import NotFound
from sluice.providers.custom import PREFIX, is_custom
from sluice.services import Services
from sluice.store import queries


async def require_gateway(conn: AsyncConnection, account_id: str, gateway_id: str) -> dict:
    """The gateway row, or 404 / 7002: the one check every gateway-scoped route makes."""
    row = await queries.get_gateway(conn, account_id, gateway_id)
    if row is None:
        raise NotFound(f"gateway {gateway_id[:64]!r} not found")
    return row


async def is_account_custom_provider(conn: AsyncConnection, account_id: str, slug: str) -> bool:
    """Whether ``slug`` is ``custom-{slug}`` of one of the account's custom providers."""
    return is_custom(slug) and \
        await queries.custom_provider_by_slug(conn, account_id, slug[len(PREFIX):]) is not None


def services(request: Request) -> Services:
    return request.app.state.services


@asynccontextmanager
async def authorized(request: Request) -> AsyncIterator[tuple[str, AsyncConnection, Principal]]:
    """Authenticate, check the account and the permission the route table gives this route (``accepts``),
    and hand out one transaction for the work.

    The body is read first: no transaction (on SQLite, the process's writer lock) waits on a client."""
    svc = services(request)
    await read_body(request, svc.settings.body_timeout_s)
    async with svc.db.begin() as conn:
        principal = await authenticate(request, conn)
        account_id = request.path_params.get("account_id", "")
        principal.authorize(account_id, routed_by(request).accepts)
        account_id_param(request)
        request.state.authorized = True
        refused = getattr(request.state, "refused_input", None)  # a body read before this (validation.py)
        if refused is not None:
            raise refused
        yield account_id, conn, principal
