"""A real Sluice server in a subprocess, for tests that talk HTTP to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import backend as test_backend

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sluice_cli(*args: str, env: dict[str, str] | None = None,
               check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "sluice", *args], capture_output=True, text=True,
                          env=env or os.environ.copy(), check=check, timeout=120)


class Server:
    """``sluice serve`` on a free port with its own data dir; output captured to a file.

    It runs on the suite's backend (``tests/support/backend.py``: a fresh PostgreSQL database under
    ``SLUICE_TEST_BACKEND=postgres``) unless ``backend="sqlite"`` pins it — for tests about SQLite
    itself — or ``env`` names its own ``SLUICE_DATABASE_URL``.
    """

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, port: int | None = None,
                 serve_args: tuple[str, ...] = (), backend: str = "suite") -> None:
        assert backend in ("suite", "sqlite"), backend
        self.data_dir = data_dir
        self.serve_args = serve_args  # e.g. ("--workers", "3")
        self.port = port or free_port()
        own_database = "SLUICE_DATABASE_URL" in (env or {})
        chosen = test_backend.server_env(new_database=not own_database) if backend == "suite" else {}
        self.env = {**os.environ, **chosen, **(env or {})}
        self.env.setdefault("SLUICE_LOG_LEVEL", "info")
        self.output_path = data_dir.parent / f"{data_dir.name}-server-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.creds: dict[str, Any] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/client/v4"

    @property
    def database_url(self) -> str:
        return self.env.get("SLUICE_DATABASE_URL") or f"sqlite:///{self.data_dir / 'sluice.db'}"

    @property
    def on_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    def settings(self) -> Any:
        """The server's own settings (database, master key), for tests that read its store."""
        from sluice.settings import load_settings

        return load_settings(self.env, data_dir=self.data_dir)

    def init(self) -> dict[str, Any]:
        result = sluice_cli("init", "--data-dir", str(self.data_dir), "--json", env=self.env, check=False)
        if result.returncode != 0:  # say why: a refused setting names its variable on stderr
            raise RuntimeError(f"sluice init exited with {result.returncode}:\n"
                               f"{result.stderr}{result.stdout}")
        self.creds = json.loads(result.stdout)
        return self.creds

    def start(self, timeout: float = 30.0) -> Server:
        if not self.creds and not (self.on_sqlite and (self.data_dir / "sluice.db").exists()):
            self.init()
        out = open(self.output_path, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "sluice", "serve", "--data-dir", str(self.data_dir), "--port", str(self.port),
             *self.serve_args],
            stdout=out, stderr=subprocess.STDOUT, env=self.env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy:\n{self.output()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing — the crash tests' fault."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def output(self) -> str:
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    @property
    def account_id(self) -> str:
        return self.creds["account_id"]

    @property
    def token(self) -> str:
        return self.creds["api_token"]

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}


class MockUpstream:
    """The mock provider (``python -m sluice.testing.mock_upstream``) in a subprocess."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([PYTHON, "-m", "sluice.testing.mock_upstream", "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("READY"):
            raise RuntimeError(f"mock upstream failed to start: {line}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/__mock__/requests", timeout=5).json()

    def clear(self) -> None:
        httpx.delete(f"{self.url}/__mock__/requests", timeout=5)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def upstream_env(mock_url: str, slugs: list[str]) -> dict[str, str]:
    """Point every provider at the mock, under /<slug>, so tests can tell which provider was called."""
    return {"SLUICE_UPSTREAM_" + s.upper().replace("-", "_"): f"{mock_url}/{s}" for s in slugs}
