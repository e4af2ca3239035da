"""A server on SQLite never loads the PostgreSQL driver or dialect (~5 MiB of resident memory per
process, docs/performance.md), and one on PostgreSQL loads what it needs when it needs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

POSTGRESQL_ONLY = ("asyncpg", "sqlalchemy.dialects.postgresql")

STARTED_APP = """
import asyncio, sys
import sluice.asgi
app = sluice.asgi.app
async def main():
    await app.startup()
    await app.observability.activity.flush()
    await app.shutdown()
asyncio.run(main())
print("\\n".join(sorted(sys.modules)))
"""


def test_a_started_sqlite_server_loads_no_postgresql_code(tmp_path: Path) -> None:
    env = {**os.environ, "SLUICE_DATA_DIR": str(tmp_path / "data"), "SLUICE_LOG_LEVEL": "warning"}
    env.pop("SLUICE_DATABASE_URL", None)
    run = subprocess.run([sys.executable, "-m", "sluice", "init", "--data-dir", str(tmp_path / "data")],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    run = subprocess.run([sys.executable, "-c", STARTED_APP], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    loaded = run.stdout.split()
    assert "sluice.store.notify" in loaded and "sluice.store.activity" in loaded  # the importers ran
    assert [name for name in loaded if name.startswith(POSTGRESQL_ONLY)] == []


def test_the_postgresql_activity_upsert_still_builds() -> None:
    """The dialect imported at the call: the statement is PostgreSQL's ``ON CONFLICT`` upsert."""
    code = """
import asyncio
from sqlalchemy.dialects import postgresql
from sluice.store.activity import add_activity
class Conn:
    async def execute(self, stmt):
        print(stmt.compile(dialect=postgresql.dialect()))
asyncio.run(add_activity(Conn(), "postgresql", "c1", "a1", "g1", None, 2, 1))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "ON CONFLICT (config_id) DO UPDATE" in run.stdout
