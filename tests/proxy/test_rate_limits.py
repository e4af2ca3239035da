"""Exact rate limits: per stored key, per gateway (fixed and sliding); refusals are never forwarded."""

from __future__ import annotations

import time

import httpx

from tests.proxy.helpers import add_config, gateway_url, set_gateway, upstream_requests

PERIOD = 60


def _away_from_window_edge(period: int = PERIOD) -> None:
    """Fixed windows are clock-aligned; start a burst well inside one so it cannot straddle two.
    (Not a timing assertion: it only avoids a 0.2% chance of a burst crossing the edge.)"""
    into = time.time() % period
    if into > period - 5:
        time.sleep(period - into + 0.1)


def _burst(url: str, count: int) -> list[httpx.Response]:
    with httpx.Client(timeout=30) as client:
        return [client.get(url) for _ in range(count)]


def test_key_rate_limit_is_exact(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai", alias="limited", rate_limit=3, rate_limit_period=PERIOD)
    _away_from_window_edge()
    responses = _burst(gateway_url(server, gateway) + "/models", 5)
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    for refused in responses[3:]:
        body = refused.json()
        assert body["internalCode"] == 2004 and body["name"] == "AiGatewayError" and body["httpCode"] == 429
        assert "limited" in body["error"][0]["message"]
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["cf-aig-log-id"]
    assert len(upstream_requests(upstream, "/openai/")) == 3


def test_gateway_rate_limit_fixed(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    set_gateway(api, gateway, rate_limiting_limit=3, rate_limiting_interval=PERIOD,
                rate_limiting_technique="fixed")
    _away_from_window_edge()
    responses = _burst(gateway_url(server, gateway) + "/models", 5)
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert all(r.json()["internalCode"] == 2003 for r in responses[3:])
    assert all(1 <= int(r.headers["retry-after"]) <= PERIOD for r in responses[3:])
    assert len(upstream_requests(upstream, "/openai/")) == 3


def test_gateway_rate_limit_sliding(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    set_gateway(api, gateway, rate_limiting_limit=3, rate_limiting_interval=PERIOD,
                rate_limiting_technique="sliding")
    responses = _burst(gateway_url(server, gateway) + "/models", 5)
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert all(r.json()["internalCode"] == 2003 for r in responses[3:])
    # sliding: the first request leaves the window a full period after it was made
    assert all(PERIOD - 5 <= int(r.headers["retry-after"]) <= PERIOD for r in responses[3:])
    assert len(upstream_requests(upstream, "/openai/")) == 3


def test_key_refusal_does_not_use_gateway_quota(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai", alias="one", rate_limit=1, rate_limit_period=PERIOD)
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
