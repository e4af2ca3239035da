"""A PostgreSQL cluster of the test's own (initdb + pg_ctl on a free port in a tmp dir), so a test can
stop and restart it without disturbing the shared server on 127.0.0.1:5432."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.server import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found (looked in /usr/lib/postgresql/*/bin and PATH)")
    return path


class PgCluster:
    def __init__(self) -> None:
        # Its own dir directly in the system tmp dir: pytest's tmp dirs are 0700 root, which the
        # `postgres` user could not enter.
        self.root = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
        self.data = self.root / "pgdata"
        self.port = free_port()
        # initdb refuses to run as root: then the cluster runs as the `postgres` user.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.root.chmod(0o700)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        result = subprocess.run([*self._as, *argv], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {result.stdout}\n{result.stderr}")

    def init(self) -> PgCluster:
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "pg.log"), "-o", options,
                  "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
