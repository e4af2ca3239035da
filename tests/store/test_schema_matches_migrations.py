"""The table definitions the queries use (``sluice.store.schema.metadata``) are exactly what the
migrations create: Alembic's ``compare_metadata`` finds no difference on a freshly migrated SQLite
file and PostgreSQL database. A unique constraint the 409s rely on, or an index, missing on either
side fails here."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

import sluice.store.log_tables  # noqa: F401  (registers the request-log tables on the one metadata)
from sluice.store.database import open_database
from sluice.store.schema import metadata


def _differences(sync_conn: Connection) -> list[Any]:
    options = {"compare_type": True, "compare_server_default": True}
    context = MigrationContext.configure(sync_conn, opts=options)
    return [diff for diff in compare_metadata(context, metadata) if not _is_alembic_version(diff)]


def _is_alembic_version(diff: Any) -> bool:
    return diff[0] == "remove_table" and diff[1].name == "alembic_version"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('schema') / 'fresh.db'}"
    return request.getfixturevalue("pg_url")


async def test_metadata_equals_migrated_schema(fresh_url: str) -> None:
    database = await open_database(fresh_url)
    try:
        async with database.engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await database.close()
    assert differences == []


def test_metadata_holds_every_table() -> None:
    """One MetaData: the request-log and key-activity tables register on the store's metadata."""
    assert {"request_logs", "provider_config_activity", "provider_configs", "secrets", "stores"} \
        <= set(metadata.tables)
