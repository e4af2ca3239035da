"""Exact rate limits (docs/gateway.md, Rate limits): per stored key, per gateway (fixed and sliding);
refusals are never forwarded."""

from __future__ import annotations

import re
import time

import httpx

from tests.proxy.helpers import add_config, gateway_url, set_gateway, upstream_requests

PERIOD = 86_400  # sliding windows have no edges: a day is long enough for any test to run inside it
ROOM_S = 600  # a fixed window these tests use has at least this long left when they start
REJECTIONS = re.compile(r'sluice_rejections_total\{gateway="([^"]+)",kind="([^"]+)",provider="[^"]+"\} (\S+)')


def _fixed_period() -> int:
    """A period (about 30 days) whose clock-aligned fixed window has ``ROOM_S`` left now, so a burst
    cannot straddle a window edge. Chosen from the clock, never waited for; the window arithmetic
    itself, edges included, is tested with an injected clock in test_limits.py."""
    now = time.time()
    return next(p for p in range(2_592_000, 2_590_000, -1) if p - now % p > ROOM_S)


def _burst(url: str, count: int) -> list[httpx.Response]:
    with httpx.Client(timeout=30) as client:
        return [client.get(url) for _ in range(count)]


def _rejections(server, gateway: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The gateway's ``sluice_rejections_total`` by kind, from ``GET /metrics``."""
    found = {}
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        match = REJECTIONS.match(line)
        if match and match[1] == gateway:
            found[match[2]] = float(match[3])
    return found


def test_key_rate_limit_is_exact(server, api, gateway, upstream) -> None:
    period = _fixed_period()
    add_config(api, gateway, "openai", alias="limited", rate_limit=3, rate_limit_period=period)
    responses = _burst(gateway_url(server, gateway) + "/models", 5)
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    for refused in responses[3:]:
        body = refused.json()
        assert body["internalCode"] == 2004 and body["name"] == "AiGatewayError" and body["httpCode"] == 429
        assert "limited" in body["error"][0]["message"]
        assert ROOM_S < int(refused.headers["retry-after"]) <= period
        assert refused.headers["cf-aig-log-id"]
    assert len(upstream_requests(upstream, "/openai/")) == 3
    assert _rejections(server, gateway) == {"key_rate_limit": 2.0}


def test_gateway_rate_limit_fixed(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    period = _fixed_period()
    set_gateway(api, gateway, rate_limiting_limit=3, rate_limiting_interval=period,
                rate_limiting_technique="fixed")
    responses = _burst(gateway_url(server, gateway) + "/models", 5)
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert all(r.json()["internalCode"] == 2003 for r in responses[3:])
    assert all(ROOM_S < int(r.headers["retry-after"]) <= period for r in responses[3:])
    assert len(upstream_requests(upstream, "/openai/")) == 3


def test_gateway_rate_limit_sliding(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    set_gateway(api, gateway, rate_limiting_limit=3, rate_limiting_interval=PERIOD,
                rate_limiting_technique="sliding")
    responses = _burst(gateway_url(server, gateway) + "/models", 5)
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert all(r.json()["internalCode"] == 2003 for r in responses[3:])
    # sliding: the first request leaves the window a full period after it was made
    assert all(PERIOD - ROOM_S < int(r.headers["retry-after"]) <= PERIOD for r in responses[3:])
    assert len(upstream_requests(upstream, "/openai/")) == 3
    assert _rejections(server, gateway) == {"gateway_rate_limit": 2.0}


def test_key_refusal_does_not_use_gateway_quota(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai", alias="one", rate_limit=1, rate_limit_period=_fixed_period())
    add_config(api, gateway, "openai", alias="two", default=False)
    set_gateway(api, gateway, rate_limiting_limit=3, rate_limiting_interval=PERIOD,
                rate_limiting_technique="sliding")
    url = gateway_url(server, gateway) + "/models"
    codes = [httpx.get(url).status_code for _ in range(3)]  # key "one": 200, 429, 429
    assert codes == [200, 429, 429]
    two = [httpx.get(url, headers={"cf-aig-byok-alias": "two"}).status_code for _ in range(3)]
    assert two == [200, 200, 429]  # the gateway's 3 = one + two + two; key refusals were taken back
    assert len(upstream_requests(upstream, "/openai/")) == 3


def test_unlimited_by_default(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    assert {r.status_code for r in _burst(gateway_url(server, gateway) + "/models", 10)} == {200}
