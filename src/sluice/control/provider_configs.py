"""Provider configs API: stored provider keys under an alias (docs/api.md, Provider configs)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from sluice import envelope
from sluice.clock import new_id, now, rfc3339
from sluice.control.common import authorized, is_account_custom_provider, require_gateway, services
from sluice.control.schemas import ProviderConfigCreate, ProviderConfigUpdate, config_wire, key_state_wire
from sluice.control.validation import paging, parse_model, read_json, require_object
from sluice.errors import Conflict, NotFound, ValidationError
from sluice.providers.custom import is_custom
from sluice.secrets import vault
from sluice.store import queries


async def _gateway_store(conn: AsyncConnection, account_id: str, gateway: dict[str, Any]) -> dict[str, Any]:
    """The gateway's secrets store; without one, the account's default store, recorded on the gateway."""
    if gateway.get("store_id"):
        store = await queries.get_store(conn, account_id, gateway["store_id"])
        if store is not None:
            return store
    store = await vault.default_store(conn, account_id)
    body = {k: v for k, v in gateway.items() if k not in ("id", "account_id", "created_at", "modified_at")}
    await queries.update_gateway(conn, account_id, gateway["id"], {**body, "store_id": store["id"]})
    return store


def _is_ai_gateway_secret(secret: dict[str, Any]) -> bool:
    return "ai_gateway" in orjson.loads(secret["scopes"])


async def _resolve_secret(conn: AsyncConnection, request: Request, account_id: str, gateway: dict[str, Any],
                          body: ProviderConfigCreate, config_id: str) -> str:
    """The four secret sources (docs/api.md, Provider configs); returns the secret id the config points at."""
    keyring = services(request).keyring
    if body.secret_id is not None:
        secret = await queries.get_secret(conn, account_id, body.secret_id)
        if secret is None:
            raise ValidationError("secret_id: no secret with this id in this account",
                                  path=["body", "secret_id"])
        if not _is_ai_gateway_secret(secret):
            raise ValidationError("secret_id: the secret lacks the ai_gateway scope",
                                  path=["body", "secret_id"])
        if body.secret is not None:
            await vault.replace_value(conn, keyring, secret, body.secret)
        return secret["id"]
    store = await _gateway_store(conn, account_id, gateway)
    name = f"{gateway['id']}_{body.provider_slug}_{body.alias}"
    existing = await queries.secret_by_name(conn, store["id"], name)
    if body.secret is not None:
        if existing is not None:
            raise Conflict(f"a secret named {name!r} already exists in store {store['id']}; "
                           "pass its id as secret_id to use or rotate it")
        created = await vault.create_secret(conn, keyring, account_id=account_id, store_id=store["id"],
                                            name=name,
                                            value=body.secret, scopes=["ai_gateway"], created_by=config_id)
        return created["id"]
    if existing is None or not _is_ai_gateway_secret(existing):
        raise ValidationError(
            f"secret: no secret given, and no secret named {name!r} with scope ai_gateway exists in the "
            "gateway's secrets store; send secret or secret_id", path=["body", "secret"])
    return existing["id"]


async def _require_custom_provider(conn: AsyncConnection, account_id: str, slug: str) -> None:
    """A ``custom-{slug}`` config needs that custom provider in the account (deleting one that configs
    use is refused, so the two stay consistent: both run under the key-write lock)."""
    if is_custom(slug) and not await is_account_custom_provider(conn, account_id, slug):
        raise ValidationError("provider_slug: no custom provider with this slug in this account",
                              path=["body", "provider_slug"])


async def create_config(request: Request) -> Response:
    gateway_id = request.path_params["gateway_id"]
    async with authorized(request) as (account_id, conn, _):
        body = parse_model(ProviderConfigCreate, require_object(await read_json(request)))
        await queries.lock_key_writes(conn, account_id)
        gateway = await require_gateway(conn, account_id, gateway_id)
        await _require_custom_provider(conn, account_id, body.provider_slug)
        if await queries.config_by_alias(conn, account_id, gateway_id, body.provider_slug, body.alias):
            raise Conflict(f"alias {body.alias!r} already exists for provider {body.provider_slug!r} "
                           "on this gateway")
        config_id = new_id()
        secret_id = await _resolve_secret(conn, request, account_id, gateway, body, config_id)
        stamp = rfc3339(now())
        await queries.insert_config(conn, {
            "id": config_id, "account_id": account_id, "gateway_id": gateway_id,
            "provider_slug": body.provider_slug, "alias": body.alias, "default_config": body.default_config,
            "secret_id": secret_id, "rate_limit": body.rate_limit,
            "rate_limit_period": body.rate_limit_period or 60, "created_at": stamp, "modified_at": stamp,
        })
        if body.default_config:
            await queries.demote_defaults(conn, account_id, gateway_id, body.provider_slug, config_id)
        await queries.record_change(conn, account_id, "provider_config")
        row = await queries.get_config(conn, account_id, gateway_id, config_id)
    await services(request).on_change(account_id)
    return envelope.ok(config_wire(row))  # type: ignore[arg-type]


async def list_configs(request: Request) -> Response:
    gateway_id = request.path_params["gateway_id"]
    async with authorized(request) as (account_id, conn, _):
        page, per_page = paging(request)
        await require_gateway(conn, account_id, gateway_id)
        rows, total = await queries.list_configs(conn, account_id, gateway_id, page, per_page)
    wire = [_with_activity(request, config_wire(r)) for r in rows]
    return envelope.ok(wire, result_info=envelope.page_info(page, per_page, len(rows), total))


def _with_activity(request: Request, wire: dict[str, Any]) -> dict[str, Any]:
    """Adds last_used_at / counts when the activity tracker is running (request logs feature), and
    the key's state in its pool (key pools)."""
    activity = services(request).activity
    annotated = activity.annotate(wire) if activity is not None else wire
    return {**annotated, **key_state_wire(services(request).key_health.mark(wire["id"]))}


async def _config(conn: AsyncConnection, request: Request, account_id: str) -> dict[str, Any]:
    gateway_id, config_id = request.path_params["gateway_id"], request.path_params["config_id"]
    await require_gateway(conn, account_id, gateway_id)
    row = await queries.get_config(conn, account_id, gateway_id, config_id)
    if row is None:
        raise NotFound(f"provider config {config_id[:64]!r} not found")
    return row


async def get_config(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        row = await _config(conn, request, account_id)
    return envelope.ok(_with_activity(request, config_wire(row)))


async def update_config(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        body = parse_model(ProviderConfigUpdate, require_object(await read_json(request)))
        if not body.model_fields_set:
            raise ValidationError("body: send at least one of secret, rate_limit, rate_limit_period, "
                                  "default_config", path=["body"])
        await queries.lock_key_writes(conn, account_id)
        row = await _config(conn, request, account_id)
        if body.secret is not None:
            secret = await queries.get_secret(conn, account_id, row["secret_id"])
            if secret is None:
                raise NotFound("the config's secret no longer exists")
            await vault.replace_value(conn, services(request).keyring, secret, body.secret)
        values: dict[str, Any] = {"modified_at": rfc3339(now())}
        if "rate_limit" in body.model_fields_set:
            values["rate_limit"] = body.rate_limit  # null: unset again (unlimited), read back as null
        if "rate_limit_period" in body.model_fields_set:
            values["rate_limit_period"] = body.rate_limit_period or 60
        if body.default_config is not None:
            values["default_config"] = body.default_config
        await queries.update_config(conn, row["id"], values)
        if body.default_config:
            await queries.demote_defaults(conn, account_id, row["gateway_id"], row["provider_slug"],
                                          row["id"])
        await queries.record_change(conn, account_id, "provider_config")
        updated = await queries.get_config(conn, account_id, row["gateway_id"], row["id"])
        assert updated is not None  # updated above in this transaction, under the key-write lock
    await services(request).on_change(account_id)
    return envelope.ok(config_wire(updated))


async def delete_config(request: Request) -> Response:
    async with authorized(request) as (account_id, conn, _):
        await queries.lock_key_writes(conn, account_id)
        row = await _config(conn, request, account_id)
        await queries.delete_config(conn, row["id"])
        activity = services(request).activity
        if activity is not None:
            await activity.forget_config(conn, row["id"])
        if await queries.secret_references(conn, row["secret_id"]) == 0:
            await queries.delete_secret(conn, row["secret_id"])
        await queries.record_change(conn, account_id, "provider_config")
    await services(request).on_change(account_id)
    return envelope.ok(config_wire(row))
