"""Build 6: several processes starting at once on a fresh shared PostgreSQL database all come up,
and exactly one of them creates the first account, user and token.

The race window (count the accounts, then insert) is a few milliseconds, far less than the jitter of
starting processes. To hit it every time, the test holds an exclusive lock on ``accounts`` until all
the processes are waiting on a lock, then lets them go at once."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import pytest

from sluice.store.database import open_database
from tests.support.backend import create_database, drop_database
from tests.support.server import PYTHON, Server

TRIALS = 3
PROCESSES = 3
pytestmark = [pytest.mark.server, pytest.mark.postgres]  # starts `sluice` processes on the shared server
T = TypeVar("T")
BASE = "postgresql://postgres@127.0.0.1:5432/"


async def _migrate(url: str) -> None:
    db = await open_database(url)  # migrated up front, so that start-up's first table read is the gated one
    await db.close()


async def _waiting_on_locks(admin: asyncpg.Connection, name: str) -> int:
    await admin.execute("SELECT pg_stat_clear_snapshot()")  # else the view is frozen for the transaction
    return await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
                                "AND wait_event_type = 'Lock'", name)


async def _gated(name: str, expected: int, work: Awaitable[T]) -> T:
    """Lock ``accounts``, run ``work``, release once ``expected`` sessions wait on a lock (or work ended)."""
    admin = await asyncpg.connect(BASE + name)
    try:
        tx = admin.transaction()
        await tx.start()
        await admin.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
        task = asyncio.ensure_future(work)
        for _ in range(2400):
            if task.done() or await _waiting_on_locks(admin, name) >= expected:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the processes never all reached the database")
        await tx.commit()
    finally:
        await admin.close()
    return await task


async def _inits(dirs: list[Path], env: dict[str, str]) -> list[tuple[int, bytes, bytes]]:
    procs = [await asyncio.create_subprocess_exec(
        PYTHON, "-m", "sluice", "init", "--data-dir", str(d), "--json", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for d in dirs]
    outputs = [await asyncio.wait_for(p.communicate(), 180) for p in procs]
    return [(p.returncode or 0, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]


def test_simultaneous_inits_on_a_fresh_database_all_succeed_and_one_creates_the_admin(
        tmp_path: Path, cluster_master_key: str) -> None:
    for trial in range(TRIALS):
        url = create_database("sluice_cluster_")
        name = url.rsplit("/", 1)[1]
        try:
            asyncio.run(_migrate(url))
            env = {**os.environ, "SLUICE_DATABASE_URL": url, "SLUICE_MASTER_KEY": cluster_master_key}
            dirs = [tmp_path / f"t{trial}-p{i}" for i in range(PROCESSES)]
            results = asyncio.run(_gated(name, PROCESSES, _inits(dirs, env)))
            for code, _out, err in results:
                assert code == 0, f"trial {trial}: {err.decode()[-2000:]}"
            outputs = [json.loads(out) for _code, out, _err in results]
            assert sum("api_token" in o for o in outputs) == 1, f"trial {trial}: {outputs}"
            assert all(o == {"initialised": False, "message": "already initialised"}
                       for o in outputs if "api_token" not in o)
        finally:
            drop_database(url)


def test_simultaneous_first_serves_on_a_fresh_database_all_come_up_and_share_the_account(
        tmp_path: Path, fresh_pg_url: str, cluster_master_key: str) -> None:
    name = fresh_pg_url.rsplit("/", 1)[1]
    asyncio.run(_migrate(fresh_pg_url))
    env = {"SLUICE_DATABASE_URL": fresh_pg_url, "SLUICE_MASTER_KEY": cluster_master_key}
    servers = [Server(tmp_path / f"s{i}", env=env) for i in range(PROCESSES)]
    for srv in servers:
        srv.creds = {"serve": "initialises by itself"}  # no separate `sluice init`

    async def start_all() -> list[object]:
        return await asyncio.gather(*(asyncio.to_thread(srv.start, 180) for srv in servers),
                                    return_exceptions=True)

    try:
        started = asyncio.run(_gated(name, PROCESSES, start_all()))
        assert all(isinstance(s, Server) for s in started), started
        printed = [s.output() for s in servers]
        assert sum("Sluice initialised." in out for out in printed) == 1, printed
        token = next(line.split()[-1] for out in printed for line in out.splitlines() if "api_token:" in line)
        for srv in servers:
            response = httpx.get(f"{srv.api}/user/tokens/verify", headers=srv.headers(token), timeout=10)
            assert response.status_code == 200, response.text
    finally:
        for srv in servers:
            srv.stop()
