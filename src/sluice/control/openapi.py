"""GET /client/v4/openapi.json — the management API described as it behaves (see openapi_doc)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sluice import envelope
from sluice.control.openapi_doc import build_document

_DOCUMENT: dict | None = None


async def openapi(request: Request) -> Response:
    global _DOCUMENT
    if _DOCUMENT is None:
        _DOCUMENT = build_document()
    return envelope.JSONResponse(_DOCUMENT)
