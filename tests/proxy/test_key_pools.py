"""Key pools (issue 17 part 3, docs/gateway.md "Key pools"), through a real server: a gateway with
``key_failover`` retries a request once with the next usable stored key when the provider refuses the
first, and keeps the refused key out (429: for its Retry-After; 401: until rotated). Pinning an alias
never fails over.

The mock provider refuses a key by a marker in it (fault ``key-status:<marker>=<code>[/<retry-after>]``),
so each test decides which of its keys the provider turns down, and reads back which keys arrived.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import openai
import pytest

from tests.control.assertions import assert_ok
from tests.proxy.helpers import add_config, create_token, gateway_url, new_key, set_gateway, upstream_requests
from tests.support.server import MockUpstream, Server

MESSAGES = [{"role": "user", "content": "hi"}]
BODY = {"model": "mock-model", "messages": MESSAGES}
REFUSED_TEXT = "mock key refused"  # in every refusal the mock sends


def _pool(api: httpx.Client, gateway: str, *markers: str, provider: str = "openai",
          **extra: Any) -> list[tuple[dict[str, Any], str]]:
    """Stored keys holding ``markers``, the first the default; returns (config, key) pairs."""
    made = []
    for n, marker in enumerate(markers):
        key = new_key(f"sk-{marker}")
        config = add_config(api, gateway, provider, alias="main" if n == 0 else f"k{n}", default=n == 0,
                            secret=key, **(extra if n else {}))
        made.append((config, key))
    return made


def _markers() -> tuple[str, str, str]:
    tag = secrets.token_hex(4)
    return f"a{tag}", f"b{tag}", f"c{tag}"


def _sent_keys(upstream: MockUpstream, provider: str = "openai") -> list[str]:
    """The key each upstream request to ``provider`` carried, in order."""
    return [r["headers"].get("authorization", r["headers"].get("x-api-key", ""))
            for r in upstream_requests(upstream, f"/{provider}/")]


def _config(api: httpx.Client, gateway: str, config: dict[str, Any]) -> dict[str, Any]:
    return assert_ok(api.get(f"/ai-gateway/gateways/{gateway}/provider_configs/{config['id']}"))


def _post(server: Server, gateway: str, fault: str | None = None, **headers: str) -> httpx.Response:
    sent = {**headers, **({"x-mock-fault": fault} if fault else {})}
    return httpx.post(f"{gateway_url(server, gateway)}/chat/completions", json=BODY, headers=sent, timeout=30)


def _metric(server: Server, name: str, **labels: str) -> float:
    total = 0.0
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _logs(api: httpx.Client, gateway: str, count: int) -> list[dict[str, Any]]:
    """The gateway's logs once ``count`` of them are stored (written by a background flush)."""
    deadline = time.monotonic() + 20
    while True:
        logs = assert_ok(api.get(f"/ai-gateway/gateways/{gateway}/logs", params={"per_page": 50}))
        if len(logs) >= count or time.monotonic() > deadline:
            return logs
        time.sleep(0.1)


def test_a_429_fails_over_to_the_next_key_which_answers_and_the_first_is_back_after_retry_after(
        server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream) -> None:
    a, b, _ = _markers()
    (first, key_a), (second, key_b) = _pool(api, gateway, a, b)
    set_gateway(api, gateway, key_failover=True)
    client = openai.OpenAI(base_url=gateway_url(server, gateway), api_key=create_token(api), max_retries=0,
                           default_headers={"x-mock-fault": f"key-status:{a}=429/5"})
    before = _metric(server, "sluice_key_failovers_total", gateway=gateway, reason="rate_limited")

    raw = client.chat.completions.with_raw_response.create(model="mock-model", messages=MESSAGES)
    refused_at = time.time()
    assert raw.http_response.status_code == 200 and raw.headers["cf-aig-byok-alias"] == second["alias"]
    assert raw.parse().choices[0].message.content  # the mock's answer, through the second key
    assert REFUSED_TEXT not in raw.http_response.text  # the first key's refusal never reaches the client
    assert _sent_keys(upstream) == [f"Bearer {key_a}", f"Bearer {key_b}"]

    state = _config(api, gateway, first)
    assert (state["key_state"], state["key_state_reason"]) == ("cooling", "rate_limited")
    assert state["key_state_until"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(refused_at + 3))
    assert _config(api, gateway, second)["key_state"] == "ok"
    assert _metric(server, "sluice_key_failovers_total", gateway=gateway, reason="rate_limited") == before + 1
    assert _metric(server, "sluice_stored_keys_out", provider="openai", state="cooling") >= 1

    upstream.clear()  # within the 5 s the first key is skipped: no failover needed
    again = client.chat.completions.with_raw_response.create(model="mock-model", messages=MESSAGES)
    assert again.headers["cf-aig-byok-alias"] == second["alias"]
    assert _sent_keys(upstream) == [f"Bearer {key_b}"]

    time.sleep(max(0.0, refused_at + 5.2 - time.time()))  # Retry-After: 5 has passed
    upstream.clear()
    assert _config(api, gateway, first)["key_state"] == "ok"
    back = _post(server, gateway, authorization=f"Bearer {create_token(api)}")
    assert back.status_code == 200 and back.headers["cf-aig-byok-alias"] == first["alias"]
    assert _sent_keys(upstream) == [f"Bearer {key_a}"]


def test_the_refused_attempt_has_its_own_log_and_counts_on_its_key(
        server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream) -> None:
    a, b, _ = _markers()
    (first, key_a), (second, _) = _pool(api, gateway, a, b)
    set_gateway(api, gateway, key_failover=True)
    response = _post(server, gateway, f"key-status:{a}=429/30")
    assert response.status_code == 200
    log_id = response.headers["cf-aig-log-id"]
    logs = _logs(api, gateway, 2)
    assert len(logs) == 2
    by_id = {log["id"]: log for log in logs}
    answered = by_id.pop(log_id)
    (refused,) = by_id.values()
    assert (answered["status_code"], answered["alias"], answered["success"]) == (200, second["alias"], True)
    assert (refused["status_code"], refused["alias"], refused["success"]) == (429, first["alias"], False)
    detail = assert_ok(api.get(f"/ai-gateway/gateways/{gateway}/logs/{refused['id']}"))
    assert detail["error"] == (f"stored key {first['alias']!r} refused (rate_limited, HTTP 429); "
                               f"retried with stored key {second['alias']!r} (log {log_id})")
    assert REFUSED_TEXT in detail["response_head"] and key_a not in str(detail)  # logged, key masked
    deadline = time.monotonic() + 20  # key activity is flushed in the background too
    while _config(api, gateway, first)["request_count"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    state = _config(api, gateway, first)
    assert (state["request_count"], state["error_count"]) == (1, 1)
    assert _config(api, gateway, second)["request_count"] == 1


def test_a_401_key_stays_out_until_it_is_rotated(server: Server, api: httpx.Client, gateway: str,
                                                 upstream: MockUpstream) -> None:
    a, b, _ = _markers()
    (first, _), (second, key_b) = _pool(api, gateway, a, b)
    set_gateway(api, gateway, key_failover=True)
    fault = f"key-status:{a}=401"
    assert _post(server, gateway, fault).headers["cf-aig-byok-alias"] == second["alias"]
    state = _config(api, gateway, first)
    assert (state["key_state"], state["key_state_reason"]) == ("failed", "auth")
    assert state["key_state_until"] is None
    upstream.clear()
    for _ in range(3):
        assert _post(server, gateway, fault).headers["cf-aig-byok-alias"] == second["alias"]
    assert _sent_keys(upstream) == [f"Bearer {key_b}"] * 3

    rotated = new_key(f"sk-new{a}")
    put = api.put(f"/ai-gateway/gateways/{gateway}/provider_configs/{first['id']}", json={"secret": rotated})
    assert put.status_code == 200, put.text
    assert _config(api, gateway, first)["key_state"] == "ok"
    upstream.clear()
    assert _post(server, gateway).headers["cf-aig-byok-alias"] == first["alias"]
    assert _sent_keys(upstream) == [f"Bearer {rotated}"]


def test_a_secret_changed_in_the_secrets_store_is_a_rotation(server: Server, api: httpx.Client, gateway: str,
                                                              upstream: MockUpstream) -> None:
    a, b, _ = _markers()
    (first, _), (second, _) = _pool(api, gateway, a, b)
    set_gateway(api, gateway, key_failover=True)
    assert _post(server, gateway, f"key-status:{a}=403").headers["cf-aig-byok-alias"] == second["alias"]
    assert _config(api, gateway, first)["key_state"] == "failed"
    store = assert_ok(api.get(f"/ai-gateway/gateways/{gateway}"))["store_id"]
    rotated = new_key("sk-rotated")
    secret = f"/secrets_store/stores/{store}/secrets/{first['secret_id']}"
    patched = api.patch(secret, json={"value": rotated})
    assert patched.status_code == 200, patched.text
    assert _config(api, gateway, first)["key_state"] == "ok"
    upstream.clear()
    assert _post(server, gateway, f"key-status:{a}=403").headers["cf-aig-byok-alias"] == first["alias"]
    assert _sent_keys(upstream) == [f"Bearer {rotated}"]


def test_a_pinned_alias_never_fails_over(server: Server, api: httpx.Client, gateway: str,
                                         upstream: MockUpstream) -> None:
    a, b, _ = _markers()
    (first, key_a), _second = _pool(api, gateway, a, b)
    set_gateway(api, gateway, key_failover=True)
    response = _post(server, gateway, f"key-status:{a}=429/30", **{"cf-aig-byok-alias": first["alias"]})
    assert response.status_code == 429 and response.headers["cf-aig-byok-alias"] == first["alias"]
    assert REFUSED_TEXT in response.text and key_a not in response.text  # relayed, the key masked
    assert _sent_keys(upstream) == [f"Bearer {key_a}"]
    assert _config(api, gateway, first)["key_state"] == "ok"  # a pinned request teaches the pool nothing


def test_without_the_setting_nothing_fails_over(server: Server, api: httpx.Client, gateway: str,
                                                upstream: MockUpstream) -> None:
    a, b, _ = _markers()
    (first, key_a), _second = _pool(api, gateway, a, b)
    response = _post(server, gateway, f"key-status:{a}=429/30")
    assert response.status_code == 429 and response.headers["cf-aig-byok-alias"] == first["alias"]
    assert _sent_keys(upstream) == [f"Bearer {key_a}"]
    assert _config(api, gateway, first)["key_state"] == "ok"


def test_when_every_key_is_refused_the_client_gets_the_last_answer_masked(
        server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream) -> None:
    a, b, _ = _markers()
    (_, key_a), (second, key_b) = _pool(api, gateway, a, b)
    set_gateway(api, gateway, key_failover=True)
    response = _post(server, gateway, f"key-status:{a}=429/30;{b}=401")
    assert response.status_code == 401 and response.headers["cf-aig-byok-alias"] == second["alias"]
    assert "invalid_api_key" in response.text and "rate_limit_exceeded" not in response.text
    assert key_a not in response.text and key_b not in response.text
    assert _sent_keys(upstream) == [f"Bearer {key_a}", f"Bearer {key_b}"]
    # both are out now: the next request goes with the key back first (the cooling one), once
    upstream.clear()
    response = _post(server, gateway, f"key-status:{a}=429/30;{b}=401")
    assert response.status_code == 429 and _sent_keys(upstream) == [f"Bearer {key_a}"]


def test_the_next_key_must_be_admitted_by_its_own_rate_limit(server: Server, api: httpx.Client, gateway: str,
                                                             upstream: MockUpstream) -> None:
    a, b, c = _markers()
    (_, key_a), (second, key_b), (third, key_c) = _pool(api, gateway, a, b, c, rate_limit=1,
                                                        rate_limit_period=3600)
    set_gateway(api, gateway, key_failover=True)
    assert _post(server, gateway, **{"cf-aig-byok-alias": second["alias"]}).status_code == 200  # uses b's one
    upstream.clear()
    response = _post(server, gateway, f"key-status:{a}=429/30")
    assert response.status_code == 200 and response.headers["cf-aig-byok-alias"] == third["alias"]
    assert _sent_keys(upstream) == [f"Bearer {key_a}", f"Bearer {key_c}"]
    assert key_b  # never sent a second time


def test_a_streamed_body_is_not_retried(server: Server, api: httpx.Client, gateway: str,
                                        upstream: MockUpstream) -> None:
    a, b, _ = _markers()
    (first, key_a), _second = _pool(api, gateway, a, b)
    set_gateway(api, gateway, key_failover=True)
    big = {**BODY, "padding": "x" * (3 * 1024 * 1024)}  # well over the 1 MiB buffer: streamed upstream
    response = httpx.post(f"{gateway_url(server, gateway)}/chat/completions", json=big, timeout=30,
                          headers={"x-mock-fault": f"key-status:{a}=429/30"})
    assert response.status_code == 429 and response.headers["cf-aig-byok-alias"] == first["alias"]
    assert _sent_keys(upstream) == [f"Bearer {key_a}"]
    assert _config(api, gateway, first)["key_state"] == "cooling"  # learnt all the same


@pytest.mark.parametrize("fault", ["402", "quota"])
def test_a_key_out_of_quota_cools_for_the_gateways_quota_cooldown(
        server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream, fault: str) -> None:
    a, b, _ = _markers()
    (first, _), (second, _) = _pool(api, gateway, a, b)
    set_gateway(api, gateway, key_failover=True, key_failover_quota_cooldown=7200)
    started = time.time()
    response = _post(server, gateway, f"key-status:{a}={fault}/5")
    assert response.status_code == 200 and response.headers["cf-aig-byok-alias"] == second["alias"]
    state = _config(api, gateway, first)
    assert (state["key_state"], state["key_state_reason"]) == ("cooling", "quota")
    until = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started + 7100))
    assert state["key_state_until"] > until  # the gateway's cool-down, not the Retry-After


def test_canary_no_stored_key_reaches_another_providers_upstream(
        server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream) -> None:
    a, b, c = _markers()
    d = _markers()[0]
    openai_keys = [key for _, key in _pool(api, gateway, a, b)]
    anthropic_keys = [key for _, key in _pool(api, gateway, c, d, provider="anthropic")]
    set_gateway(api, gateway, key_failover=True)
    fault = f"key-status:{a}=401;{c}=429/30"
    assert _post(server, gateway, fault).status_code == 200
    anthropic = httpx.post(f"{gateway_url(server, gateway, 'anthropic')}/v1/messages", timeout=30,
                           json={**BODY, "max_tokens": 5}, headers={"x-mock-fault": fault})
    assert anthropic.status_code == 200
    sent_openai = "\n".join(str(r) for r in upstream_requests(upstream, "/openai/"))
    sent_anthropic = "\n".join(str(r) for r in upstream_requests(upstream, "/anthropic/"))
    assert all(key in sent_openai for key in openai_keys)
    assert all(key in sent_anthropic for key in anthropic_keys)
    assert not any(key in sent_anthropic for key in openai_keys)
    assert not any(key in sent_openai for key in anthropic_keys)
    everything = "\n".join(str(r) for r in upstream_requests(upstream))
    assert everything.count(openai_keys[0]) == 1 and everything.count(anthropic_keys[0]) == 1
