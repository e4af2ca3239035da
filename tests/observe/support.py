"""Building Exchanges and small databases for observability tests."""

from __future__ import annotations

import time
from typing import Any

from ulid import ULID

from sluice.exchange import Exchange
from sluice.providers.usage import Usage
from sluice.store import queries
from sluice.store.database import Database, open_database
from tests.support.backend import database_url_for

ACCOUNT = "a" * 32


def exchange(gateway_id: str = "gw", *, account_id: str = ACCOUNT, started_at: float | None = None,
             tokens: tuple[int | None, int | None] | None = (10, 5), model: str | None = "mock-model",
             headers: dict[str, str] | None = None, **fields: Any) -> Exchange:
    """A completed, successful request as the data plane would hand it over."""
    at = time.time() if started_at is None else started_at
    values: dict[str, Any] = dict(
        log_id=str(ULID.from_timestamp(at)), account_id=account_id, gateway_id=gateway_id, provider="openai",
        method="POST", path="chat/completions", started_at=at, duration_ms=12, status_code=200, success=True,
        request_headers={"content-type": "application/json", **(headers or {})},
        request_body=b'{"model":"mock-model","messages":[]}', request_size=37,
        response_body=b'{"id":"x","model":"mock-model"}', response_size=31,
        response_content_type="application/json", model=model,
        usage=Usage(model, *tokens) if tokens is not None else None,
    )
    values.update(fields)
    return Exchange(**values)


async def sqlite_db(path: Any, *gateways: str | tuple[str, dict]) -> Database:
    """A migrated SQLite database with the test account and the given gateways (id or (id, settings))."""
    db = await open_database(f"sqlite:///{path}")
    await add_gateways(db, *gateways)
    return db


async def suite_db(path: Any, *gateways: str | tuple[str, dict]) -> Database:
    """Like ``sqlite_db``, on the suite's backend: a fresh PostgreSQL database under
    ``SLUICE_TEST_BACKEND=postgres`` (tests/support/backend.py), else SQLite at ``path``."""
    db = await open_database(await database_url_for(path))
    await add_gateways(db, *gateways)
    return db


async def add_gateways(db: Database, *gateways: str | tuple[str, dict], account_id: str = ACCOUNT) -> None:
    async with db.begin() as conn:
        if await queries.get_account(conn, account_id) is None:
            await queries.insert_account(conn, account_id, "test")
        for item in gateways:
            gateway_id, body = (item, {}) if isinstance(item, str) else item
            await queries.insert_gateway(conn, account_id, gateway_id, body)


async def add_config(db: Database, config_id: str, gateway_id: str = "gw", *,
                     account_id: str = ACCOUNT) -> None:
    """A provider config row (activity is kept only for configs that exist)."""
    stamp = "2026-01-01T00:00:00.000Z"
    async with db.begin() as conn:
        await queries.insert_config(conn, {
            "id": config_id, "account_id": account_id, "gateway_id": gateway_id, "provider_slug": "openai",
            "alias": config_id[:8], "default_config": False, "secret_id": "s" * 32, "rate_limit": None,
            "rate_limit_period": 60, "created_at": stamp, "modified_at": stamp})
