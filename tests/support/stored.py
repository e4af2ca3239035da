"""Reading a server's stored secrets straight from its database, to prove what was sealed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sluice.secrets import keyfile, vault
from sluice.settings import load_settings
from sluice.store.database import open_database
from sluice.store import queries


async def read_secret_values(data_dir: Path, secret_ids: list[str]) -> dict[str, str]:
    """Decrypt the given secrets with the data dir's key file; missing ids are absent from the result."""
    settings = load_settings({}, data_dir=data_dir)
    db = await open_database(settings.database_url)
    try:
        async with db.begin() as conn:
            rows = await queries.sealed_secrets(conn, secret_ids)
    finally:
        await db.close()
    keyring = keyfile.load_keyring(settings)
    return {row["id"]: vault.open_row(keyring, row) for row in rows}


def secret_value(data_dir: Path, secret_id: str) -> str | None:
    return asyncio.run(read_secret_values(data_dir, [secret_id])).get(secret_id)


async def _update_token(data_dir: Path, token_id: str, values: dict[str, str | None]) -> None:
    settings = load_settings({}, data_dir=data_dir)
    db = await open_database(settings.database_url)
    try:
        async with db.begin() as conn:
            await queries.update_token(conn, token_id, values)
    finally:
        await db.close()


def age_token(data_dir: Path, token_id: str, expires_on: str) -> None:
    """Move a token's expiry straight in the database: the API refuses an expiry in the past, and a
    running server's clock cannot be moved, so this is how a test makes a token that has expired."""
    asyncio.run(_update_token(data_dir, token_id, {"expires_on": expires_on}))
