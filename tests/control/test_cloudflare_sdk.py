"""The official ``cloudflare`` SDK (unmodified, base_url pointed at Sluice) drives the management API."""

from __future__ import annotations

import secrets

import cloudflare
import pytest

from tests.conftest import unique_id
from tests.support.server import Server


def _create_gateway(cf, account_id: str, gateway_id: str):  # type: ignore[no-untyped-def]
    return cf.ai_gateway.create(account_id=account_id, id=gateway_id, cache_invalidate_on_update=False,
                                cache_ttl=300, collect_logs=True, rate_limiting_interval=60,
                                rate_limiting_limit=100)


def test_gateway_lifecycle_through_sdk(cf, server: Server) -> None:  # type: ignore[no-untyped-def]
    account = server.account_id
    gateway_id = unique_id("sdk")
    created = _create_gateway(cf, account, gateway_id)
    assert created.id == gateway_id and created.cache_ttl == 300 and created.rate_limiting_limit == 100
    assert created.created_at is not None and created.modified_at is not None

    listed = [g.id for g in cf.ai_gateway.list(account_id=account, search=gateway_id)]
    assert listed == [gateway_id]
    assert cf.ai_gateway.get(gateway_id, account_id=account).collect_logs is True

    updated = cf.ai_gateway.update(gateway_id, account_id=account, cache_invalidate_on_update=True,
                                   cache_ttl=60,
                                   collect_logs=False, rate_limiting_interval=10, rate_limiting_limit=5,
                                   rate_limiting_technique="sliding")
    assert (updated.cache_ttl, updated.collect_logs) == (60, False)
    assert updated.rate_limiting_technique == "sliding"
    assert cf.ai_gateway.get(gateway_id, account_id=account).rate_limiting_limit == 5

    deleted = cf.ai_gateway.delete(gateway_id, account_id=account)
    assert deleted.id == gateway_id
    with pytest.raises(cloudflare.NotFoundError):
        cf.ai_gateway.get(gateway_id, account_id=account)


def test_duplicate_gateway_is_a_conflict_not_retried(cf, server: Server) -> None:  # type: ignore[no-untyped-def]
    gateway_id = unique_id("sdk")
    _create_gateway(cf, server.account_id, gateway_id)
    with pytest.raises(cloudflare.ConflictError) as info:
        _create_gateway(cf, server.account_id, gateway_id)
    assert info.value.status_code == 409


def test_provider_config_create_and_list_through_sdk(cf, server: Server, gateway: str) -> None:  # type: ignore[no-untyped-def]
    key = "sk-sdk-" + secrets.token_hex(16)
    created = cf.ai_gateway.provider_configs.create(gateway, account_id=server.account_id, alias="prod",
                                                    default_config=True, provider_slug="openai", secret=key,
                                                    rate_limit=10, rate_limit_period=60)
    assert created.alias == "prod" and created.default_config is True and created.gateway_id == gateway
    assert created.provider_slug == "openai" and len(created.id) == 32 and created.secret_id
    assert key not in created.secret_preview
    listed = list(cf.ai_gateway.provider_configs.list(gateway, account_id=server.account_id))
    assert [c.id for c in listed] == [created.id]
    assert listed[0].rate_limit == 10 and listed[0].rate_limit_period == 60


def test_sdk_validation_error_is_a_bad_request(cf, server: Server, gateway: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(cloudflare.BadRequestError) as info:
        cf.ai_gateway.provider_configs.create(gateway, account_id=server.account_id, alias="bad alias!",
                                              default_config=False, provider_slug="openai",
                                              secret="sk-x-123456")
    assert info.value.status_code == 400
    assert any(e.get("path") == ["body", "alias"] for e in info.value.body["errors"])  # type: ignore[index]


def test_sdk_auto_pagination_returns_each_config_once(cf, server: Server, gateway: str) -> None:  # type: ignore[no-untyped-def]
    ids = []
    for index in range(45):
        ids.append(cf.ai_gateway.provider_configs.create(
            gateway, account_id=server.account_id, alias=f"key-{index:02d}", default_config=False,
            provider_slug="anthropic", secret=f"sk-ant-{index:02d}-" + secrets.token_hex(8)).id)
    seen = [c.id for c in cf.ai_gateway.provider_configs.list(gateway, account_id=server.account_id,
                                                              per_page=7)]
    assert seen == ids  # every config, exactly once, in creation order, and the iteration stopped
    first = cf.ai_gateway.provider_configs.list(gateway, account_id=server.account_id, per_page=7)
    assert len(first.result) == 7 and first.result_info.total_count == 45  # type: ignore[union-attr]


def test_gateway_list_auto_paginates(cf, server: Server) -> None:  # type: ignore[no-untyped-def]
    prefix = "pg" + secrets.token_hex(3)
    made = [f"{prefix}-{i}" for i in range(5)]
    for gateway_id in made:
        _create_gateway(cf, server.account_id, gateway_id)
    assert [g.id for g in cf.ai_gateway.list(account_id=server.account_id, search=prefix, per_page=2)] == made


def test_secrets_store_through_sdk(cf, server: Server) -> None:  # type: ignore[no-untyped-def]
    account = server.account_id
    store = cf.secrets_store.stores.create(account_id=account, name="sdk-" + secrets.token_hex(4))
    assert store is not None and store.name.startswith("sdk-")
    assert store.id in [s.id for s in cf.secrets_store.stores.list(account_id=account)]
    assert cf.secrets_store.stores.get(store.id, account_id=account).id == store.id  # type: ignore[union-attr]

    value = "sdk-secret-" + secrets.token_hex(16)
    created = list(cf.secrets_store.stores.secrets.create(
        store.id, account_id=account, body=[{"name": "api_key", "value": value, "scopes": ["ai_gateway"],
                                             "comment": "from the sdk"}]))
    assert [s.name for s in created] == ["api_key"]
    secret_id = created[0].id
    got = cf.secrets_store.stores.secrets.get(secret_id, account_id=account, store_id=store.id)
    assert got.comment == "from the sdk" and value not in got.model_dump_json()  # type: ignore[union-attr]
    edited = cf.secrets_store.stores.secrets.edit(secret_id, account_id=account, store_id=store.id,
                                                  comment="edited", scopes=["ai_gateway", "workers"])
    assert edited.comment == "edited"  # type: ignore[union-attr]
    dup = cf.secrets_store.stores.secrets.duplicate(secret_id, account_id=account, store_id=store.id,
                                                    name="api_key_copy", scopes=["ai_gateway"])
    assert dup.name == "api_key_copy"  # type: ignore[union-attr]
    names = sorted(s.name for s in cf.secrets_store.stores.secrets.list(store.id, account_id=account))
    assert names == ["api_key", "api_key_copy"]
    quota = cf.secrets_store.quota.get(account_id=account)
    assert quota is not None and quota.secrets.usage >= 2  # type: ignore[union-attr]
    cf.secrets_store.stores.secrets.delete(dup.id, account_id=account, store_id=store.id)  # type: ignore[union-attr]
    with pytest.raises(cloudflare.ConflictError):
        cf.secrets_store.stores.delete(store.id, account_id=account)
    cf.secrets_store.stores.delete(store.id, account_id=account, force=True)
    with pytest.raises(cloudflare.NotFoundError):
        cf.secrets_store.stores.get(store.id, account_id=account)


def test_unset_rate_limit_reads_back_as_null(cf, api, server: Server,  # type: ignore[no-untyped-def]
                                             gateway: str) -> None:
    """The SDK types a provider config's rate_limit optional: never set (or set to null) it is null, not 0."""
    unset = cf.ai_gateway.provider_configs.create(gateway, account_id=server.account_id, alias="unset",
                                                  default_config=False, provider_slug="openai",
                                                  secret="sk-unset-" + secrets.token_hex(8))
    zero = cf.ai_gateway.provider_configs.create(gateway, account_id=server.account_id, alias="zero",
                                                 default_config=False, provider_slug="openai",
                                                 secret="sk-zero-" + secrets.token_hex(8), rate_limit=0)
    assert (unset.rate_limit, zero.rate_limit) == (None, 0)
    configs = cf.ai_gateway.provider_configs.list(gateway, account_id=server.account_id)
    listed = {c.alias: c.rate_limit for c in configs}
    assert listed == {"unset": None, "zero": 0}
    url = f"/ai-gateway/gateways/{gateway}/provider_configs/{zero.id}"
    assert api.put(url, json={"rate_limit": 5}).json()["result"]["rate_limit"] == 5
    assert api.put(url, json={"rate_limit": None}).json()["result"]["rate_limit"] is None
