"""Issue 15 item 10 on the data plane: a gateway token's condition.request_ip and not_before are
enforced on cf-aig-authorization (and a Sluice token as provider key); a rolled value stops at once."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from sluice.identity.restrictions import IpRule, parse_network
from sluice.proxy.state import TokenState
from tests.proxy.helpers import add_config, create_token, gateway_url, set_gateway, upstream_requests

MESSAGES = [{"role": "user", "content": "hi"}]
NO_KEY = {"Authorization": ""}


def chat(server, gateway: str, token: str) -> Any:  # type: ignore[no-untyped-def]
    headers = {**NO_KEY, "cf-aig-authorization": f"Bearer {token}"}
    with openai.OpenAI(base_url=gateway_url(server, gateway), api_key="unused", max_retries=0,
                       default_headers=headers) as client:
        return client.chat.completions.create(model="m", messages=MESSAGES)


def refused(server, gateway: str, token: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(openai.AuthenticationError) as caught:
        chat(server, gateway, token)
    assert caught.value.response.json()["internalCode"] == 2009


@pytest.fixture()
def guarded(server, api, gateway, upstream) -> str:  # type: ignore[no-untyped-def]
    add_config(api, gateway, "openai")
    set_gateway(api, gateway, authentication=True)
    return gateway


def test_request_ip_condition_on_the_data_plane(  # type: ignore[no-untyped-def]
        server, api, guarded, upstream):
    refused(server, guarded, create_token(api, condition={"request_ip": {"in": ["10.0.0.0/8"]}}))
    refused(server, guarded, create_token(api, condition={"request_ip": {"not_in": ["127.0.0.0/8"]}}))
    # a Sluice token in the provider's own auth header is held to the same rule
    outsider = create_token(api, condition={"request_ip": {"in": ["192.0.2.0/24"]}})
    response = httpx.post(gateway_url(server, guarded) + "/chat/completions",
                          json={"model": "m", "messages": MESSAGES},
                          headers={"Authorization": f"Bearer {outsider}"})
    assert response.status_code == 401 and response.json()["internalCode"] == 2009
    assert upstream_requests(upstream) == []
    assert chat(server, guarded, create_token(api, condition={"request_ip": {"in": ["127.0.0.1"]}})).choices
    assert len(upstream_requests(upstream)) == 1


def test_not_before_on_the_data_plane(server, api, guarded, upstream):  # type: ignore[no-untyped-def]
    refused(server, guarded, create_token(api, not_before="2030-01-01T00:00:00Z"))
    assert upstream_requests(upstream) == []
    assert chat(server, guarded, create_token(api, not_before="2020-01-01T00:00:00Z")).choices


def test_rolled_value_stops_at_once_on_the_data_plane(  # type: ignore[no-untyped-def]
        server, api, guarded, upstream):
    response = api.post("/tokens", json={"name": "roll-me", "permissions": ["AI Gateway Run"]})
    created = response.json()["result"]
    assert chat(server, guarded, created["value"]).choices
    new_value = api.put(f"/tokens/{created['id']}/value").json()["result"]
    refused(server, guarded, created["value"])
    assert chat(server, guarded, new_value).choices


# -- the hot-path check itself, with an injected clock and peer address ------------------------------

def state(**fields: Any) -> TokenState:
    return TokenState("t", "a" * 32, True, True, fields.pop("expires_at", None), **fields)


def test_window_with_an_injected_clock() -> None:
    token = state(not_before=1000.0, expires_at=2000.0)
    moments = (999.9, 1000.0, 1999.9, 2000.0)
    assert [token.usable("a" * 32, now) for now in moments] == [False, True, True, False]


def test_ip_rule_v4_v6_and_mapped_addresses() -> None:
    rule = IpRule(allow=(parse_network("10.0.0.0/8"), parse_network("2001:db8::/32")),
                  deny=(parse_network("10.1.0.0/16"),))
    token = state(ip=rule)
    allowed = {host: token.usable("a" * 32, 0.0, host) for host in (
        "10.2.3.4", "10.1.2.3", "2001:db8::1", "2001:db9::1", "::ffff:10.2.3.4", "127.0.0.1", None, "bogus")}
    assert allowed == {"10.2.3.4": True, "10.1.2.3": False, "2001:db8::1": True, "2001:db9::1": False,
                       "::ffff:10.2.3.4": True, "127.0.0.1": False, None: False, "bogus": False}
    deny_only = state(ip=IpRule(allow=(), deny=(parse_network("::1"),)))
    assert deny_only.usable("a" * 32, 0.0, "127.0.0.1") and not deny_only.usable("a" * 32, 0.0, "::1")
