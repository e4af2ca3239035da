"""Protocol upgrades are refused before a key is chosen: nothing reaches the provider (issue 17).

An upgrade request used to be forwarded upstream as a plain GET with the stored key attached. The
HTTP case is driven over a raw socket, exactly as a WebSocket client sends it; the ASGI ``websocket``
case (only produced by an ASGI server with a WebSocket library) is driven against the app itself.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from sluice.app import SluiceApp
from sluice.proxy.upgrade import UPGRADE_REFUSED
from sluice.settings import load_settings
from tests.proxy.helpers import add_config, new_key, upstream_requests
from tests.support.server import MockUpstream, Server


def _raw_request(server: Server, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    url = urlsplit(server.url)
    lines = [f"GET {path} HTTP/1.1", f"Host: {url.hostname}:{url.port}",
             *(f"{name}: {value}" for name, value in headers.items()), "", ""]
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parsed = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
        length = int(parsed.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(status_line.split()[1]), parsed, body


WEBSOCKET_HEADERS = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "OpenAI-Beta": "realtime=v1"}


@pytest.mark.parametrize("upgrade", ["websocket", "h2c"])
def test_upgrade_request_is_refused_and_nothing_reaches_the_provider(
        server: Server, api: Any, gateway: str, upstream: MockUpstream, upgrade: str) -> None:
    stored = new_key("sk-upgrade-canary")
    add_config(api, gateway, "openai", secret=stored)
    path = f"/v1/{server.account_id}/{gateway}/openai/realtime?model=gpt-4o-realtime-preview"
    status, headers, body = _raw_request(server, path, {**WEBSOCKET_HEADERS, "Upgrade": upgrade})

    assert status == 400
    error = orjson.loads(body)
    assert error["name"] == "AiGatewayError" and error["internalCode"] == UPGRADE_REFUSED
    assert f"Upgrade: {upgrade}" in error["error"][0]["message"]
    assert "cf-aig-log-id" in headers
    assert upstream_requests(upstream) == [], "an upgrade request reached the provider"
    assert stored not in body.decode() and stored not in server.output()


def test_plain_request_still_forwarded(server: Server, api: Any, gateway: str,
                                       upstream: MockUpstream) -> None:
    """The control case: the same request without ``Upgrade`` reaches the provider with the key."""
    stored = new_key("sk-upgrade-control")
    add_config(api, gateway, "openai", secret=stored)
    plain = {k: v for k, v in WEBSOCKET_HEADERS.items() if k not in ("Connection", "Upgrade")}
    status, _, _ = _raw_request(server, f"/v1/{server.account_id}/{gateway}/openai/models", plain)
    assert status == 200
    (seen,) = upstream_requests(upstream)
    assert seen["headers"].get("authorization") == f"Bearer {stored}"


def _drive_websocket(extensions: dict[str, Any]) -> list[dict[str, Any]]:
    app = SluiceApp(load_settings({}))  # never started: a refusal needs no services
    scope = {"type": "websocket", "path": "/v1/a/g/openai/realtime", "raw_path": b"/v1/a/g/openai/realtime",
             "headers": [(b"upgrade", b"websocket")], "query_string": b"", "extensions": extensions}
    inbox = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_websocket_scope_is_denied_with_an_aigatewayerror() -> None:
    start, body = _drive_websocket({"websocket.http.response": {}})
    assert start["type"] == "websocket.http.response.start" and start["status"] == 400
    error = orjson.loads(body["body"])
    assert error["internalCode"] == UPGRADE_REFUSED and "Upgrade: websocket" in error["error"][0]["message"]


def test_websocket_scope_is_closed_before_the_handshake_without_the_denial_extension() -> None:
    (close,) = _drive_websocket({})
    assert close["type"] == "websocket.close"  # before websocket.accept: the server answers 403
