"""Gateway settings as the official SDK types them (issue 15, item 14): null clears what the SDK types
nullable and is refused elsewhere; advanced settings (dlp, guardrails, otel, spend_limits, stripe) are
checked against the SDK's shapes, a wrong one answered 400 naming the exact field path."""

from __future__ import annotations

import types
import typing
from typing import Any

import httpx
import pytest
from cloudflare.types.ai_gateway.ai_gateway_update_params import AIGatewayUpdateParams

from sluice.control.schemas import EXTENSION_DEFAULTS, NULLABLE_GATEWAY_FIELDS, GatewayFields
from tests.conftest import unique_id
from tests.control.assertions import assert_ok, assert_v4_error
from tests.support.server import Server

GW = "/ai-gateway/gateways"

DLP_POLICIES = {"enabled": True, "policies": [
    {"id": "pii", "action": "BLOCK", "check": ["REQUEST", "RESPONSE"], "enabled": True, "profiles": ["p1"]}]}
GUARDRAILS = {"prompt": {"P1": "FLAG", "S13": "BLOCK"}, "response": {"S1": "BLOCK"}}
OTEL = [{"url": "https://collector.example/v1/traces", "headers": {"x-team": "ml"},
         "authorization": "Bearer o", "content_type": "protobuf"}]
SPEND_LIMITS = {"enabled": True, "rules": [
    {"limit": 12.5, "limitType": "cost", "window": 86400, "id": "daily", "enabled": True,
     "technique": "sliding",
     "metadata": {"team": {"mode": "partition"}, "env": {"mode": "filter", "values": ["prod"]}},
     "model": {"mode": "filter", "values": ["gpt-4o"]},
     "provider": {"mode": "filter", "values": ["openai"]}}]}
STRIPE = {"authorization": "rk_test_123", "usage_events": [{"payload": "{\"event\": 1}"}]}
# a value for each field the SDK types nullable, so clearing it is visible
SET = {"cache_ttl": 60, "rate_limiting_interval": 60, "rate_limiting_limit": 10,
       "rate_limiting_technique": "sliding", "retry_max_attempts": 3, "retry_delay": 100,
       "retry_backoff": "linear", "log_management": 20_000, "log_management_strategy": "DELETE_OLDEST",
       "logpush_public_key": "k" * 32, "guardrails": GUARDRAILS, "otel": OTEL, "spend_limits": SPEND_LIMITS,
       "stripe": STRIPE}


def _unwrap(hint: Any) -> Any:
    """Required[X] / NotRequired[X] -> X."""
    while typing.get_origin(hint) in (typing.Required, typing.NotRequired):
        hint = typing.get_args(hint)[0]
    return hint


def _nullable(hint: Any) -> bool:
    hint = _unwrap(hint)
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def test_fields_and_nullability_are_the_sdks() -> None:
    hints = typing.get_type_hints(AIGatewayUpdateParams)
    sdk = {name: _nullable(hint) for name, hint in hints.items() if name != "account_id"}
    # every field the SDK types, and Sluice's own extensions (docs/api.md), which it sends as extra_body
    assert set(GatewayFields.model_fields) == set(sdk) | set(EXTENSION_DEFAULTS)
    assert not set(EXTENSION_DEFAULTS) & set(sdk)
    assert NULLABLE_GATEWAY_FIELDS == {name for name, nullable in sdk.items() if nullable}
    assert set(SET) == NULLABLE_GATEWAY_FIELDS - {"store_id"}


def test_null_clears_every_nullable_field(api: httpx.Client) -> None:
    store = assert_ok(api.post("/secrets_store/stores", json={"name": unique_id("clear-store")}))
    gateway_id = unique_id("clear")
    created = assert_ok(api.post(GW, json={"id": gateway_id, **SET, "store_id": store["id"]}))
    assert {k: created[k] for k in SET} == SET
    cleared = dict.fromkeys(NULLABLE_GATEWAY_FIELDS)
    updated = assert_ok(api.put(f"{GW}/{gateway_id}", json=cleared))
    assert {k: updated[k] for k in cleared} == cleared
    assert {k: assert_ok(api.get(f"{GW}/{gateway_id}"))[k] for k in cleared} == cleared
    # a field left out keeps its value (PUT is a merge, docs/api.md)
    assert updated["collect_logs"] is True and updated["authentication"] is True


def test_rate_limiting_sent_as_null_reads_back_as_null(api: httpx.Client) -> None:
    gateway_id = unique_id("rl-null")
    created = assert_ok(api.post(GW, json={"id": gateway_id, "rate_limiting_interval": None,
                                           "rate_limiting_limit": None}))
    assert (created["rate_limiting_interval"], created["rate_limiting_limit"]) == (None, None)
    assert_ok(api.put(f"{GW}/{gateway_id}", json={"rate_limiting_interval": 30, "rate_limiting_limit": 5}))
    cleared = {"rate_limiting_interval": None, "rate_limiting_limit": None}
    assert_ok(api.put(f"{GW}/{gateway_id}", json=cleared))
    got = assert_ok(api.get(f"{GW}/{gateway_id}"))
    assert (got["rate_limiting_interval"], got["rate_limiting_limit"]) == (None, None)


NOT_NULLABLE = ("cache_invalidate_on_update", "collect_logs", "authentication", "byok_only", "dlp",
                "log_classification", "logpush", "workers_ai_billing_mode", "zdr")


@pytest.mark.parametrize("field", NOT_NULLABLE)
def test_null_for_a_field_the_sdk_does_not_type_nullable_is_refused(api: httpx.Client, gateway: str,
                                                                    field: str) -> None:
    before = assert_ok(api.get(f"{GW}/{gateway}"))
    assert_v4_error(api.put(f"{GW}/{gateway}", json={field: None}), 400, 7001, path=["body", field],
                    says="must not be null")
    assert_v4_error(api.post(GW, json={"id": unique_id(), field: None}), 400, 7001, path=["body", field])
    assert assert_ok(api.get(f"{GW}/{gateway}")) == before


POLICY = DLP_POLICIES["policies"][0]
RULE = SPEND_LIMITS["rules"][0]
WRONG_SHAPES = [
    ("dlp-not-object", {"dlp": "on"}, ["body", "dlp"]),
    ("dlp-profiles-missing", {"dlp": {"enabled": True, "action": "FLAG"}}, ["body", "dlp", "profiles"]),
    ("dlp-action", {"dlp": {"enabled": True, "action": "DROP", "profiles": []}}, ["body", "dlp", "action"]),
    ("dlp-policy-action", {"dlp": {"enabled": True, "policies": [{**POLICY, "action": "DROP"}]}},
     ["body", "dlp", "policies", 0, "action"]),
    ("dlp-policy-check", {"dlp": {"enabled": True, "policies": [{**POLICY, "check": ["BODY"]}]}},
     ["body", "dlp", "policies", 0, "check", 0]),
    ("dlp-policy-extra", {"dlp": {"enabled": True, "policies": [{**POLICY, "severity": 1}]}},
     ["body", "dlp", "policies", 0, "severity"]),
    ("guardrails-no-response", {"guardrails": {"prompt": {}}}, ["body", "guardrails", "response"]),
    ("guardrails-category", {"guardrails": {"prompt": {"S14": "FLAG"}, "response": {}}},
     ["body", "guardrails", "prompt", "S14"]),
    ("guardrails-action", {"guardrails": {"prompt": {}, "response": {"S2": "ALLOW"}}},
     ["body", "guardrails", "response", "S2"]),
    ("guardrails-null-action", {"guardrails": {"prompt": {"P1": None}, "response": {}}},
     ["body", "guardrails", "prompt", "P1"]),
    ("otel-not-list", {"otel": OTEL[0]}, ["body", "otel"]),
    ("otel-no-headers", {"otel": [{"url": "https://c.example"}]}, ["body", "otel", 0, "headers"]),
    ("otel-header-number", {"otel": [{"url": "https://c.example", "headers": {"n": 1}}]},
     ["body", "otel", 0, "headers", "n"]),
    ("otel-content-type", {"otel": [{**OTEL[0], "content_type": "xml"}]},
     ["body", "otel", 0, "content_type"]),
    ("otel-url-long", {"otel": [{**OTEL[0], "url": "https://c.example/" + "a" * 2048}]},
     ["body", "otel", 0, "url"]),
    ("spend-limit-type", {"spend_limits": {"rules": [{**RULE, "limitType": "tokens"}]}},
     ["body", "spend_limits", "rules", 0, "limitType"]),
    ("spend-limit-zero", {"spend_limits": {"rules": [{**RULE, "limit": 0}]}},
     ["body", "spend_limits", "rules", 0, "limit"]),
    ("spend-window-missing", {"spend_limits": {"rules": [{"limit": 1, "limitType": "cost"}]}},
     ["body", "spend_limits", "rules", 0, "window"]),
    ("spend-metadata-values",
     {"spend_limits": {"rules": [{**RULE, "metadata": {"env": {"mode": "filter"}}}]}},
     ["body", "spend_limits", "rules", 0, "metadata", "env", "values"]),
    ("spend-metadata-mode", {"spend_limits": {"rules": [{**RULE, "metadata": {"env": {"mode": "group"}}}]}},
     ["body", "spend_limits", "rules", 0, "metadata", "env"]),
    ("spend-model-mode",
     {"spend_limits": {"rules": [{**RULE, "model": {"mode": "partition", "values": []}}]}},
     ["body", "spend_limits", "rules", 0, "model", "mode"]),
    ("spend-unknown", {"spend_limits": {"daily": 5}}, ["body", "spend_limits", "daily"]),
    ("stripe-no-events", {"stripe": {"authorization": "x"}}, ["body", "stripe", "usage_events"]),
    ("stripe-event-payload", {"stripe": {"authorization": "x", "usage_events": [{}]}},
     ["body", "stripe", "usage_events", 0, "payload"]),
]


@pytest.mark.parametrize(("payload", "path"), [case[1:] for case in WRONG_SHAPES],
                         ids=[case[0] for case in WRONG_SHAPES])
def test_advanced_setting_of_a_wrong_shape_is_refused_naming_the_field(
        api: httpx.Client, gateway: str, payload: dict[str, Any], path: list[str | int]) -> None:
    before = assert_ok(api.get(f"{GW}/{gateway}"))
    assert_v4_error(api.put(f"{GW}/{gateway}", json=payload), 400, 7001, path=path,
                    says=".".join(map(str, path[1:])))
    assert_v4_error(api.post(GW, json={"id": unique_id(), **payload}), 400, 7001, path=path)
    assert assert_ok(api.get(f"{GW}/{gateway}")) == before


def test_advanced_settings_round_trip_through_the_sdk(cf: Any, server: Server) -> None:
    account, gateway_id = server.account_id, unique_id("sdk-adv")
    cf.ai_gateway.create(account_id=account, id=gateway_id, cache_invalidate_on_update=False, cache_ttl=None,
                         collect_logs=True, rate_limiting_interval=None, rate_limiting_limit=None,
                         dlp=DLP_POLICIES, guardrails=GUARDRAILS, otel=OTEL, spend_limits=SPEND_LIMITS,
                         stripe=STRIPE)
    got = cf.ai_gateway.get(gateway_id, account_id=account)
    assert got.rate_limiting_interval is None and got.rate_limiting_limit is None and got.cache_ttl is None
    assert got.dlp.policies[0].check == ["REQUEST", "RESPONSE"]
    assert got.guardrails.prompt.s13 == "BLOCK" and got.guardrails.response.s1 == "BLOCK"
    assert got.otel[0].content_type == "protobuf" and got.otel[0].headers == {"x-team": "ml"}
    rule = got.spend_limits.rules[0]
    assert (rule.limit, rule.limit_type, rule.metadata["env"].values) == (12.5, "cost", ["prod"])
    assert got.stripe.usage_events[0].payload == STRIPE["usage_events"][0]["payload"]

    updated = cf.ai_gateway.update(gateway_id, account_id=account, cache_invalidate_on_update=True,
                                   cache_ttl=30, collect_logs=True, rate_limiting_interval=60,
                                   rate_limiting_limit=100,
                                   dlp={"action": "FLAG", "enabled": True, "profiles": ["p2"]},
                                   guardrails=None, otel=None, spend_limits=None, stripe=None,
                                   logpush_public_key=None, log_management=None)
    assert updated.dlp.profiles == ["p2"] and updated.rate_limiting_limit == 100
    assert [updated.guardrails, updated.otel, updated.spend_limits, updated.stripe] == [None] * 4
    assert updated.logpush_public_key is None and updated.log_management is None

    cleared = cf.ai_gateway.update(gateway_id, account_id=account, cache_invalidate_on_update=True,
                                   cache_ttl=None, collect_logs=False, rate_limiting_interval=None,
                                   rate_limiting_limit=None)
    assert [cleared.cache_ttl, cleared.rate_limiting_interval, cleared.rate_limiting_limit] == [None] * 3
    assert cleared.dlp.profiles == ["p2"]  # left out: kept
