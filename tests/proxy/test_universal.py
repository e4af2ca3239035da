"""The Universal endpoint, ``POST /v1/{account}/{gateway}`` with an array of steps, on a real server
against the mock upstream: fallback on an error answer, a timeout and a connection failure,
``cf-aig-step``, one request log per step linked by one event id, streams, per-step options, header
precedence, and 400s naming the field for bodies that cannot be used (nothing forwarded)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest

from sluice.proxy.steps import MAX_STEPS
from sluice.testing.mock_upstream import CHAT_TEXT
from tests.proxy.helpers import add_config, create_token, new_key, set_gateway, upstream_requests
from tests.proxy.test_dynamic_routing import create_route
from tests.proxy.test_paths import raw_request
from tests.routing.graphs import conditional, end, limit, model, single_model, start
from tests.support.server import MockUpstream, Server

CHAT = {"model": "gpt-x", "messages": [{"role": "user", "content": "Hi"}]}
Keys = dict[str, str]
OPENAI_PATH, ANTHROPIC_PATH = "/openai/chat/completions", "/anthropic/v1/messages"
MESSAGES = {"model": "claude-x", "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]}


def universal_url(server: Server, gateway: str) -> str:
    return f"{server.url}/v1/{server.account_id}/{gateway}"


def openai_step(**extra: Any) -> dict[str, Any]:
    return {"provider": "openai", "endpoint": "chat/completions", "headers": {}, "query": CHAT, **extra}


def anthropic_step(**extra: Any) -> dict[str, Any]:
    return {"provider": "anthropic", "endpoint": "v1/messages", "headers": {}, "query": MESSAGES, **extra}


def fault(kind: str) -> dict[str, str]:
    return {"x-mock-fault": kind}


def post(server: Server, gateway: str, steps: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(universal_url(server, gateway), content=orjson.dumps(steps), timeout=30, **kwargs)


def logs_of_event(api: httpx.Client, gateway: str, event_id: str, count: int) -> list[dict[str, Any]]:
    """The gateway's request logs with this event id, once ``count`` of them are written."""
    deadline = time.monotonic() + 20
    params = [("filters.key", "event_id"), ("filters.operator", "eq"), ("filters.value", event_id)]
    while True:
        response = api.get(f"/ai-gateway/gateways/{gateway}/logs", params=params)
        assert response.status_code == 200, response.text
        found = response.json()["result"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture()
def keys(api: httpx.Client, gateway: str) -> dict[str, str]:
    """Stored default keys for openai and anthropic on the test's gateway."""
    stored = {"openai": new_key("sk-oa"), "anthropic": new_key("sk-ant")}
    for provider, secret in stored.items():
        add_config(api, gateway, provider, secret=secret)
    return stored


# -- fallback ----------------------------------------------------------------------------------------

def test_an_error_answer_moves_to_the_next_step_and_both_are_logged_under_one_event_id(
        server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream, keys: Keys) -> None:
    response = post(server, gateway, [anthropic_step(headers=fault("status:500")), openai_step()])

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == CHAT_TEXT
    assert response.headers["cf-aig-step"] == "1"
    event_id = response.headers["cf-aig-event-id"]
    first, second = upstream_requests(upstream)
    assert first["path"] == "/anthropic/v1/messages" and first["headers"]["x-api-key"] == keys["anthropic"]
    assert orjson.loads(first["body"]) == MESSAGES
    assert second["path"] == "/openai/chat/completions"
    assert second["headers"]["authorization"] == "Bearer " + keys["openai"]
    assert orjson.loads(second["body"]) == CHAT
    assert "x-mock-fault" not in second["headers"]  # step 0's headers stay with step 0

    failed, answered = sorted(logs_of_event(api, gateway, event_id, 2), key=lambda log: log["success"])
    assert (failed["provider"], failed["status_code"], failed["success"]) == ("anthropic", 500, False)
    assert (answered["provider"], answered["status_code"], answered["success"]) == ("openai", 200, True)
    assert answered["id"] == response.headers["cf-aig-log-id"]
    assert failed["path"] == "v1/messages" and answered["path"] == "chat/completions"


def test_the_callers_event_id_links_the_logs(server: Server, api: httpx.Client, gateway: str,
                                            upstream: MockUpstream, keys: Keys) -> None:
    event_id = "ev-" + new_key("u")
    response = post(server, gateway, [openai_step(headers=fault("status:503")), openai_step()],
                    headers={"cf-aig-event-id": event_id})
    assert response.status_code == 200 and response.headers["cf-aig-event-id"] == event_id
    assert sorted(log["status_code"] for log in logs_of_event(api, gateway, event_id, 2)) == [200, 503]


def test_a_step_that_hangs_past_its_request_timeout_moves_to_the_next(
        server: Server, gateway: str, upstream: MockUpstream, keys: Keys) -> None:
    steps = [openai_step(headers=fault("hang"), config={"requestTimeout": 300}), anthropic_step()]
    response = post(server, gateway, steps)
    assert response.status_code == 200, response.text
    assert response.headers["cf-aig-step"] == "1"
    assert response.json()["content"][0]["text"] == CHAT_TEXT  # the anthropic step answered
    assert [r["path"] for r in upstream_requests(upstream)] == [OPENAI_PATH, ANTHROPIC_PATH]


def test_a_request_level_timeout_applies_to_every_step(server: Server, gateway: str, upstream: MockUpstream,
                                                       keys: Keys) -> None:
    response = post(server, gateway, [openai_step(headers=fault("hang")), openai_step()],
                    headers={"cf-aig-request-timeout": "300"})
    assert response.status_code == 200 and response.headers["cf-aig-step"] == "1"


def test_when_every_step_fails_the_last_error_is_answered(server: Server, api: httpx.Client, gateway: str,
                                                         upstream: MockUpstream, keys: Keys) -> None:
    steps = [openai_step(headers=fault("status:500")), anthropic_step(headers=fault("hang"),
                                                                      config={"requestTimeout": 200}),
             openai_step(headers=fault("status:429"))]
    response = post(server, gateway, steps)
    assert response.status_code == 429
    assert response.json()["error"]["message"] == "mock upstream fault: status 429"  # the provider's own
    assert response.headers["cf-aig-step"] == "2"
    assert int(response.headers["content-length"]) == len(response.content)
    logs = logs_of_event(api, gateway, response.headers["cf-aig-event-id"], 3)
    assert sorted(log["status_code"] for log in logs) == [429, 500, 504]  # same-millisecond logs: any order


def test_when_the_last_step_times_out_the_gateway_timeout_is_answered(
        server: Server, gateway: str, upstream: MockUpstream, keys: Keys) -> None:
    response = post(server, gateway, [openai_step(headers=fault("status:500")),
                                      openai_step(headers=fault("hang"), config={"requestTimeout": 200})])
    assert response.status_code == 504 and response.json()["internalCode"] == 2007
    assert response.headers["cf-aig-step"] == "1"


def test_a_connection_failure_moves_to_the_next_step(server: Server, api: httpx.Client, gateway: str,
                                                     upstream: MockUpstream, keys: Keys) -> None:
    response = post(server, gateway, [openai_step(headers=fault("drop")), anthropic_step()])
    assert response.status_code == 200 and response.headers["cf-aig-step"] == "1"
    logs = logs_of_event(api, gateway, response.headers["cf-aig-event-id"], 2)
    assert sorted(log["status_code"] for log in logs) == [200, 502]


def test_a_client_that_leaves_ends_the_chain(server: Server, api: httpx.Client, gateway: str,
                                            upstream: MockUpstream, keys: Keys) -> None:
    event_id = "ev-" + new_key("gone")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(universal_url(server, gateway), content=orjson.dumps([openai_step(headers=fault("hang")),
                                                                         anthropic_step()]),
                   headers={"cf-aig-event-id": event_id}, timeout=1.0)
    (log,) = logs_of_event(api, gateway, event_id, 1)  # step 0, cut short when the client left
    assert log["status_code"] == 499 and log["provider"] == "openai"
    assert [r["path"] for r in upstream_requests(upstream)] == [OPENAI_PATH]  # step 1 never ran


def test_each_step_counts_against_the_gateways_rate_limit(server: Server, api: httpx.Client, gateway: str,
                                                          upstream: MockUpstream, keys: Keys) -> None:
    set_gateway(api, gateway, rate_limiting_limit=1, rate_limiting_interval=3600,
                rate_limiting_technique="sliding")
    response = post(server, gateway, [openai_step(headers=fault("status:500")), openai_step()])
    assert response.status_code == 429 and response.json()["internalCode"] == 2003
    assert response.headers["cf-aig-step"] == "1"
    assert len(upstream_requests(upstream)) == 1


def test_a_step_without_a_credential_fails_over_to_one_with(server: Server, api: httpx.Client, gateway: str,
                                                           upstream: MockUpstream) -> None:
    add_config(api, gateway, "anthropic")
    response = post(server, gateway, [openai_step(), anthropic_step()])  # no openai key anywhere
    assert response.status_code == 200 and response.headers["cf-aig-step"] == "1"
    assert [r["path"] for r in upstream_requests(upstream)] == ["/anthropic/v1/messages"]


def test_a_stream_is_answered_from_the_step_that_succeeds(server: Server, gateway: str,
                                                         upstream: MockUpstream, keys: Keys) -> None:
    steps = [openai_step(headers=fault("status:502")), openai_step(query={**CHAT, "stream": True})]
    url = universal_url(server, gateway)
    with httpx.stream("POST", url, content=orjson.dumps(steps), timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cf-aig-step"] == "1"
        text = response.read().decode()
    assert "data: [DONE]" in text and "chat.completion.chunk" in text


def test_step_config_sets_the_retries_of_that_step_only(server: Server, gateway: str, upstream: MockUpstream,
                                                        keys: Keys) -> None:
    steps = [openai_step(headers=fault("status:503"), config={"maxAttempts": 3, "retryDelay": 0,
                                                              "backoff": "constant"}),
             openai_step(headers=fault("status:503"))]
    response = post(server, gateway, steps)
    assert response.status_code == 503
    assert len(upstream_requests(upstream)) == 4  # three attempts of step 0, one of step 1


def test_headers_step_over_request_over_gateway(server: Server, api: httpx.Client, gateway: str,
                                                upstream: MockUpstream, keys: Keys) -> None:
    set_gateway(api, gateway, retry_max_attempts=3, retry_delay=0, retry_backoff="constant")
    steps = [openai_step(headers={"x-mock-fault": "status:500", "x-who": "step",
                                  "cf-aig-max-attempts": "2"}),
             openai_step()]
    response = post(server, gateway, steps, headers={"x-who": "request", "x-only-request": "r",
                                                      "cf-aig-max-attempts": "1"})
    assert response.status_code == 200
    *failed, answered = upstream_requests(upstream)
    assert len(failed) == 2  # the step's cf-aig-max-attempts beat the request's and the gateway's
    assert failed[0]["headers"]["x-who"] == "step" and answered["headers"]["x-who"] == "request"
    assert answered["headers"]["x-only-request"] == "r"
    assert "cf-aig-max-attempts" not in answered["headers"]  # gateway options never go upstream


def test_the_gateways_settings_apply_where_nothing_overrides_them(server: Server, api: httpx.Client,
                                                                  gateway: str, upstream: MockUpstream,
                                                                  keys: Keys) -> None:
    set_gateway(api, gateway, retry_max_attempts=2, retry_delay=0, retry_backoff="constant")
    response = post(server, gateway, [openai_step(headers=fault("status:500"))])
    assert response.status_code == 500 and len(upstream_requests(upstream)) == 2


def test_a_single_step_object_and_a_trailing_slash(server: Server, gateway: str, upstream: MockUpstream,
                                                   keys: Keys) -> None:
    url = universal_url(server, gateway) + "/"
    response = httpx.post(url, content=orjson.dumps(openai_step()), timeout=30)
    assert response.status_code == 200 and response.headers["cf-aig-step"] == "0"
    assert response.headers["cf-aig-log-id"]


def test_step_headers_carry_the_callers_key_and_an_alias(server: Server, api: httpx.Client, gateway: str,
                                                         upstream: MockUpstream) -> None:
    own = new_key("sk-own")
    team = new_key("sk-team")
    add_config(api, gateway, "openai", alias="team", default=False, secret=team)
    steps = [openai_step(headers={"authorization": f"Bearer {own}", **fault("status:500")}),
             openai_step(headers={"cf-aig-byok-alias": "team"})]
    response = post(server, gateway, steps)
    assert response.status_code == 200 and response.headers["cf-aig-byok-alias"] == "team"
    first, second = upstream_requests(upstream)
    assert first["headers"]["authorization"] == f"Bearer {own}"
    assert second["headers"]["authorization"] == f"Bearer {team}"


def test_the_legacy_authorization_field_is_the_authorization_header(server: Server, gateway: str,
                                                                   upstream: MockUpstream) -> None:
    own = new_key("sk-own")
    response = post(server, gateway, [openai_step(authorization=f"Bearer {own}")])
    assert response.status_code == 200
    (seen,) = upstream_requests(upstream)
    assert seen["headers"]["authorization"] == f"Bearer {own}"


def test_gateway_authentication_applies_to_every_step(server: Server, api: httpx.Client, gateway: str,
                                                      upstream: MockUpstream, keys: Keys) -> None:
    set_gateway(api, gateway, authentication=True)
    refused = post(server, gateway, [openai_step(), anthropic_step()])
    assert refused.status_code == 401 and refused.json()["internalCode"] == 2009
    assert upstream_requests(upstream) == []
    token = create_token(api)
    response = post(server, gateway, [openai_step()], headers={"cf-aig-authorization": f"Bearer {token}"})
    assert response.status_code == 200
    (seen,) = upstream_requests(upstream)
    assert token not in str(seen)


def test_a_token_of_ours_on_the_request_authenticates_every_step(server: Server, api: httpx.Client,
                                                                gateway: str, upstream: MockUpstream,
                                                                keys: Keys) -> None:
    set_gateway(api, gateway, authentication=True)
    token = create_token(api)
    response = post(server, gateway, [anthropic_step(headers=fault("status:500")), openai_step()],
                    headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.headers["cf-aig-step"] == "1"
    first, second = upstream_requests(upstream)
    assert first["headers"]["x-api-key"] == keys["anthropic"]
    assert second["headers"]["authorization"] == "Bearer " + keys["openai"]
    assert token not in str(first) + str(second)


def test_a_provider_key_on_the_request_is_refused(server: Server, gateway: str,
                                                  upstream: MockUpstream) -> None:
    response = post(server, gateway, [openai_step(), anthropic_step()], headers={"x-api-key": "sk-ant-1"})
    assert response.status_code == 400
    assert response.json()["error"][0]["message"].startswith("request header x-api-key: ")
    assert "sk-ant-1" not in response.text
    assert upstream_requests(upstream) == []


def test_key_pools_fail_over_within_a_step(server: Server, api: httpx.Client, gateway: str,
                                           upstream: MockUpstream) -> None:
    """A step's stored key refused (429) is retried with the gateway's next key inside that step
    (key pools); only when the step as a whole fails does the next step run."""
    set_gateway(api, gateway, key_failover=True)
    tag = new_key("m")
    first, second = f"sk-a{tag}", f"sk-b{tag}"
    add_config(api, gateway, "openai", alias="main", secret=first)
    add_config(api, gateway, "openai", alias="k1", default=False, secret=second)
    refuse_first = fault(f"key-status:a{tag}=429/5")
    response = post(server, gateway, [openai_step(headers=refuse_first), anthropic_step()])
    assert response.status_code == 200 and response.headers["cf-aig-step"] == "0"
    assert response.headers["cf-aig-byok-alias"] == "k1"
    assert [r["headers"]["authorization"] for r in upstream_requests(upstream)] == [
        f"Bearer {first}", f"Bearer {second}"]


def test_compat_as_a_step_provider(server: Server, gateway: str, upstream: MockUpstream,
                                   keys: Keys) -> None:
    step = {"provider": "compat", "endpoint": "chat/completions",
            "query": {"model": "anthropic/claude-x", "messages": CHAT["messages"], "max_tokens": 20}}
    response = post(server, gateway, [openai_step(headers=fault("status:500")), step])
    assert response.status_code == 200 and response.headers["cf-aig-step"] == "1"
    assert response.json()["choices"][0]["message"]["content"] == CHAT_TEXT  # OpenAI's shape
    assert upstream_requests(upstream)[-1]["path"] == "/anthropic/v1/messages"


def route_step(name: str, **extra: Any) -> dict[str, Any]:
    return {"provider": "compat", "endpoint": "chat/completions",
            "query": {"model": f"dynamic/{name}", "messages": CHAT["messages"]}, **extra}


def test_a_dynamic_route_as_a_compat_step(server: Server, api: httpx.Client, gateway: str,
                                          upstream: MockUpstream, keys: Keys) -> None:
    route = create_route(api, gateway, "tiers", [
        start("c"), conditional("c", {"metadata.plan": {"$eq": "paid"}}, "big", "small"),
        model("big", "anthropic", "claude-big"), model("small", "openai", "gpt-small"), end()])
    event_id = "ev-" + new_key("r")
    response = post(server, gateway, [openai_step(headers=fault("status:500")), route_step("tiers")],
                    headers={"cf-aig-metadata": '{"plan": "paid"}', "cf-aig-event-id": event_id})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == CHAT_TEXT  # OpenAI's shape
    headers = response.headers
    assert headers["cf-aig-step"] == "1" and headers["cf-aig-event-id"] == event_id
    assert (headers["cf-aig-dynamic-route"], headers["cf-aig-dynamic-route-version"],
            headers["cf-aig-dynamic-route-path"], headers["cf-aig-model"]) == (
        "tiers", route["version"]["version_id"], "start,c,big", "claude-big")
    sent = upstream_requests(upstream)
    assert [r["path"] for r in sent] == [OPENAI_PATH, ANTHROPIC_PATH]
    assert orjson.loads(sent[1]["body"])["model"] == "claude-big"
    logged = {log["provider"]: log for log in logs_of_event(api, gateway, event_id, 2)}
    assert (logged["anthropic"]["route"], logged["anthropic"]["route_path"]) == ("tiers", "start,c,big")
    assert logged["anthropic"]["id"] == headers["cf-aig-log-id"] and logged["openai"]["route"] is None


def test_a_failing_dynamic_route_step_moves_to_the_next_step(server: Server, api: httpx.Client, gateway: str,
                                                            upstream: MockUpstream, keys: Keys) -> None:
    create_route(api, gateway, "fragile", single_model("openai", "mock-fault=status:503"))
    create_route(api, gateway, "limited", [start("l"), limit("l", limit_value=1, success="m"), model("m"),
                                           end()])
    assert post(server, gateway, [route_step("limited")]).status_code == 200  # its one request
    upstream.clear()
    response = post(server, gateway, [route_step("fragile"), route_step("limited"), route_step("nope"),
                                      openai_step()])
    assert response.status_code == 200, response.text
    assert response.headers["cf-aig-step"] == "3" and "cf-aig-dynamic-route" not in response.headers
    assert [r["path"] for r in upstream_requests(upstream)] == [OPENAI_PATH, OPENAI_PATH]
    only = post(server, gateway, [route_step("limited")])  # the last step's error is the answer
    assert only.status_code == 429 and only.json()["internalCode"] == 2014
    assert only.headers["cf-aig-dynamic-route"] == "limited" and only.headers["cf-aig-step"] == "0"


def test_the_cache_applies_per_step(server: Server, gateway: str, upstream: MockUpstream,
                                    keys: Keys) -> None:
    steps = [openai_step(headers={"cf-aig-cache-ttl": "600"}, query={**CHAT, "model": new_key("m")})]
    first = post(server, gateway, steps)
    second = post(server, gateway, steps)
    assert (first.headers["cf-aig-cache-status"], second.headers["cf-aig-cache-status"]) == ("MISS", "HIT")
    assert second.json() == first.json() and len(upstream_requests(upstream)) == 1


# -- refusals: a 400 naming the field, nothing forwarded ----------------------------------------------

BAD_BODIES = [
    (b"{not json", "body"),
    (b'"a string"', "body"),
    (b"42", "body"),
    (b"[]", "steps"),
    (orjson.dumps([openai_step()] * (MAX_STEPS + 1)), "steps"),
    (orjson.dumps([openai_step(), 7]), "steps[1]"),
    (orjson.dumps([openai_step(), {**openai_step(), "provider": "nope"}]), "steps[1].provider"),
    (orjson.dumps([{**openai_step(), "provider": None}]), "steps[0].provider"),
    (orjson.dumps([{k: v for k, v in openai_step().items() if k != "endpoint"}]), "steps[0].endpoint"),
    (orjson.dumps([openai_step(endpoint="chat completions")]), "steps[0].endpoint"),
    (orjson.dumps([{k: v for k, v in openai_step().items() if k != "query"}]), "steps[0].query"),
    (orjson.dumps([openai_step(headers=["x"])]), "steps[0].headers"),
    (orjson.dumps([openai_step(headers={"x-a": {"b": 1}})]), "steps[0].headers.x-a"),
    (orjson.dumps([openai_step(headers={"x-a": "a\r\nb: c"})]), "steps[0].headers.x-a"),
    (orjson.dumps([openai_step(headers={"bad name": "v"})]), "steps[0].headers.bad name"),
    (orjson.dumps([openai_step(headers={"content-length": "5"})]), "steps[0].headers.content-length"),
    (orjson.dumps([openai_step(headers={"cf-aig-event-id": "e"})]), "steps[0].headers.cf-aig-event-id"),
    (orjson.dumps([openai_step(config="fast")]), "steps[0].config"),
    (orjson.dumps([openai_step(config={"requestTimeout": "500"})]), "steps[0].config.requestTimeout"),
    (orjson.dumps([openai_step(config={"maxAttempts": 6})]), "steps[0].config.maxAttempts"),
    (orjson.dumps([openai_step(config={"maxAttempts": True})]), "steps[0].config.maxAttempts"),
    (orjson.dumps([openai_step(config={"retryDelay": -1})]), "steps[0].config.retryDelay"),
    (orjson.dumps([openai_step(config={"backoff": "random"})]), "steps[0].config.backoff"),
    (orjson.dumps([openai_step(config={"cacheTtl": 5})]), "steps[0].config.cacheTtl"),
    (orjson.dumps([openai_step(model="x")]), "steps[0].model"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES, ids=[f for _, f in BAD_BODIES])
def test_a_body_that_cannot_be_used_is_a_400_naming_the_field(server: Server, gateway: str,
                                                             upstream: MockUpstream, keys: Keys,
                                                             body: bytes, field: str) -> None:
    response = httpx.post(universal_url(server, gateway), content=body, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()
    assert (error["internalCode"], error["name"]) == (2002, "AiGatewayError")
    assert error["error"][0]["message"].startswith(f"{field}: "), error
    assert upstream_requests(upstream) == []


def test_wrong_method_unknown_gateway_and_oversize_body(server: Server, gateway: str,
                                                        upstream: MockUpstream) -> None:
    url = universal_url(server, gateway)
    assert httpx.get(url).status_code == 405
    handshake = httpx.get(url, headers={"upgrade": "websocket", "connection": "upgrade"})
    assert (handshake.status_code, handshake.json()["internalCode"]) == (400, 2011)
    unknown = f"{server.url}/v1/{server.account_id}/no-such-gateway"
    assert httpx.post(unknown, content=b"[]").status_code == 404
    big = orjson.dumps([openai_step(query={"pad": "x" * (1024 * 1024 + 10)})])
    assert httpx.post(url, content=big, timeout=30).status_code == 413
    assert upstream_requests(upstream) == []


def test_a_fragment_in_the_target_is_refused(server: Server, gateway: str, upstream: MockUpstream) -> None:
    for target in (f"/v1/{server.account_id}/{gateway}#x", f"/v1/{server.account_id}/{gateway}/#"):
        status, body = raw_request(server.port, target)
        assert status == 400 and "'#'" in body["error"][0]["message"], (target, body)
    assert upstream_requests(upstream) == []
