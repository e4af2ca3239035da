"""Several ``sluice serve`` processes on one fresh PostgreSQL database, sharing one master key: what
an operator runs when one process is not enough (docs/scale-out.md)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.backend import create_database as _create_database
from tests.support.backend import drop_database
from tests.support.server import Server


def create_database() -> str:
    """A fresh database (``sluice init`` needs one with no account yet); fails, never skips."""
    return _create_database("sluice_cluster_")


__all__ = ["Cluster", "account_api", "create_database", "drop_database", "running_cluster"]


@contextmanager
def running_cluster(root: Path, size: int, env: dict[str, str]) -> Iterator[Cluster]:
    """``size`` started servers on a database of their own, stopped and dropped afterwards."""
    database_url = create_database()
    group = Cluster(root, database_url, size, env=env)
    try:
        yield group.start()
    finally:
        group.stop()
        drop_database(database_url)


def account_api(server: Server) -> httpx.Client:
    """The management API of ``server``'s account, authenticated as its admin."""
    return httpx.Client(base_url=f"{server.api}/accounts/{server.account_id}", headers=server.headers(),
                        timeout=30)


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
