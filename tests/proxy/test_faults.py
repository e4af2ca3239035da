"""Upstream faults, client disconnects, oversize bodies and routing errors (docs/gateway.md#errors)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sluice.errors import NoProviderKey, UnknownAlias
from sluice.providers.registry import CATALOG_SLUGS
from tests.proxy.helpers import add_config, gateway_url, upstream_requests
from tests.support.server import MockUpstream, Server, free_port, upstream_env

MAX_BODY = 2 * 1024 * 1024  # above the 1 MiB buffering limit, so both body paths are exercised
MESSAGES = [{"role": "user", "content": "hi"}]


def _error(response: httpx.Response, status: int, code: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["internalCode"] == code and body["httpCode"] == status and body["success"] is False
    assert body["name"] == "AiGatewayError" and body["error"][0]["code"] == code
    assert response.headers["cf-aig-log-id"]


# -- routing errors ---------------------------------------------------------------------------------

def test_unknown_gateway_account_and_provider(server, gateway, upstream) -> None:
    _error(httpx.get(f"{server.url}/v1/{server.account_id}/no-such-gateway/openai/models"), 404, 2001)
    _error(httpx.get(f"{server.url}/v1/{'0' * 32}/{gateway}/openai/models"), 404, 2001)
    _error(httpx.get(f"{server.url}/v1/{server.account_id}"), 404, 2001)
    _error(httpx.get(f"{server.url}/v1/{server.account_id}/{gateway}/no-such-provider/x"), 400, 2002)
    assert upstream_requests(upstream) == []


def test_no_credentials_is_401_2005(server, gateway, upstream) -> None:
    response = httpx.post(gateway_url(server, gateway) + "/chat/completions", json={"model": "m"})
    _error(response, 401, 2005)
    assert "openai" in response.json()["error"][0]["message"]
    assert upstream_requests(upstream) == []


def _rejections(server: Server, gateway: str) -> dict[str, float]:
    """sluice_rejections_total of this gateway, by kind, as /metrics reports it."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == "sluice_rejections_total" and sample.labels["gateway"] == gateway:
                counts[sample.labels["kind"]] = sample.value
    return counts


def test_refusals_are_counted_by_the_reason_of_their_error(server, gateway, upstream) -> None:
    """The metrics kind of a refusal is its ``reason`` in the catalogue (errors.py)."""
    url = gateway_url(server, gateway) + "/chat/completions"
    _error(httpx.post(url, json={"model": "m"}), 401, 2005)
    _error(httpx.post(url, json={"model": "m"}, headers={"cf-aig-byok-alias": "nope"}), 400, 2006)
    expected = {NoProviderKey.reason: 1.0, UnknownAlias.reason: 1.0}
    deadline = time.monotonic() + 5  # the observer records just after the response is sent
    while _rejections(server, gateway) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rejections(server, gateway) == expected == {"auth": 1.0, "unknown_alias": 1.0}


# -- upstream faults --------------------------------------------------------------------------------

def test_upstream_that_never_answers_is_504(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    response = httpx.post(gateway_url(server, gateway) + "/chat/completions", json={"model": "m"}, timeout=30,
                          headers={"x-mock-fault": "hang", "cf-aig-request-timeout": "500"})
    _error(response, 504, 2007)


def test_upstream_errors_pass_through_and_5xx_are_retried(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    url = gateway_url(server, gateway) + "/chat/completions"
    response = httpx.post(url, json={"model": "m"}, headers={"x-mock-fault": "status:429"})
    # the provider's body
    assert response.status_code == 429 and response.json()["error"]["code"] == "mock_fault"
    assert len(upstream_requests(upstream)) == 1  # 4xx: never retried
    upstream.clear()
    response = httpx.post(url, json={"model": "m"},
                          headers={"x-mock-fault": "status:503", "cf-aig-max-attempts": "3",
                                                             "cf-aig-retry-delay": "10",
                                   "cf-aig-backoff": "linear"})
    assert response.status_code == 503 and response.json()["error"]["code"] == "mock_fault"
    assert len(upstream_requests(upstream)) == 3


def test_mid_stream_drop_ends_the_client_stream_with_an_error(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    with openai.OpenAI(base_url=gateway_url(server, gateway), api_key="sk-own", max_retries=0,
                       default_headers={"x-mock-fault": "drop"}) as client:
        received = []
        with pytest.raises((openai.APIError, httpx.HTTPError)):
            for chunk in client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
                received.append(chunk)
        assert received  # some events arrived before the drop
    assert httpx.get(gateway_url(server, gateway) + "/models").status_code == 200  # still serving


def _established_to(port: int) -> int:
    """Open TCP connections whose remote end is 127.0.0.1:<port> (the server's side of its upstream pool)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def test_client_disconnects_cancel_upstream_requests(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    url = gateway_url(server, gateway) + "/chat/completions"
    baseline = _established_to(upstream.port)
    clients = 100

    async def one(client: httpx.AsyncClient) -> bytes:
        async with client.stream("POST", url, json={"model": "m", "stream": True},
                                 headers={"x-mock-fault": "stream-slow:3000"}) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_raw():
                return chunk  # leave after the first event: the connection is closed under the server
        return b""

    async def burst() -> list[bytes]:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            return await asyncio.gather(*(one(client) for _ in range(clients)))

    firsts = asyncio.run(burst())
    assert all(first.startswith(b"data:") for first in firsts)
    assert len(upstream_requests(upstream)) == clients
    # Each upstream stream would run ~20 s if it were not cancelled; wait (bounded) for them to go.
    deadline = time.monotonic() + 10
    while _established_to(upstream.port) > baseline + 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _established_to(upstream.port) <= baseline + 5, (
        "upstream connections leaked after client disconnects")
    assert httpx.get(gateway_url(server, gateway) + "/models").status_code == 200


# -- a second server: unreachable upstream, small body limit ----------------------------------------

@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, mock_upstream: MockUpstream) -> Iterator[Server]:
    closed = free_port()  # nothing listens here
    env = upstream_env(mock_upstream.url, list(CATALOG_SLUGS))
    env.update(SLUICE_UPSTREAM_OPENAI=f"http://127.0.0.1:{closed}", SLUICE_MAX_BODY_BYTES=str(MAX_BODY))
    srv = Server(tmp_path_factory.mktemp("limited") / "data", env=env).start()
    yield srv
    srv.stop()


@pytest.fixture()
def limited_gateway(limited: Server) -> str:
    base_url = f"{limited.api}/accounts/{limited.account_id}"
    with httpx.Client(base_url=base_url, headers=limited.headers()) as api:
        made = api.post("/ai-gateway/gateways", json={"id": "lim", "authentication": False})
        assert made.status_code in (200, 409)
        for slug in ("openai", "anthropic"):
            api.post("/ai-gateway/gateways/lim/provider_configs",
                     json={"provider_slug": slug, "alias": "default", "default_config": True,
                           "secret": "sk-x"})
    return "lim"


def test_refused_connection_is_502(limited: Server, limited_gateway: str) -> None:
    response = httpx.get(gateway_url(limited, limited_gateway) + "/models")
    _error(response, 502, 2008)
    retried = httpx.get(gateway_url(limited, limited_gateway) + "/models",
                        headers={"cf-aig-max-attempts": "2"})
    _error(retried, 502, 2008)


def test_body_over_the_limit_is_413(limited: Server, limited_gateway: str, upstream: MockUpstream) -> None:
    url = gateway_url(limited, limited_gateway, "anthropic") + "/v1/messages"
    _error(httpx.post(url, content=b"x" * (MAX_BODY + 1)), 413, 2010)  # refused on content-length

    def chunks(total: int) -> Iterator[bytes]:
        for _ in range(total // 65536):
            yield b"y" * 65536

    _error(httpx.post(url, content=chunks(MAX_BODY + 65536 * 4)), 413, 2010)  # no content-length: counted
    forwarded = upstream_requests(upstream)
    assert forwarded == [] or all(len(r["body"]) <= MAX_BODY for r in forwarded)


def test_large_body_under_the_limit_is_streamed_through(limited: Server, limited_gateway: str,
                                                        upstream: MockUpstream) -> None:
    url = gateway_url(limited, limited_gateway, "anthropic") + "/v1/upload"
    body = bytes(range(256)) * 6000  # ~1.5 MB: beyond the buffering limit, under the body limit
    response = httpx.post(url, content=body)
    assert response.status_code == 200, response.text
    (seen,) = upstream_requests(upstream)
    assert seen["body"].encode("latin-1") == body
    assert seen["headers"]["x-api-key"] == "sk-x"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 100_000):
            yield body[start:start + 100_000]

    upstream.clear()
    assert httpx.post(url, content=chunks()).status_code == 200  # chunked upload, no content-length
    (seen,) = upstream_requests(upstream)
    assert seen["body"].encode("latin-1") == body


def test_upstream_dropping_before_answering_is_502(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    # leaves a pooled connection
    assert httpx.get(gateway_url(server, gateway) + "/models").status_code == 200
    upstream.clear()
    response = httpx.post(gateway_url(server, gateway) + "/chat/completions", json={"model": "m"},
                          headers={"x-mock-fault": "drop"})
    _error(response, 502, 2008)
    # the pooled connection closed without an answer may have been stale: sent once more on a new
    # connection; that one dropped too, and with no retry policy set the gateway gives up
    assert len(upstream_requests(upstream)) == 2
    assert httpx.get(gateway_url(server, gateway) + "/models").status_code == 200
