"""Shared steps of every management handler: services, authentication, authorisation."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from sluice.control.auth import Principal, authenticate
from sluice.control.validation import account_id_param
from sluice.services import Services


def services(request: Request) -> Services:
    return request.app.state.services


@asynccontextmanager
async def authorized(request: Request, accepted: tuple[str, ...]) -> AsyncIterator[tuple[str, AsyncConnection, Principal]]:
    """Authenticate, check the account and permission, and hand out one transaction for the work."""
    svc = services(request)
    async with svc.db.begin() as conn:
        principal = await authenticate(request, conn)
        account_id = request.path_params.get("account_id", "")
        principal.authorize(account_id, accepted)
        account_id_param(request)
        yield account_id, conn, principal
