"""Fixtures for several Sluice processes on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from collections.abc import Iterator

import pytest

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture()
def fresh_pg_url() -> Iterator[str]:
    """A NEW, empty PostgreSQL database for this one test (dropped afterwards); fails when unreachable."""
    name = f"sluice_cluster_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is unreachable: {exc}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def new_database(prefix: str = "sluice_cluster") -> str:
    """Create one more empty database on the shared server; the caller drops it (``drop_database``)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return name


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture()
def cluster_master_key() -> str:
    """One master key shared by every process of a cluster (as a real deployment sets it)."""
    return base64.b64encode(os.urandom(32)).decode()
