"""Which database (and Redis) the suite's test servers run on: the suite-wide switch.

``SLUICE_TEST_BACKEND=postgres`` (``make test-pg``) puts every test server that is not about
SQLite itself on a fresh PostgreSQL database of its own (created here, dropped when the session
ends); ``sqlite`` (the default, ``make test``) keeps the embedded default. When
``SLUICE_TEST_REDIS_URL`` is set, those servers also get it as ``SLUICE_REDIS_URL``.
"""

from __future__ import annotations

import asyncio
import os
import secrets

import asyncpg

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_SERVER_URL = "postgresql://postgres@127.0.0.1:5432"
BACKENDS = ("sqlite", "postgres")
DATABASE_PREFIX = "sluice_suite_"

_created: list[str] = []


def suite_backend() -> str:
    backend = os.environ.get("SLUICE_TEST_BACKEND", "sqlite").strip().lower() or "sqlite"
    if backend not in BACKENDS:
        raise RuntimeError(f"SLUICE_TEST_BACKEND: must be one of {', '.join(BACKENDS)}, not {backend!r}")
    return backend


def on_postgres() -> bool:
    return suite_backend() == "postgres"


def redis_url() -> str | None:
    return os.environ.get("SLUICE_TEST_REDIS_URL") or None


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_database_async(prefix: str = DATABASE_PREFIX) -> str:
    """A fresh, empty PostgreSQL database; its URL. Raises (never skips) when PostgreSQL is down."""
    name = f"{prefix}{secrets.token_hex(6)}"
    try:
        await _admin(f'CREATE DATABASE "{name}"')
    except OSError as exc:  # connection refused and friends
        raise RuntimeError(f"PostgreSQL on 127.0.0.1:5432 is unreachable: {exc}") from exc
    _created.append(name)
    return f"{PG_SERVER_URL}/{name}"


def create_database(prefix: str = DATABASE_PREFIX) -> str:
    return asyncio.run(create_database_async(prefix))


async def database_url_for(sqlite_path: object) -> str:
    """For in-process store tests: the SQLite file at ``sqlite_path``, or under the PostgreSQL
    configuration a fresh database."""
    return await create_database_async() if on_postgres() else f"sqlite:///{sqlite_path}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    if name in _created:
        _created.remove(name)


def drop_created_databases() -> None:
    """Drop every database this process created (at the end of the session)."""
    while _created:
        drop_database(f"{PG_SERVER_URL}/{_created[-1]}")  # removes it from _created


def server_env(new_database: bool = True) -> dict[str, str]:
    """Environment for a test server that follows the suite's configuration (on PostgreSQL, a new
    database each call unless the server brings its own)."""
    env: dict[str, str] = {}
    if on_postgres() and new_database:
        env["SLUICE_DATABASE_URL"] = create_database()
    if redis_url():
        env["SLUICE_REDIS_URL"] = redis_url()  # type: ignore[assignment]
    return env
