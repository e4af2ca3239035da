"""Protocol upgrades (WebSocket and any other ``Upgrade:``) are refused, never forwarded.

Why: an upgrade request that reached the provider path used to be forwarded as a plain GET with
the stored key attached. Sluice does not proxy WebSockets, so it answers every upgrade itself,
before a key is chosen: an HTTP request carrying ``Upgrade`` gets 400 / 2011 naming the header;
an ASGI ``websocket`` connection (an ASGI server with a WebSocket library hands those over) is
denied with the same AiGatewayError body when the server supports denial responses, else closed
before the handshake (the server answers 403).
"""

from __future__ import annotations

from typing import Any

from sluice.envelope import gateway_error_body
from sluice.errors import UpgradeRefused

UPGRADE_REFUSED = UpgradeRefused.internal_code
DENIAL_EXTENSION = "websocket.http.response"


def upgrade_refused(value: str) -> UpgradeRefused:
    return UpgradeRefused(f"header 'Upgrade: {value[:32]}' is not supported: Sluice does not proxy "
                          "WebSocket or other protocol upgrades; send a plain HTTP request")


async def refuse_websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Deny a WebSocket connection before its handshake; nothing is forwarded anywhere."""
    message = await receive()
    if message.get("type") != "websocket.connect":
        return  # the client already left
    error = upgrade_refused("websocket")
    if DENIAL_EXTENSION in (scope.get("extensions") or {}):
        body = gateway_error_body(error.status, error.internal_code, error.message)
        await send({"type": "websocket.http.response.start", "status": error.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": "WebSocket is not supported"})
