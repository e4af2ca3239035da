"""Reading a Universal body into steps (``proxy/steps.py``, pure): what each step becomes, header
precedence, config as request options, and a ``StepError`` naming the field for everything else."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluice.proxy.steps import MAX_STEP_HEADERS, MAX_STEPS, Step, StepError, inherited, parse

PROVIDERS = frozenset({"openai", "anthropic", "workers-ai", "compat"})


def step(**extra: Any) -> dict[str, Any]:
    return {"provider": "openai", "endpoint": "chat/completions", "headers": {}, "query": {"a": 1}, **extra}


def one(**extra: Any) -> Step:
    (parsed,) = parse(orjson.dumps([step(**extra)]), PROVIDERS)
    return parsed


def refused(body: Any) -> StepError:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    with pytest.raises(StepError) as caught:
        parse(raw, PROVIDERS)
    return caught.value


def test_a_step_becomes_a_provider_path_request() -> None:
    parsed = one(endpoint="/@cf/meta/llama-3.1-8b-instruct?x=1", provider="workers-ai", query=[1, "two"])
    assert (parsed.provider, parsed.endpoint) == ("workers-ai", "@cf/meta/llama-3.1-8b-instruct?x=1")
    assert parsed.body == b'[1,"two"]'


def test_a_single_object_is_one_step_and_order_is_kept() -> None:
    assert [s.provider for s in parse(orjson.dumps(step()), PROVIDERS)] == ["openai"]
    steps = parse(orjson.dumps([step(provider="anthropic"), step(), step(provider="compat")]), PROVIDERS)
    assert [s.provider for s in steps] == ["anthropic", "openai", "compat"]


def test_header_values_are_text_and_names_lower_case() -> None:
    parsed = one(headers={"X-Num": 5, "X-Flag": True, "X-Off": False, "X-F": 1.5,
                          "Authorization": "Bearer k"})
    assert dict(parsed.headers) == {"x-num": "5", "x-flag": "true", "x-off": "false", "x-f": "1.5",
                                    "authorization": "Bearer k"}


def test_config_becomes_request_options_and_beats_the_steps_own_headers() -> None:
    parsed = one(headers={"cf-aig-max-attempts": "1", "cf-aig-request-timeout": "9"},
                 config={"requestTimeout": 1500, "maxAttempts": 3, "retryDelay": 0, "backoff": "linear"})
    assert dict(parsed.headers) == {"cf-aig-request-timeout": "1500", "cf-aig-max-attempts": "3",
                                    "cf-aig-retry-delay": "0", "cf-aig-backoff": "linear"}


def test_step_headers_replace_request_headers_of_the_same_name() -> None:
    parsed = one(headers={"x-who": "step", "content-type": "application/x"})
    inherited = [(b"x-who", b"request"), (b"x-who", b"again"), (b"x-other", b"r"), (b"content-length", b"9"),
                 (b"content-type", b"application/json")]
    assert parsed.request_headers(inherited) == [(b"x-other", b"r"), (b"x-who", b"step"),
                                                 (b"content-type", b"application/x")]


def test_json_content_type_is_added_when_nobody_set_one() -> None:
    assert one().request_headers([(b"x", b"1")]) == [(b"x", b"1"), (b"content-type", b"application/json")]


def test_the_legacy_authorization_field_yields_to_a_header() -> None:
    assert dict(one(authorization="Bearer a").headers) == {"authorization": "Bearer a"}
    assert dict(one(authorization="Bearer a", headers={"authorization": "Bearer b"}).headers) == {
        "authorization": "Bearer b"}


@pytest.mark.parametrize(("body", "field"), [
    (b"\xff", "body"),
    (b"", "body"),
    (b"null", "body"),
    (b"true", "body"),
    ([], "steps"),
    ([step()] * (MAX_STEPS + 1), "steps"),
    ([step(), "x"], "steps[1]"),
    ([step(provider="no-such")], "steps[0].provider"),
    ([step(provider=3)], "steps[0].provider"),
    ([step(provider="")], "steps[0].provider"),
    ([{"endpoint": "x", "query": {}}], "steps[0].provider"),
    ([step(endpoint=None)], "steps[0].endpoint"),
    ([step(endpoint="/")], "steps[0].endpoint"),
    ([step(endpoint="a b")], "steps[0].endpoint"),
    ([step(endpoint="a#b")], "steps[0].endpoint"),
    ([step(endpoint="a\nb")], "steps[0].endpoint"),
    ([step(endpoint="v1/../../admin")], "steps[0].endpoint"),
    ([step(endpoint="v1/%2e%2e/admin")], "steps[0].endpoint"),
    ([{"provider": "openai", "endpoint": "x"}], "steps[0].query"),
    ([step(headers="x: y")], "steps[0].headers"),
    ([step(headers={f"x-{i}": "v" for i in range(MAX_STEP_HEADERS + 1)})], "steps[0].headers"),
    ([step(headers={"x": None})], "steps[0].headers.x"),
    ([step(headers={"x": [1]})], "steps[0].headers.x"),
    ([step(headers={"x": "a\nb"})], "steps[0].headers.x"),
    ([step(headers={"x": "a\x00b"})], "steps[0].headers.x"),
    ([step(headers={"x": "v" * 20000})], "steps[0].headers.x"),
    ([step(headers={"a:b": "v"})], "steps[0].headers.a:b"),
    ([step(headers={"": "v"})], "steps[0].headers."),
    ([step(headers={"Host": "evil"})], "steps[0].headers.Host"),
    ([step(headers={"Transfer-Encoding": "chunked"})], "steps[0].headers.Transfer-Encoding"),
    ([step(headers={"proxy-x": "1"})], "steps[0].headers.proxy-x"),
    ([step(headers={"CF-AIG-Event-Id": "e"})], "steps[0].headers.CF-AIG-Event-Id"),
    ([step(authorization={"a": 1})], "steps[0].authorization"),
    ([step(config=[1])], "steps[0].config"),
    ([step(config={"requestTimeout": 0})], "steps[0].config.requestTimeout"),
    ([step(config={"requestTimeout": 1.5})], "steps[0].config.requestTimeout"),
    ([step(config={"maxAttempts": 0})], "steps[0].config.maxAttempts"),
    ([step(config={"maxAttempts": "2"})], "steps[0].config.maxAttempts"),
    ([step(config={"retryDelay": 60001})], "steps[0].config.retryDelay"),
    ([step(config={"backoff": "LINEAR"})], "steps[0].config.backoff"),
    ([step(config={"backoff": None})], "steps[0].config.backoff"),
    ([step(config={"timeout": 5})], "steps[0].config.timeout"),
    ([step(extra=1)], "steps[0].extra"),
])
def test_what_cannot_be_used_names_its_field(body: Any, field: str) -> None:
    error = refused(body)
    assert error.field == field
    assert error.message.startswith(f"{field}: ") and len(error.message) > len(field) + 4


def test_messages_do_not_echo_long_caller_text() -> None:
    error = refused([step(provider="p" * 10_000)])
    assert len(error.message) < 200
    error = refused([step(**{"k" * 10_000: 1})])
    assert len(error.message) < 400


AUTH_NAMES = frozenset({b"authorization", b"x-api-key"})


def test_every_step_starts_from_the_requests_headers_and_one_event_id() -> None:
    raw = [(b"x-a", b"1"), (b"content-length", b"99"), (b"cf-aig-event-id", b"old"), (b"authorization", b""),
           (b"x-api-key", b"Bearer "), (b"cf-aig-request-timeout", b"5")]
    assert inherited(raw, AUTH_NAMES, b"ev") == [(b"x-a", b"1"), (b"cf-aig-request-timeout", b"5"),
                                                 (b"cf-aig-event-id", b"ev")]


def test_a_token_of_ours_on_the_request_authenticates_every_step_to_the_gateway() -> None:
    raw = [(b"authorization", b"Bearer sluice_abc")]
    assert inherited(raw, AUTH_NAMES, b"ev") == [(b"cf-aig-authorization", b"Bearer sluice_abc"),
                                                 (b"cf-aig-event-id", b"ev")]
    own = [(b"x-api-key", b"sluice_abc"), (b"cf-aig-authorization", b"Bearer sluice_own")]
    assert [v for n, v in inherited(own, AUTH_NAMES, b"ev") if n == b"cf-aig-authorization"] == [
        b"Bearer sluice_own"]


@pytest.mark.parametrize("name", [b"authorization", b"x-api-key"])
def test_a_provider_key_on_the_request_is_refused(name: bytes) -> None:
    with pytest.raises(StepError) as caught:
        inherited([(name, b"Bearer sk-live-1")], AUTH_NAMES, b"ev")
    assert caught.value.field == f"request header {name.decode()}"
    assert "sk-live-1" not in caught.value.message
