"""Credential selection (docs/gateway.md#credentials-in-this-order) as a pure function over in-memory
state."""

from __future__ import annotations

import pytest

from sluice.errors import GatewayError
from sluice.identity.credentials import hash_value
from sluice.providers.registry import load_catalog
from sluice.proxy.credentials import choose
from sluice.proxy.state import GatewayState, ProviderKeys, StoredKey, TokenState, provider_keys

CATALOG = load_catalog({})
OPENAI, ANTHROPIC, BEDROCK = CATALOG["openai"], CATALOG["anthropic"], CATALOG["aws-bedrock"]
ACCOUNT = "a" * 32
NOW = 1_000_000.0
GOOD, READER, OTHER, EXPIRED, DISABLED = (f"sluice_{n}" for n in ("good", "reader", "other", "expired",
                                                                  "disabled"))
TOKENS = {
    hash_value(GOOD): TokenState("t1", ACCOUNT, True, True, None),
    hash_value(READER): TokenState("t2", ACCOUNT, False, True, None),
    hash_value(OTHER): TokenState("t3", "b" * 32, True, True, None),
    hash_value(EXPIRED): TokenState("t4", ACCOUNT, True, True, NOW - 1),
    hash_value(DISABLED): TokenState("t5", ACCOUNT, True, False, None),
}


def key(alias: str, provider=OPENAI) -> StoredKey:  # type: ignore[no-untyped-def]
    return StoredKey(f"cfg-{alias}", alias, provider.slug, provider.auth_header,
                     provider.auth_value(f"sk-{alias}"),
                     0, 60)


def gateway(authentication: bool = False, keys: dict | None = None) -> GatewayState:
    if keys is None:
        keys = {"openai": ProviderKeys({"main": key("main"), "backup": key("backup")}, key("main"))}
    return GatewayState(ACCOUNT, "gw", authentication, True, 0, 0, "fixed", 1, 0, "constant", keys)


def pick(control: dict[str, str], gw: GatewayState | None = None, provider=OPENAI):  # type: ignore[no-untyped-def]
    return choose(gw or gateway(), provider, control, TOKENS, NOW)


def code(control: dict[str, str], gw: GatewayState | None = None, provider=OPENAI) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        pick(control, gw, provider)
    return caught.value.internal_code


def test_default_key_and_alias() -> None:
    assert pick({}).key.alias == "main"
    assert pick({"cf-aig-byok-alias": "backup"}).key.alias == "backup"
    assert pick({"authorization": "Bearer "}).key.alias == "main"  # a bare scheme counts as absent
    assert code({"cf-aig-byok-alias": "nope"}) == 2006


def test_own_key_wins_over_stored_keys() -> None:
    chosen = pick({"authorization": "Bearer sk-own", "cf-aig-byok-alias": "nope"})
    assert chosen.key is None and chosen.token_id is None


def test_gateway_token_as_provider_key_authenticates_and_selects_a_stored_key() -> None:
    chosen = pick({"authorization": f"Bearer {GOOD}"}, gateway(authentication=True))
    assert chosen.key.alias == "main" and chosen.token_id == "t1"
    assert pick({"x-api-key": GOOD}, gateway(keys={"anthropic": ProviderKeys({}, key("d", ANTHROPIC))}),
                ANTHROPIC).key.alias == "d"
    for bad in (READER, OTHER, EXPIRED, DISABLED, "sluice_unknown"):
        assert code({"authorization": f"Bearer {bad}"}) == 2009  # verified even when the gateway is open


def test_gateway_authentication() -> None:
    closed = gateway(authentication=True)
    assert code({}, closed) == 2009
    assert code({"authorization": "Bearer sk-own"}, closed) == 2009  # a provider key is not gateway auth
    assert pick({"cf-aig-authorization": f"Bearer {GOOD}"}, closed).token_id == "t1"
    assert pick({"cf-aig-authorization": GOOD}, closed).token_id == "t1"  # scheme optional
    assert code({"cf-aig-authorization": f"Bearer {READER}"}, closed) == 2009
    assert code({"cf-aig-authorization": "Bearer not-a-sluice-token"}, closed) == 2009
    own = pick({"cf-aig-authorization": f"Bearer {GOOD}", "authorization": "Bearer sk-own"}, closed)
    assert own.key is None and own.token_id == "t1"
    # an open gateway ignores cf-aig-authorization entirely
    assert pick({"cf-aig-authorization": "Bearer junk"}).key.alias == "main"


def test_no_credentials() -> None:
    assert code({}, gateway(keys={})) == 2005
    assert code({}, gateway(keys={"openai": ProviderKeys({"x": key("x")}, None)})) == 2005
    assert code({}, gateway(), BEDROCK) == 2005  # client-signed only
    assert pick({"authorization": "AWS4-HMAC-SHA256 Credential=..."}, gateway(), BEDROCK).key is None


def test_provider_keys_default_selection() -> None:
    rows = [
        {"id": "1", "provider_slug": "openai", "alias": "default", "default_config": False, "secret_id": "s1",
         "rate_limit": None, "rate_limit_period": 60},
        {"id": "2", "provider_slug": "openai", "alias": "main", "default_config": True, "secret_id": "s2",
         "rate_limit": 5, "rate_limit_period": 10},
        {"id": "3", "provider_slug": "anthropic", "alias": "default", "default_config": False,
         "secret_id": "s3",
         "rate_limit": None, "rate_limit_period": 60},
        {"id": "4", "provider_slug": "groq", "alias": "default", "default_config": True, "secret_id": "gone",
         "rate_limit": None, "rate_limit_period": 60},
    ]
    keys = provider_keys(rows, {"s1": "k1", "s2": "k2", "s3": "k3"}, CATALOG)
    assert keys["openai"].default.alias == "main" and keys["openai"].default.rate_limit == 5
    assert keys["openai"].default.auth_value == "Bearer k2"
    default = keys["anthropic"].default
    assert default.alias == "default" and default.auth_header == "x-api-key"
    assert "groq" not in keys  # a key that could not be decrypted is simply unavailable
    assert "k2" not in repr(keys)  # plaintext never shows in a repr
