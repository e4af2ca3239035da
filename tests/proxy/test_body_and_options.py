"""Request-body reading (buffered vs streamed, size limit) and per-request options, without a server."""

from __future__ import annotations

import asyncio

import pytest

from sluice.errors import GatewayError
from sluice.proxy.body import ClientGone, StreamedBody, read_body
from sluice.proxy.options import collect_log, request_timeout_s, retry_policy
from sluice.proxy.retry import NO_RETRY, RetryPolicy
from sluice.proxy.state import GatewayState


def receiver(*chunks: bytes, disconnect: bool = False):  # type: ignore[no-untyped-def]
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]
    if disconnect:
        messages[-1]["more_body"] = True
        messages.append({"type": "http.disconnect"})

    async def receive():  # type: ignore[no-untyped-def]
        return messages.pop(0)

    return receive


def read(receive, max_bytes=100, buffer_limit=10):  # type: ignore[no-untyped-def]
    done = []
    body = asyncio.run(read_body(receive, max_bytes, lambda: done.append(True), buffer_limit))
    return body, done


async def drain(body: StreamedBody) -> bytes:
    return b"".join([chunk async for chunk in body])


def test_small_bodies_are_buffered() -> None:
    assert read(receiver(b"hello")) == (b"hello", [True])
    assert read(receiver(b"he", b"ll", b"o")) == (b"hello", [True])
    assert read(receiver(b"")) == (b"", [True])


def test_large_bodies_are_streamed_and_counted() -> None:
    body, done = read(receiver(b"a" * 8, b"b" * 8, b"c" * 8))
    assert isinstance(body, StreamedBody) and done == []
    assert asyncio.run(drain(body)) == b"a" * 8 + b"b" * 8 + b"c" * 8
    assert done == [True] and body.size == 24 and body.head == b"a" * 8 + b"b" * 8


def test_over_the_limit_is_413_buffered_or_streamed() -> None:
    with pytest.raises(GatewayError) as caught:
        read(receiver(b"x" * 101))
    assert caught.value.internal_code == 2010 and caught.value.status == 413
    with pytest.raises(GatewayError):
        read(receiver(b"x" * 60, b"x" * 60), max_bytes=100, buffer_limit=1000)
    body, _ = read(receiver(b"x" * 20, b"x" * 50, b"x" * 50))
    with pytest.raises(GatewayError):
        asyncio.run(drain(body))
    assert isinstance(body.error, GatewayError) and body.error.internal_code == 2010


def test_disconnect_while_reading() -> None:
    with pytest.raises(ClientGone):
        read(receiver(b"x", disconnect=True))
    body, _ = read(receiver(b"x" * 20, disconnect=True))
    with pytest.raises(ClientGone):
        asyncio.run(drain(body))


GW = GatewayState("a", "g", False, True, 0, 0, "fixed", 2, 100, "linear", {})


def test_retry_policy_from_headers_and_gateway() -> None:
    assert retry_policy({}, GW) == RetryPolicy(2, 100, "linear")
    assert retry_policy({"cf-aig-max-attempts": "9", "cf-aig-retry-delay": "250",
                         "cf-aig-backoff": "exponential"},
                        GW) == RetryPolicy(5, 250, "exponential")
    assert retry_policy({"cf-aig-max-attempts": "x", "cf-aig-retry-delay": "-1", "cf-aig-backoff": "warp"},
                        GW) == RetryPolicy(2, 100, "linear")
    assert retry_policy({"cf-aig-max-attempts": "1"}, GW).attempts == 1
    plain = GatewayState("a", "g", False, True, 0, 0, "fixed", 1, 0, "constant", {})
    assert retry_policy({}, plain) is NO_RETRY


def test_backoff_delays() -> None:
    assert [RetryPolicy(5, 100, "constant").delay_s(n) for n in (1, 2, 3)] == [0.1, 0.1, 0.1]
    assert [RetryPolicy(5, 100, "linear").delay_s(n) for n in (1, 2, 3)] == [0.1, 0.2, 0.3]
    assert [RetryPolicy(5, 100, "exponential").delay_s(n) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]


def test_request_timeout_and_collect_log() -> None:
    assert request_timeout_s({"cf-aig-request-timeout": "1500"}) == 1.5
    assert request_timeout_s({"cf-aig-request-timeout": "0"}) is None
    assert request_timeout_s({"cf-aig-request-timeout": "soon"}) is None
    assert request_timeout_s({}) is None
    assert collect_log({}, GW) is True
    assert collect_log({"cf-aig-collect-log": "false"}, GW) is False
