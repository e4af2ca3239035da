"""Dynamic routes served on /compat (``model: "dynamic/{name}"``), on a real server against the mock
upstream: splits, conditions on metadata, fallbacks on an error and a hang, budgets, rate limits
without fallback, deploy and roll back, the route headers and the request logs."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import openai
import orjson
import pytest

from sluice.testing.mock_upstream import CHAT_TEXT
from tests.proxy.helpers import add_config, create_token, new_key, set_gateway, upstream_requests
from tests.proxy.test_custom_providers import make_provider
from tests.routing.graphs import conditional, end, limit, model, single_model, split, start
from tests.support.server import MockUpstream, Server

CHAT = {"messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture()
def keys(api: httpx.Client, gateway: str) -> None:
    for provider in ("openai", "anthropic", "groq"):
        add_config(api, gateway, provider)


def create_route(api: httpx.Client, gateway: str, name: str,
                 elements: list[dict[str, Any]]) -> dict[str, Any]:
    response = api.post(f"/ai-gateway/gateways/{gateway}/routes", json={"name": name, "elements": elements})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def compat_url(server: Server, gateway: str) -> str:
    return f"{server.url}/v1/{server.account_id}/{gateway}/compat/chat/completions"


def ask(client: httpx.Client, server: Server, gateway: str, route: str, **headers: str) -> httpx.Response:
    return client.post(compat_url(server, gateway), json={**CHAT, "model": f"dynamic/{route}"},
                       headers=headers)


def log_of(api: httpx.Client, gateway: str, log_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        response = api.get(f"/ai-gateway/gateways/{gateway}/logs/{log_id}")
        if response.status_code == 200 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return response.json()["result"]
        time.sleep(0.05)


def test_the_openai_sdk_calls_a_route_and_the_headers_and_log_say_what_it_did(
        server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream, keys: None) -> None:
    route = create_route(api, gateway, "support", single_model("anthropic", "claude-x"))
    client = openai.OpenAI(base_url=f"{server.url}/v1/{server.account_id}/{gateway}/compat",
                           api_key="unused", max_retries=0,
                           default_headers={"authorization": ""})  # the stored key is used
    raw = client.chat.completions.with_raw_response.create(model="dynamic/support", **CHAT)  # type: ignore[call-overload]
    completion = raw.parse()
    assert completion.choices[0].message.content == CHAT_TEXT
    headers = raw.headers
    assert headers["cf-aig-model"] == "claude-x" and headers["cf-aig-provider"] == "anthropic"
    assert headers["cf-aig-dynamic-route"] == "support"
    assert headers["cf-aig-dynamic-route-version"] == route["version"]["version_id"]
    assert headers["cf-aig-dynamic-route-path"] == "start,m"
    sent = upstream_requests(upstream)
    assert [r["path"] for r in sent] == ["/anthropic/v1/messages"]
    assert orjson.loads(sent[0]["body"])["model"] == "claude-x"
    logged = log_of(api, gateway, headers["cf-aig-log-id"])
    assert (logged["provider"], logged["model"], logged["route"], logged["route_version"],
            logged["route_path"]) == ("anthropic", "claude-x", "support", route["version"]["version_id"],
                                      "start,m")


def test_a_split_80_20_over_1000_requests(server: Server, api: httpx.Client, gateway: str,
                                          upstream: MockUpstream, keys: None) -> None:
    create_route(api, gateway, "ab", [start("s"), split("s", p80="a", p20="b"),
                                      model("a", "openai", "model-a"), model("b", "groq", "model-b"), end()])
    used: Counter[str] = Counter()
    with httpx.Client(timeout=30) as client:
        for _ in range(1000):
            response = ask(client, server, gateway, "ab")
            assert response.status_code == 200, response.text
            used[response.headers["cf-aig-model"]] += 1
    assert 750 <= used["model-a"] <= 850 and used["model-a"] + used["model-b"] == 1000, used
    # the same event id takes the same branch every time
    with httpx.Client(timeout=30) as client:
        taken = {ask(client, server, gateway, "ab", **{"cf-aig-event-id": "sticky-1"}).headers["cf-aig-model"]
                 for _ in range(10)}
    assert len(taken) == 1


def test_a_condition_on_metadata_routes_two_tiers_to_two_models(server: Server, api: httpx.Client,
                                                                gateway: str, keys: None) -> None:
    create_route(api, gateway, "tiers", [
        start("c"), conditional("c", {"metadata.plan": {"$eq": "paid"}}, "big", "small"),
        model("big", "anthropic", "claude-big"), model("small", "openai", "gpt-small"), end()])
    with httpx.Client(timeout=30) as client:
        paid = ask(client, server, gateway, "tiers", **{"cf-aig-metadata": '{"plan": "paid"}'})
        free = ask(client, server, gateway, "tiers", **{"cf-aig-metadata": '{"plan": "free"}'})
        none = ask(client, server, gateway, "tiers")
    assert (paid.status_code, free.status_code, none.status_code) == (200, 200, 200)
    assert paid.headers["cf-aig-model"] == "claude-big"
    assert paid.headers["cf-aig-dynamic-route-path"] == "start,c,big"
    assert free.headers["cf-aig-model"] == "gpt-small" and none.headers["cf-aig-model"] == "gpt-small"


@pytest.mark.parametrize("fault", ["status:500", "hang"])
def test_a_failing_model_takes_its_fallback(server: Server, api: httpx.Client, gateway: str,
                                           upstream: MockUpstream, keys: None, fault: str) -> None:
    create_route(api, gateway, "safe", [
        start("m1"), model("m1", "openai", f"mock-fault={fault}", fallback="m2", timeout=300),
        model("m2", "anthropic", "claude-backup"), end()])
    with httpx.Client(timeout=30) as client:
        response = ask(client, server, gateway, "safe")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == CHAT_TEXT
    assert response.headers["cf-aig-model"] == "claude-backup"
    assert response.headers["cf-aig-dynamic-route-path"] == "start,m1,m2"
    assert [r["path"] for r in upstream_requests(upstream)] == ["/openai/chat/completions",
                                                                "/anthropic/v1/messages"]
    failed = [log for log in api.get(f"/ai-gateway/gateways/{gateway}/logs").json()["result"]
              if log["success"] is False]
    deadline = time.monotonic() + 20
    while not failed and time.monotonic() < deadline:
        time.sleep(0.05)
        failed = [log for log in api.get(f"/ai-gateway/gateways/{gateway}/logs").json()["result"]
                  if log["success"] is False]
    assert failed and failed[0]["route"] == "safe" and failed[0]["route_path"] == "start,m1"
    assert failed[0]["status_code"] == (500 if fault == "status:500" else 504)


def test_a_model_failing_without_fallback_answers_its_error_with_the_route_headers(
        server: Server, api: httpx.Client, gateway: str, keys: None) -> None:
    create_route(api, gateway, "fragile", single_model("openai", "mock-fault=status:503"))
    with httpx.Client(timeout=30) as client:
        response = ask(client, server, gateway, "fragile")
    assert response.status_code == 503
    assert response.headers["cf-aig-dynamic-route"] == "fragile"
    assert response.headers["cf-aig-model"] == "mock-fault=status:503"


@pytest.mark.parametrize("technique", ["fixed", "sliding"])
def test_a_budget_switches_to_the_fallback_once_logged_cost_passes_the_limit(
        server: Server, api: httpx.Client, gateway: str, keys: None, technique: str) -> None:
    create_route(api, gateway, "budget", [
        start("b"), limit("b", kind="cost", key="metadata.team", limit_value=2, window=86_400,
                          success="main", fallback="cheap", technique=technique),
        model("main", "openai", "gpt-main"), model("cheap", "groq", "cheap-model"), end()])
    headers = {"cf-aig-metadata": '{"team": "a"}', "cf-aig-custom-cost": '{"total_cost": 1}'}
    used = []
    with httpx.Client(timeout=30) as client:
        for _ in range(4):
            response = ask(client, server, gateway, "budget", **headers)
            assert response.status_code == 200, response.text
            used.append(response.headers["cf-aig-model"])
            log_of(api, gateway, response.headers["cf-aig-log-id"])  # its cost is counted by now
        other_team = ask(client, server, gateway, "budget", **{**headers, "cf-aig-metadata": '{"team": "b"}'})
    assert used == ["gpt-main", "gpt-main", "cheap-model", "cheap-model"]  # 2 spent of 2: over
    assert other_team.headers["cf-aig-model"] == "gpt-main"  # budgets are per key value


def test_a_rate_limit_without_fallback_answers_429(server: Server, api: httpx.Client, gateway: str,
                                                   upstream: MockUpstream, keys: None) -> None:
    create_route(api, gateway, "limited", [
        start("l"), limit("l", key="metadata.user", limit_value=2, window=86_400, success="m"), model("m"),
        end()])
    with httpx.Client(timeout=30) as client:
        answers = [ask(client, server, gateway, "limited", **{"cf-aig-metadata": '{"user": "u1"}'})
                   for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.json()["internalCode"] == 2014 and "'l'" in refused.json()["error"][0]["message"]
    assert refused.headers["cf-aig-dynamic-route-path"] == "start,l"
    assert len(upstream_requests(upstream)) == 2  # nothing was forwarded for the refused one
    logged = log_of(api, gateway, refused.headers["cf-aig-log-id"])
    assert (logged["status_code"], logged["provider"], logged["route"], logged["route_path"]) == \
        (429, "compat", "limited", "start,l")


def test_deploy_v2_changes_the_next_request_and_v1_restores(server: Server, api: httpx.Client, gateway: str,
                                                            keys: None) -> None:
    route = create_route(api, gateway, "live", single_model("openai", "model-v1"))
    v1 = route["version"]["version_id"]
    base = f"/ai-gateway/gateways/{gateway}/routes/{route['id']}"
    made = api.post(f"{base}/versions",
                    json={"elements": single_model("openai", "model-v2")}).json()["result"]
    with httpx.Client(timeout=30) as client:
        assert ask(client, server, gateway, "live").headers["cf-aig-model"] == "model-v1"  # not deployed yet
        assert api.post(f"{base}/deployments", json={"version_id": made["version_id"]}).status_code == 200
        after = ask(client, server, gateway, "live")
        assert after.headers["cf-aig-model"] == "model-v2"
        assert after.headers["cf-aig-dynamic-route-version"] == made["version_id"]
        assert api.post(f"{base}/deployments", json={"version_id": v1}).status_code == 200
        assert ask(client, server, gateway, "live").headers["cf-aig-model"] == "model-v1"
        assert api.patch(base, json={"name": "renamed"}).status_code == 200
        assert ask(client, server, gateway, "renamed").status_code == 200
        gone = ask(client, server, gateway, "live")
        assert gone.status_code == 400 and gone.json()["internalCode"] == 2013
        assert api.delete(base).status_code == 200
        assert ask(client, server, gateway, "renamed").status_code == 400


def test_gateway_authentication_is_checked_before_the_route(server: Server, api: httpx.Client, gateway: str,
                                                            upstream: MockUpstream, keys: None) -> None:
    create_route(api, gateway, "private", [start("l"), limit("l", limit_value=1, success="m"), model("m"),
                                           end()])
    set_gateway(api, gateway, authentication=True)
    with httpx.Client(timeout=30) as client:
        for _ in range(3):  # refused before the route: its limit is not used up
            assert ask(client, server, gateway, "private").status_code == 401
            assert ask(client, server, gateway, "nope").status_code == 401  # route names do not leak
        token = create_token(api)
        ok = ask(client, server, gateway, "private", authorization=f"Bearer {token}")
    assert ok.status_code == 200, ok.text
    assert upstream_requests(upstream)[0]["headers"]["authorization"].startswith("Bearer sk-")  # stored key


def test_a_stream_through_a_route_after_a_fallback(server: Server, api: httpx.Client, gateway: str,
                                                   keys: None) -> None:
    create_route(api, gateway, "streamy", [start("m1"), model("m1", "openai", "mock-fault=status:500",
                                                              fallback="m2"),
                                           model("m2", "anthropic", "claude-x"), end()])
    client = openai.OpenAI(base_url=f"{server.url}/v1/{server.account_id}/{gateway}/compat",
                           api_key="unused", max_retries=0, default_headers={"authorization": ""})
    with client.chat.completions.with_streaming_response.create(  # type: ignore[call-overload]
            model="dynamic/streamy", stream=True, **CHAT) as response:
        assert response.headers["cf-aig-model"] == "claude-x"
        assert response.headers["cf-aig-dynamic-route-path"] == "start,m1,m2"
        text = "".join(chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices)
    assert text == CHAT_TEXT


@pytest.mark.parametrize(("model_name", "status", "code"), [
    ("dynamic/", 400, 2012),  # no name: not "{provider}/{model}"
    ("dynamic/" + "x" * 5000, 400, 2013),
    ("dynamic/../etc", 400, 2013),
])
def test_malformed_route_names_are_refused(server: Server, gateway: str, upstream: MockUpstream,
                                           model_name: str, status: int, code: int) -> None:
    response = httpx.post(compat_url(server, gateway), json={**CHAT, "model": model_name}, timeout=30)
    assert response.status_code == status, response.text
    assert response.json().get("internalCode", code) == code
    assert upstream_requests(upstream) == []


def test_the_elements_byok_alias_picks_the_stored_key_and_the_callers_applies_otherwise(
        server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream, keys: None) -> None:
    backup = add_config(api, gateway, "openai", alias="backup", default=False, secret="sk-backup-" + "b" * 16)
    assert backup["alias"] == "backup"
    create_route(api, gateway, "aliased", single_model("openai", "gpt-x"))
    create_route(api, gateway, "pinned", [start("m"), model("m", "openai", "gpt-x", alias="backup"), end()])
    with httpx.Client(timeout=30) as client:
        assert ask(client, server, gateway, "pinned", **{"cf-aig-byok-alias": "default"}).status_code == 200
        assert ask(client, server, gateway, "aliased", **{"cf-aig-byok-alias": "backup"}).status_code == 200
        assert ask(client, server, gateway, "aliased").status_code == 200
    sent = [r["headers"]["authorization"] for r in upstream_requests(upstream)]
    assert sent[0] == sent[1] == "Bearer sk-backup-" + "b" * 16
    assert sent[2] != sent[0]  # the default key


def test_a_model_element_naming_a_custom_provider_is_served_through_it(
        cf: Any, server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream, keys: None) -> None:
    provider, prefix = make_provider(cf, server, upstream)
    stored = new_key("sk-custom")
    add_config(api, gateway, provider, secret=stored)
    create_route(api, gateway, "own", [start("m"), model("m", provider, "org/model-x", fallback="backup"),
                                       model("backup", "openai", "gpt-backup"), end()])
    with httpx.Client(timeout=30) as client:
        response = ask(client, server, gateway, "own")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == CHAT_TEXT
    assert (response.headers["cf-aig-provider"], response.headers["cf-aig-model"],
            response.headers["cf-aig-dynamic-route-path"]) == (provider, "org/model-x", "start,m")
    (seen,) = upstream_requests(upstream)  # the fallback was not taken
    assert seen["path"] == f"{prefix}/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {stored}"
    assert orjson.loads(seen["body"])["model"] == "org/model-x"
    logged = log_of(api, gateway, response.headers["cf-aig-log-id"])
    assert (logged["provider"], logged["model"], logged["route"]) == (provider, "org/model-x", "own")


def test_a_custom_provider_the_account_lacks_or_that_fails_takes_the_fallback(
        cf: Any, server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream, keys: None) -> None:
    provider, prefix = make_provider(cf, server, upstream)
    add_config(api, gateway, provider)
    create_route(api, gateway, "gone", [start("m"), model("m", "custom-nobody-has-this", "x", fallback="f"),
                                        model("f", provider, "mock-fault=status:500", fallback="backup"),
                                        model("backup", "openai", "gpt-backup"), end()])
    with httpx.Client(timeout=30) as client:
        response = ask(client, server, gateway, "gone")
    assert response.status_code == 200, response.text
    assert response.headers["cf-aig-model"] == "gpt-backup"
    assert response.headers["cf-aig-dynamic-route-path"] == "start,m,f,backup"
    assert [r["path"] for r in upstream_requests(upstream)] == [f"{prefix}/chat/completions",
                                                                "/openai/chat/completions"]


def test_a_model_calls_answer_is_cached_under_its_own_request_and_served_again_with_the_route_headers(
        server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream, keys: None) -> None:
    """The model call gets the route's request already parsed; the cache still keys on the OpenAI body
    it names (the element's model): a second ask is a hit, another element's model is not."""
    create_route(api, gateway, "cached", single_model("anthropic", "claude-x"))
    create_route(api, gateway, "other", single_model("anthropic", "claude-y"))
    ttl = {"cf-aig-cache-ttl": "60"}
    with httpx.Client(timeout=30) as client:
        first, second = (ask(client, server, gateway, "cached", **ttl) for _ in range(2))
        other = ask(client, server, gateway, "other", **ttl)
    assert (first.status_code, second.status_code, other.status_code) == (200, 200, 200)
    assert (first.headers["cf-aig-cache-status"], second.headers["cf-aig-cache-status"],
            other.headers["cf-aig-cache-status"]) == ("MISS", "HIT", "MISS")
    assert second.json()["choices"][0]["message"]["content"] == CHAT_TEXT
    assert (second.headers["cf-aig-dynamic-route"], second.headers["cf-aig-model"]) == ("cached", "claude-x")
    assert [orjson.loads(r["body"])["model"] for r in upstream_requests(upstream)] == ["claude-x", "claude-y"]
