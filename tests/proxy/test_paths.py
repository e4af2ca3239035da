"""Issue 15 item 7: dot segments and fragments never reach a provider with a stored key attached.

The requests are written on a raw socket: HTTP clients normalise ``..`` and drop ``#`` themselves.
"""

from __future__ import annotations

import socket

import orjson
import pytest

from sluice.proxy.paths import has_dot_segment
from tests.proxy.helpers import add_config, upstream_requests

ESCAPES = [
    "../../../../user/tokens",
    "run/../../../../user/tokens",
    "run/./x",
    "run/%2e%2e/%2E%2E/user/tokens",
    "run/.%2e/x",
    "run/%2E./x",
    "run/..%2f..%2fuser/tokens",
    "run/..%2F..%2Fuser",
    "run/..%5c..%5cuser",
    "run/..\\..\\user",
    "run/%252e%252e/user",
    "run/..",
    ".",
]


def raw_request(port: int, target: str) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), orjson.loads(body) if body.startswith(b"{") else {}


@pytest.mark.parametrize("provider", ["workers-ai", "openai"])
def test_dot_segments_are_refused_before_a_key_is_attached(server, api, gateway, upstream,
                                                           provider: str) -> None:
    add_config(api, gateway, provider)
    base = f"/v1/{server.account_id}/{gateway}/{provider}/"
    if provider == "workers-ai":
        base += "run/"  # past the path the catalog consumes, so only the dot segments are wrong
    for escape in ESCAPES:
        status, body = raw_request(server.port, base + escape)
        assert status == 400, (escape, body)
        assert body["name"] == "AiGatewayError" and body["internalCode"] == 2002
        assert "'..'" in body["error"][0]["message"]
    assert upstream_requests(upstream) == []


def test_a_fragment_is_refused(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    for target in ("models#x", "models#/../../user", "chat/completions#"):
        status, body = raw_request(server.port, f"/v1/{server.account_id}/{gateway}/openai/{target}")
        assert status == 400, (target, body)
        assert body["name"] == "AiGatewayError" and "'#'" in body["error"][0]["message"]
    assert upstream_requests(upstream) == []


def test_ordinary_paths_with_dots_still_pass(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    for target in ("models/gpt-4.1", "files/a..b", "v1.0/...", "x/%2Fy", "models/.hidden"):
        status, _ = raw_request(server.port, f"/v1/{server.account_id}/{gateway}/openai/{target}")
        assert status == 200, target
    assert len(upstream_requests(upstream)) == 5


@pytest.mark.parametrize("path,dotted", [
    ("chat/completions", False), ("models/gemini-1.5:generateContent", False), ("a/.../b", False),
    ("a/../b", True), ("a/%2e%2E/b", True), ("a/..%2fb", True), ("a/%252e%252e", True), ("./a", True),
    ("a/..\\b", True), ("a/%2e", True), ("a/.env", False), ("a%2f.%2fb", True),
])
def test_dot_segment_detection(path: str, dotted: bool) -> None:
    assert has_dot_segment(path) is dotted
