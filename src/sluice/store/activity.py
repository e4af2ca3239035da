"""SQL for provider-key activity (``provider_config_activity``): totals added, read, swept, deleted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.store.log_tables import provider_config_activity as A
from sluice.store.schema import provider_configs


async def all_activity(conn: AsyncConnection) -> list[Any]:
    return list((await conn.execute(select(A))).all())


async def add_activity(conn: AsyncConnection, dialect: str, config_id: str, account_id: str, gateway_id: str,
                       last_used_at: str | None, requests: int, errors: int) -> None:
    """Adds one process's deltas to the stored totals; keeps the newer ``last_used_at``."""
    build: Any = sqlite.insert
    if dialect == "postgresql":  # imported here: a SQLite process never loads the dialect (~2 MiB resident)
        from sqlalchemy.dialects import postgresql

        build = postgresql.insert
    stmt = build(A).values(config_id=config_id, account_id=account_id, gateway_id=gateway_id,
                           last_used_at=last_used_at, request_count=requests, error_count=errors)
    newer = case((A.c.last_used_at.is_(None), stmt.excluded.last_used_at),
                 (stmt.excluded.last_used_at > A.c.last_used_at, stmt.excluded.last_used_at),
                 else_=A.c.last_used_at)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[A.c.config_id], set_={
        "request_count": A.c.request_count + stmt.excluded.request_count,
        "error_count": A.c.error_count + stmt.excluded.error_count,
        "last_used_at": newer,
    }))


async def sweep_activity(conn: AsyncConnection) -> None:
    """Drop rows of configs deleted since (a use that ended after its config's delete wrote one)."""
    await conn.execute(delete(A).where(~select(provider_configs.c.id)
                                       .where(provider_configs.c.id == A.c.config_id).exists()))


async def delete_config_activity(conn: AsyncConnection, config_id: str) -> None:
    await conn.execute(delete(A).where(A.c.config_id == config_id))


async def delete_gateway_activity(conn: AsyncConnection, account_id: str, gateway_id: str) -> None:
    await conn.execute(delete(A).where(A.c.account_id == account_id, A.c.gateway_id == gateway_id))
