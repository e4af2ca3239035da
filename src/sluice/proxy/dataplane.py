"""Placeholder data plane (replaced by the real one): answers every request with 404 2001."""

from __future__ import annotations

from sluice.envelope import gateway_error_body
from sluice.services import Services


class DataPlane:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def refresh(self, account_id: str) -> None:
        return None

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        body = gateway_error_body(404, 2001, "gateway not found")
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
