"""The response to a request the gateway itself refuses: the ``GatewayError``'s status and body (the
AiGatewayError shape unless the error carries its own), its headers and ``cf-aig-log-id``."""

from __future__ import annotations

from typing import Any

from sluice.envelope import gateway_error_body
from sluice.errors import GatewayError

JSON_TYPE = (b"content-type", b"application/json")


def messages(exc: GatewayError, log_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ASGI ``http.response.start`` and ``http.response.body`` messages answering ``exc``."""
    body = exc.body or gateway_error_body(exc.status, exc.internal_code, exc.message)
    headers = [JSON_TYPE, (b"content-length", str(len(body)).encode()), (b"cf-aig-log-id", log_id.encode())]
    headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items())
    return ({"type": "http.response.start", "status": exc.status, "headers": headers},
            {"type": "http.response.body", "body": body, "more_body": False})
