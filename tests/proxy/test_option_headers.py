"""A documented ``cf-aig-*`` option whose value cannot be honoured is refused with a 400 naming the
header, before a key is chosen — never ignored (``proxy/options.py``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sluice.errors import UnforwardableRequest
from sluice.proxy.options import check
from tests.proxy.helpers import add_config, new_key, upstream_requests
from tests.support.server import MockUpstream, Server

REFUSED = [
    ("cf-aig-request-timeout", "5s"), ("cf-aig-request-timeout", "-1"), ("cf-aig-request-timeout", "900001"),
    ("cf-aig-max-attempts", "0"), ("cf-aig-max-attempts", "6"), ("cf-aig-max-attempts", "two"),
    ("cf-aig-retry-delay", "60001"), ("cf-aig-retry-delay", "1.5"), ("cf-aig-backoff", "warp"),
    ("cf-aig-cache-ttl", "forever"), ("cf-cache-ttl", "-5"), ("cf-aig-skip-cache", "yes please"),
    ("cf-skip-cache", "maybe"), ("cf-aig-collect-log", "nope"), ("cf-aig-collect-log-payload", "2"),
]
ACCEPTED = [
    ("cf-aig-request-timeout", "0"), ("cf-aig-request-timeout", " 1500 "), ("cf-aig-max-attempts", "5"),
    ("cf-aig-retry-delay", "0"), ("cf-aig-backoff", "Exponential"), ("cf-aig-cache-ttl", "0"),
    ("cf-aig-skip-cache", "TRUE"), ("cf-aig-collect-log", "false"), ("cf-aig-collect-log-payload", "1"),
]


@pytest.mark.parametrize(("name", "value"), REFUSED)
def test_a_value_that_cannot_be_honoured_is_refused_naming_the_header(name: str, value: str) -> None:
    with pytest.raises(UnforwardableRequest) as refused:
        check({name: value})
    assert refused.value.message.startswith(f"{name}: must be")
    assert value.strip() not in refused.value.message.removeprefix(f"{name}: ")  # never quoted back


@pytest.mark.parametrize(("name", "value"), ACCEPTED)
def test_good_values_pass(name: str, value: str) -> None:
    check({name: value})


def test_over_http_nothing_is_forwarded(server: Server, api: Any, gateway: str,
                                        upstream: MockUpstream) -> None:
    stored = new_key("sk-option-canary")
    add_config(api, gateway, "openai", secret=stored)
    url = f"{server.url}/v1/{server.account_id}/{gateway}/openai/chat/completions"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    refused = httpx.post(url, json=body, headers={"cf-aig-request-timeout": "5s"}, timeout=10)
    assert refused.status_code == 400, refused.text
    error = refused.json()
    assert error["internalCode"] == 2002 and "cf-aig-request-timeout" in error["error"][0]["message"]
    assert upstream_requests(upstream) == []
    honoured = httpx.post(url, json=body, headers={"cf-aig-request-timeout": "5000"}, timeout=10)
    assert honoured.status_code == 200
