"""proxy/pools.py without a server: when failover applies, which key a request starts with, which it
moves to, and that a rotation (config or secret changed) brings a key back."""

from __future__ import annotations

import dataclasses
from typing import Any

from sluice.keyhealth import AUTH, COOLING, FAILED, QUOTA, RATE_LIMITED, KeyHealth, Verdict
from sluice.providers.registry import load_catalog
from sluice.proxy import pools
from sluice.proxy.state import AccountState, build_account

NOW = 1_800_000_000.0
CATALOG = load_catalog({})


class Clock:
    at = NOW

    def __call__(self) -> float:
        return self.at


def _account(*configs: dict[str, Any], failover: bool = True) -> AccountState:
    gateway = {"account_id": "acc", "id": "gw", "authentication": False, "key_failover": failover}
    rows, plaintext = [], {}
    for n, config in enumerate(configs):
        row = {"id": f"c{n}", "gateway_id": "gw", "provider_slug": "openai", "secret_id": f"s{n}",
               "default_config": False, "modified_at": "2026-01-01T00:00:00.000Z", **config}
        plaintext[row["secret_id"]] = row.pop("secret", f"sk-{n}")
        rows.append(row)
    return build_account([gateway], rows, plaintext, [], CATALOG)


def _three(**kw: Any) -> AccountState:
    return _account({"alias": "a"}, {"alias": "main", "default_config": True}, {"alias": "c"}, **kw)


def test_pool_is_the_default_first_then_by_creation() -> None:
    keys = _three().gateways["gw"].keys["openai"]
    assert [k.alias for k in keys.pool] == ["main", "a", "c"]
    assert keys.default is not None and keys.default.alias == "main"


def test_failover_applies_only_when_asked_unpinned_and_with_a_choice() -> None:
    gateway = _three().gateways["gw"]
    default = gateway.keys["openai"].default
    assert pools.pool_for(gateway, "openai", {}, default) == gateway.keys["openai"].pool
    assert pools.pool_for(gateway, "openai", {"cf-aig-byok-alias": "a"}, default) is None  # pinned
    assert pools.pool_for(gateway, "openai", {}, None) is None  # the caller's own key
    assert pools.pool_for(gateway, "anthropic", {}, default) is None  # no keys for that provider
    off = _three(failover=False).gateways["gw"]
    assert pools.pool_for(off, "openai", {}, default) is None
    single = _account({"alias": "default"}).gateways["gw"]
    assert pools.pool_for(single, "openai", {}, single.keys["openai"].default) is None


def test_first_and_others_skip_keys_that_are_out() -> None:
    pool = _three().gateways["gw"].keys["openai"].pool
    main, a, c = pool
    clock = Clock()
    health = KeyHealth(clock)
    assert pools.first(pool, health) is main
    assert pools.others(pool, main, health) == [a, c]
    health.apply(main.config_id, "openai", Verdict(COOLING, RATE_LIMITED, 5.0))
    assert pools.first(pool, health) is a
    assert pools.others(pool, a, health) == [c]
    health.apply(a.config_id, "openai", Verdict(FAILED, AUTH))
    assert pools.first(pool, health) is c and pools.others(pool, c, health) == []
    clock.at = NOW + 5
    assert pools.first(pool, health) is main  # its cool-down is over
    assert pools.others(pool, main, health) == [c]


def test_when_every_key_is_out_the_first_back_is_tried_and_a_failed_key_last() -> None:
    pool = _three().gateways["gw"].keys["openai"].pool
    main, a, c = pool
    health = KeyHealth(Clock())
    health.apply(main.config_id, "openai", Verdict(FAILED, AUTH))
    health.apply(a.config_id, "openai", Verdict(COOLING, QUOTA, 3600.0))
    health.apply(c.config_id, "openai", Verdict(COOLING, RATE_LIMITED, 30.0))
    assert pools.first(pool, health) is c
    health.apply(c.config_id, "openai", Verdict(FAILED, AUTH))
    assert pools.first(pool, health) is a
    health.apply(a.config_id, "openai", Verdict(FAILED, AUTH))
    assert pools.first(pool, health) is main


def test_a_rotated_or_deleted_key_loses_its_mark_and_others_keep_theirs() -> None:
    old = _three()
    health = KeyHealth(Clock())
    for config_id in ("c0", "c1", "c2"):
        health.apply(config_id, "openai", Verdict(FAILED, AUTH))
    same = _three()
    pools.forget_rotated(health, old, same)  # a reload that changed nothing
    assert sorted(health.marked()) == ["c0", "c1", "c2"]
    rotated = _account({"alias": "a", "secret": "sk-new"}, {"alias": "main", "default_config": True})
    pools.forget_rotated(health, old, rotated)  # c0's secret changed, c2 was deleted
    assert health.marked() == ["c1"]
    updated = _account({"alias": "a"}, {"alias": "main", "default_config": True,
                                         "modified_at": "2026-02-01T00:00:00.000Z"})
    pools.forget_rotated(health, rotated, updated)  # c1's config was updated
    assert health.marked() == []


def test_forget_rotated_without_marks_or_a_previous_state_does_nothing() -> None:
    health = KeyHealth(Clock())
    pools.forget_rotated(health, None, _three())
    health.apply("c0", "openai", Verdict(FAILED, AUTH))
    pools.forget_rotated(health, None, _three())
    assert health.marked() == ["c0"]
    pools.forget_rotated(health, _three(), None)  # the account is gone
    assert health.marked() == []
    assert dataclasses.is_dataclass(_three().gateways["gw"])
