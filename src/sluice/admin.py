"""Operations behind the CLI that work directly on the database (no server needed)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson

from sluice.clock import new_id
from sluice.control.schemas import token_wire
from sluice.control.tokens import token_row
from sluice.identity.credentials import new_token
from sluice.identity.permissions import ALL_GROUPS
from sluice.secrets.crypto import Keyring, Sealed, associated_data
from sluice.secrets.keyfile import _read_file, load_keyring, write_key_file
from sluice.settings import Settings
from sluice.store import queries
from sluice.store.database import open_database


async def create_token(settings: Settings, account_id: str, name: str,
                       permissions: list[str]) -> dict[str, Any]:
    unknown = [p for p in permissions if p not in ALL_GROUPS]
    if unknown:
        raise ValueError(f"unknown permission {unknown[0]!r}; known: {', '.join(ALL_GROUPS)}")
    db = await open_database(settings.database_url)
    try:
        async with db.begin() as conn:
            if await queries.get_account(conn, account_id) is None:
                raise ValueError(f"no account {account_id}")
            value = new_token()
            row = await queries.insert_token(conn,
                                             token_row(account_id, name, value, sorted(set(permissions))))
            await queries.record_change(conn, account_id, "token")
        return {"id": row["id"], "name": name, "value": value,
                "permissions": orjson.loads(row["permissions"])}
    finally:
        await db.close()


async def list_tokens(settings: Settings, account_id: str | None) -> list[dict[str, Any]]:
    db = await open_database(settings.database_url)
    try:
        async with db.begin() as conn:
            rows, _ = await queries.list_tokens(conn, account_id)
        return [{**token_wire(r), "account_id": r["account_id"]} for r in rows]
    finally:
        await db.close()


async def revoke_token(settings: Settings, token_id: str) -> bool:
    db = await open_database(settings.database_url)
    try:
        async with db.begin() as conn:
            rows, _ = await queries.list_tokens(conn, None)
            match = [r for r in rows if r["id"] == token_id]
            if not match:
                return False
            await queries.delete_token(conn, token_id)
            await queries.record_change(conn, match[0]["account_id"], "token")
        return True
    finally:
        await db.close()


async def create_account(settings: Settings, name: str) -> dict[str, Any]:
    db = await open_database(settings.database_url)
    try:
        async with db.begin() as conn:
            return await queries.insert_account(conn, new_id(), name)
    finally:
        await db.close()


async def list_accounts(settings: Settings) -> list[dict[str, Any]]:
    db = await open_database(settings.database_url)
    try:
        async with db.begin() as conn:
            return await queries.list_accounts(conn)
    finally:
        await db.close()


async def _rewrap_all(db: Any, keyring: Keyring) -> int:
    """Re-wrap, in small transactions, every row not yet under the active KEK; returns how many."""
    done = 0
    async with db.begin() as conn:
        rows = [r for r in await queries.sealed_secrets(conn) if r["kek_id"] != keyring.active_id]
    for row in rows:
        async with db.begin() as conn:
            current = await queries.sealed_secrets(conn, [row["id"]])
            if not current or current[0]["kek_id"] == keyring.active_id:
                continue
            cur = current[0]
            sealed = Sealed(cur["kek_id"], bytes(cur["wrapped_key"]), bytes(cur["ciphertext"]))
            fresh = keyring.rewrap(sealed, associated_data(cur["account_id"], cur["store_id"], cur["id"]))
            await queries.update_secret(conn, cur["id"],
                                        {"kek_id": fresh.kek_id, "wrapped_key": fresh.wrapped_key,
                                                          "ciphertext": fresh.ciphertext})
            done += 1
    return done


async def rotate_master_key(settings: Settings) -> dict[str, Any]:
    """Key file: prepend a new KEK, tell servers (change feed), re-wrap until no row uses an old KEK.
    SLUICE_MASTER_KEY: re-wrap under its first key (deploy "NEW,OLD" to every server first)."""
    if settings.master_key:
        keyring = Keyring(settings.master_key)
    else:
        keys = _read_file(settings.key_file)
        load_keyring(settings)  # checks the file mode
        keyring = Keyring((os.urandom(32), *keys))
        write_key_file(settings.key_file, keyring.keys)
    db = await open_database(settings.database_url)
    try:
        async with db.begin() as conn:
            for account in await queries.list_accounts(conn):
                await queries.record_change(conn, account["id"], "kek")
        # Servers reload the key file within their poll interval; rows they seal before that use the
        # old KEK, so sweep again after they have had time to switch.
        rewrapped = await _rewrap_all(db, keyring)
        await asyncio.sleep(max(1.0, settings.change_poll_interval_s * 3))
        rewrapped += await _rewrap_all(db, keyring)
        async with db.begin() as conn:
            usage = await queries.kek_usage(conn)
    finally:
        await db.close()
    return {"active_kek_id": keyring.active_id, "rewrapped": rewrapped, "secrets_per_kek": usage}


async def master_key_status(settings: Settings) -> dict[str, Any]:
    keyring = load_keyring(settings)
    db = await open_database(settings.database_url)
    try:
        async with db.begin() as conn:
            usage = await queries.kek_usage(conn)
    finally:
        await db.close()
    return {"source": "SLUICE_MASTER_KEY" if settings.master_key else str(settings.key_file),
            "active_kek_id": keyring.active_id, "loaded_kek_ids": list(keyring.ids), "secrets_per_kek": usage}
