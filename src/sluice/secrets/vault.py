"""Secret rows: sealing values on write and opening them for the data plane. The only code that
turns plaintext into a stored row or back."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.clock import new_id, now, rfc3339
from sluice.secrets.crypto import Keyring, Sealed, associated_data, preview
from sluice.store import queries

DEFAULT_STORE_NAME = "default_secrets_store"


def sealed_columns(keyring: Keyring, account_id: str, store_id: str, secret_id: str,
                   value: str) -> dict[str, Any]:
    sealed = keyring.seal(value.encode("utf-8", "surrogatepass"),
                          associated_data(account_id, store_id, secret_id))
    return {"kek_id": sealed.kek_id, "wrapped_key": sealed.wrapped_key, "ciphertext": sealed.ciphertext,
            "preview": preview(value)}


async def create_secret(conn: AsyncConnection, keyring: Keyring, *, account_id: str, store_id: str, name: str,
                        value: str, scopes: list[str], comment: str | None = None,
                        created_by: str | None = None, secret_id: str | None = None) -> dict[str, Any]:
    secret_id = secret_id or new_id()
    stamp = rfc3339(now())
    row = {
        "id": secret_id, "account_id": account_id, "store_id": store_id, "name": name,
        "scopes": orjson.dumps(scopes).decode(), "comment": comment, "status": "active",
        "created_by": created_by, "created": stamp, "modified": stamp,
        **sealed_columns(keyring, account_id, store_id, secret_id, value),
    }
    await queries.insert_secret(conn, row)
    return {k: v for k, v in row.items() if k not in ("wrapped_key", "ciphertext", "kek_id")}


async def replace_value(conn: AsyncConnection, keyring: Keyring, secret: dict[str, Any], value: str) -> None:
    columns = sealed_columns(keyring, secret["account_id"], secret["store_id"], secret["id"], value)
    await queries.update_secret(conn, secret["id"], {**columns, "modified": rfc3339(now())})


def open_row(keyring: Keyring, row: dict[str, Any]) -> str:
    sealed = Sealed(row["kek_id"], bytes(row["wrapped_key"]), bytes(row["ciphertext"]))
    plaintext = keyring.open(sealed, associated_data(row["account_id"], row["store_id"], row["id"]))
    return plaintext.decode("utf-8", "surrogatepass")


async def default_store(conn: AsyncConnection, account_id: str) -> dict[str, Any]:
    """The account's store: its first store, created on first need (Cloudflare: one store per account)."""
    rows, _ = await queries.list_stores(conn, account_id, "created", False, 1, 1)
    if rows:
        return rows[0]
    stamp = rfc3339(now())
    return await queries.insert_store(conn,
                                      {"id": new_id(), "account_id": account_id, "name": DEFAULT_STORE_NAME,
                                             "created": stamp, "modified": stamp})
