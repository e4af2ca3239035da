"""Several ``sluice serve`` processes on one fresh PostgreSQL database, sharing one master key: what
an operator runs when one process is not enough (docs/scale-out.md)."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from pathlib import Path

import asyncpg
import pytest

from tests.support.server import Server

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database() -> str:
    """A fresh database (``sluice init`` needs one with no account yet); fails, never skips."""
    name = f"sluice_cluster_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is unreachable: {exc}")
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_database(url: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))


class Cluster:
    """``size`` servers on ``database_url``; the first one runs ``sluice init``, the others share its
    credentials and the one master key (``SLUICE_MASTER_KEY``)."""

    def __init__(self, root: Path, database_url: str, size: int, env: dict[str, str] | None = None) -> None:
        master_key = base64.b64encode(os.urandom(32)).decode()
        shared = {"SLUICE_DATABASE_URL": database_url, "SLUICE_MASTER_KEY": master_key, **(env or {})}
        self.database_url = database_url
        self.servers = [Server(root / f"node{i}" / "data", env=shared) for i in range(size)]

    def start(self) -> Cluster:
        first, *others = self.servers
        first.start()
        for server in others:
            server.creds = first.creds
            server.data_dir.mkdir(parents=True, mode=0o700)
            server.start()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
