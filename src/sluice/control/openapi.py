"""GET /client/v4/openapi.json — the management API described as it behaves (see openapi_doc)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sluice import envelope
from sluice.control.endpoint import Handler


def openapi_handler(build: Callable[[], dict[str, Any]]) -> Handler:
    """A handler serving the document ``build`` returns, built on its first request and then kept."""
    document: dict[str, Any] | None = None

    async def openapi(request: Request) -> Response:
        nonlocal document
        if document is None:
            document = build()
        return envelope.JSONResponse(document)

    return openapi
