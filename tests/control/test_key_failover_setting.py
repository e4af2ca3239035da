"""The key-pool gateway settings (Sluice extensions, docs/api.md): ``key_failover`` and
``key_failover_quota_cooldown`` are validated like every gateway field, returned on GET, kept by a
merge PUT, and reachable from the official cloudflare SDK through ``extra_body``."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.control.assertions import assert_ok, assert_v4_error
from tests.support.server import Server

GW = "/ai-gateway/gateways"


def test_defaults_are_returned_and_a_merge_put_keeps_them(api: httpx.Client) -> None:
    gateway_id = f"pool-{secrets.token_hex(3)}"
    made = assert_ok(api.post(GW, json={"id": gateway_id}))
    assert (made["key_failover"], made["key_failover_quota_cooldown"]) == (False, 3600)
    assert_ok(api.put(f"{GW}/{gateway_id}", json={"key_failover": True, "key_failover_quota_cooldown": 60}))
    assert_ok(api.put(f"{GW}/{gateway_id}", json={"cache_ttl": 5}))
    got = assert_ok(api.get(f"{GW}/{gateway_id}"))
    assert (got["key_failover"], got["key_failover_quota_cooldown"], got["cache_ttl"]) == (True, 60, 5)
    listed = assert_ok(api.get(GW, params={"search": gateway_id}))
    assert listed[0]["key_failover"] is True


@pytest.mark.parametrize(("payload", "field"), [
    ({"key_failover": "yes"}, "key_failover"),
    ({"key_failover": 1}, "key_failover"),
    ({"key_failover": None}, "key_failover"),
    ({"key_failover_quota_cooldown": 0}, "key_failover_quota_cooldown"),
    ({"key_failover_quota_cooldown": 2_592_001}, "key_failover_quota_cooldown"),
    ({"key_failover_quota_cooldown": "60"}, "key_failover_quota_cooldown"),
    ({"key_failover_quota_cooldown": 1.5}, "key_failover_quota_cooldown"),
    ({"key_failover_quota_cooldown": None}, "key_failover_quota_cooldown"),
], ids=["string", "int", "null", "zero", "over-30-days", "string-number", "fraction", "null-cooldown"])
def test_wrong_values_are_refused_naming_the_field(api: httpx.Client, gateway: str, payload: dict[str, Any],
                                                   field: str) -> None:
    before = assert_ok(api.get(f"{GW}/{gateway}"))
    assert_v4_error(api.put(f"{GW}/{gateway}", json=payload), 400, 7001, path=["body", field])
    assert_v4_error(api.post(GW, json={"id": f"pool-{secrets.token_hex(3)}", **payload}), 400, 7001,
                    path=["body", field])
    assert assert_ok(api.get(f"{GW}/{gateway}")) == before


def test_the_cloudflare_sdk_sets_it_through_extra_body(cf, server: Server) -> None:  # type: ignore[no-untyped-def]
    account, gateway_id = server.account_id, f"pool-{secrets.token_hex(3)}"
    required = {"cache_invalidate_on_update": False, "cache_ttl": 0, "collect_logs": True,
                "rate_limiting_interval": 0, "rate_limiting_limit": 0}
    made = cf.ai_gateway.create(account_id=account, id=gateway_id, **required,
                                extra_body={"key_failover": True, "key_failover_quota_cooldown": 600})
    assert made.to_dict()["key_failover"] is True
    updated = cf.ai_gateway.update(gateway_id, account_id=account, **required,
                                   extra_body={"key_failover": False})
    got = cf.ai_gateway.get(gateway_id, account_id=account).to_dict()
    assert (updated.to_dict()["key_failover"], got["key_failover"], got["key_failover_quota_cooldown"]) == (
        False, False, 600)
