"""Reading a server's stored secrets straight from its database, to prove what was sealed."""

from __future__ import annotations

import asyncio
from typing import Any

from sluice.clock import new_id, now, rfc3339
from sluice.secrets import keyfile, vault
from sluice.store import queries
from sluice.store.database import open_database
from tests.support.server import Server


def custom_provider_row(account_id: str, slug: str, **fields: Any) -> dict[str, Any]:
    """A complete ``custom_providers`` row with the API's defaults, for tests below the API."""
    from sluice.control.custom_schemas import CUSTOM_DEFAULTS, STORED_FIELDS

    stamp = rfc3339(now())
    return {**dict.fromkeys(STORED_FIELDS), **CUSTOM_DEFAULTS, "id": new_id(), "account_id": account_id,
            "slug": slug, "name": slug, "base_url": "http://127.0.0.1:9/v1", "header_names": None,
            "headers_secret_id": None, "created_at": stamp, "modified_at": stamp, **fields}


async def read_secret_values(server: Server, secret_ids: list[str]) -> dict[str, str]:
    """Decrypt the given secrets with the server's key; missing ids are absent from the result."""
    settings = server.settings()
    db = await open_database(settings.database_url)
    try:
        async with db.begin() as conn:
            rows = await queries.sealed_secrets(conn, secret_ids)
    finally:
        await db.close()
    keyring = keyfile.load_keyring(settings)
    return {row["id"]: vault.open_row(keyring, row) for row in rows}


def secret_value(server: Server, secret_id: str) -> str | None:
    return asyncio.run(read_secret_values(server, [secret_id])).get(secret_id)


async def _update_token(server: Server, token_id: str, values: dict[str, str | None]) -> None:
    db = await open_database(server.database_url)
    try:
        async with db.begin() as conn:
            await queries.update_token(conn, token_id, values)
    finally:
        await db.close()


def age_token(server: Server, token_id: str, expires_on: str) -> None:
    """Move a token's expiry straight in the database: the API refuses an expiry in the past, and a
    running server's clock cannot be moved, so this is how a test makes a token that has expired."""
    asyncio.run(_update_token(server, token_id, {"expires_on": expires_on}))


async def _postgres_bytes(url: str) -> bytes:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        columns = await conn.fetch("SELECT table_name, column_name, data_type "
                                   "FROM information_schema.columns WHERE table_schema = 'public' "
                                   "ORDER BY table_name, ordinal_position")
        parts: list[bytes] = []
        for column in columns:
            table, name = column["table_name"], column["column_name"]
            # bytea as its raw bytes (what a dump of the disk would show); everything else as text
            value = f'"{name}"' if column["data_type"] == "bytea" else f'"{name}"::text'
            for row in await conn.fetch(f'SELECT {value} AS v FROM "{table}" WHERE "{name}" IS NOT NULL'):
                parts.append(row["v"] if isinstance(row["v"], bytes) else row["v"].encode())
        return b"\n".join(parts)
    finally:
        await conn.close()


def database_bytes(server: Server) -> bytes:
    """Everything the server's database stores: on SQLite its files (with -wal and -shm), on
    PostgreSQL every column of every table, bytea raw and the rest as text."""
    if server.on_sqlite:
        return b"".join(path.read_bytes() for path in sorted(server.data_dir.glob("sluice.db*")))
    return asyncio.run(_postgres_bytes(server.database_url))


async def _execute(server: Server, sql: str, params: dict[str, object]) -> tuple[int, list[tuple]]:
    from sqlalchemy import text

    db = await open_database(server.database_url, migrate=False)
    try:
        async with db.begin() as conn:
            result = await conn.execute(text(sql), params)
            return result.rowcount, [tuple(row) for row in result.fetchall()] if result.returns_rows else []
    finally:
        await db.close()


def execute(server: Server, sql: str, **params: object) -> tuple[int, list[tuple]]:
    """One SQL statement (``:name`` parameters) on the server's database, SQLite or PostgreSQL:
    (rowcount, rows)."""
    return asyncio.run(_execute(server, sql, params))
