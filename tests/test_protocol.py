"""``sluice.protocol.HeadWithBody``: a response head goes out with the body's first write, or alone
at the end of the event loop's turn; and, on the wire, answers stay whole (interim 100 Continue
included). The limits of the same module are tested in test_slow_clients.py."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx

from sluice.protocol import HeadWithBody
from tests.support.server import Server


class Recorded:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


async def test_head_and_body_written_in_one_turn_go_out_in_one_write() -> None:
    transport = Recorded()
    cycle = HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    cycle.write(b"HEAD")
    assert transport.writes == []
    cycle.write(b"BODY")
    cycle.write(b"MORE")
    assert transport.writes == [b"HEADBODY", b"MORE"]
    await asyncio.sleep(0)  # the end-of-turn flush finds nothing held
    assert transport.writes == [b"HEADBODY", b"MORE"]


async def test_a_head_whose_body_is_not_ready_goes_alone_at_the_end_of_the_turn() -> None:
    transport = Recorded()
    cycle = HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    cycle.write(b"HEAD")
    await asyncio.sleep(0)
    assert transport.writes == [b"HEAD"]
    cycle.write(b"BODY")
    assert transport.writes == [b"HEAD", b"BODY"]


async def test_close_sends_the_held_head_first_and_a_closed_transport_gets_nothing() -> None:
    transport = Recorded()
    cycle = HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    cycle.write(b"HEAD")
    cycle.close()
    assert transport.writes == [b"HEAD"] and transport.closed and cycle.is_closing()

    gone = Recorded()
    cycle = HeadWithBody(gone, asyncio.get_running_loop())  # type: ignore[arg-type]
    cycle.write(b"HEAD")
    gone.closed = True  # the connection closed under it (the client left)
    await asyncio.sleep(0)
    assert gone.writes == []


def _exchange(sock: socket.socket, server: Server, body: bytes, expect_continue: bool) -> bytes:
    """One POST on an open connection; the reply up to the end of its body (100 Continue included)."""
    head = (f"POST /client/v4/accounts/{server.account_id}/ai-gateway/gateways HTTP/1.1\r\nhost: x\r\n"
            f"authorization: Bearer {server.token}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n").encode()
    sock.sendall(head + (b"expect: 100-continue\r\n\r\n" if expect_continue else b"\r\n" + body))
    reply = b""
    if expect_continue:
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
        assert reply.startswith(CONTINUE), reply
        sock.sendall(body)
    while not _complete(reply):
        chunk = sock.recv(65536)
        assert chunk, reply
        reply += chunk
    return reply


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _complete(reply: bytes) -> bool:
    head, found, rest = reply.removeprefix(CONTINUE).partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if found and line.lower().startswith(b"content-length:"):
            return len(rest) >= int(line.split(b":")[1])
    return False


def test_answers_on_a_keep_alive_connection_stay_whole_with_and_without_100_continue(server: Server) -> None:
    ids = [f"protocol-head-{n}" for n in range(4)]
    try:
        _four_answers(server, ids)
    finally:  # the server is shared: leave its account as it was
        for gateway_id in ids:
            httpx.delete(f"{server.api}/accounts/{server.account_id}/ai-gateway/gateways/{gateway_id}",
                         headers=server.headers(), timeout=10)


def _four_answers(server: Server, ids: list[str]) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for n, expect_continue in enumerate((False, True, False, True)):
            body = json.dumps({"id": ids[n]}).encode()
            reply = _exchange(sock, server, body, expect_continue)
            assert reply.startswith(CONTINUE) == expect_continue
            final = reply.removeprefix(CONTINUE)
            assert final.startswith(b"HTTP/1.1 200 "), final[:300]
            answer = json.loads(final.partition(b"\r\n\r\n")[2])
            assert answer["success"] is True and answer["result"]["id"] == ids[n]
