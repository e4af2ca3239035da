"""Start-up on a data dir or database Sluice cannot use: one line naming the path or URL, exit 2, no
traceback (``sluice serve`` and ``sluice init``, run as the subprocess a person would run)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import free_port, sluice_cli

NOBODY = 65534


def serve(data_dir: Path, env: dict[str, str] | None = None,
          as_nobody: bool = False) -> subprocess.CompletedProcess:
    """``sluice serve``, which must fail before it listens (the timeout catches a server that starts)."""
    # setpriv (util-linux), not subprocess's user=: the venv's interpreter may live under root's home
    # and stays reachable only this way.
    nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if as_nobody else []
    environ = {**os.environ, **(env or {})}
    if as_nobody:  # `make test` measures coverage in subprocesses; nobody may not write its data file
        environ = {k: v for k, v in environ.items() if not k.startswith("COVERAGE_")}
    return subprocess.run([*nobody, sys.executable, "-m", "sluice", "serve", "--data-dir", str(data_dir),
                           "--port", str(free_port())], capture_output=True, text=True, timeout=60,
                          env=environ)


def assert_one_line_error(result: subprocess.CompletedProcess, *names: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "╭" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    for name in names:
        assert name in lines[0], lines[0]


@pytest.fixture()
def open_dir() -> Iterator[Path]:
    """A directory outside pytest's 0700 tmp tree, so another user can reach into it."""
    path = Path(tempfile.mkdtemp(prefix="sluice-startup-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "not-a-dir"
    path.write_text("x")
    for result in (serve(path), sluice_cli("init", "--data-dir", str(path), check=False)):
        assert_one_line_error(result, str(path), "not a directory")


def test_data_dir_that_cannot_be_created(open_dir: Path) -> None:
    """A data dir in a read-only place (as root, the server runs as nobody: root writes anywhere)."""
    parent = open_dir / "read-only"
    parent.mkdir(mode=0o555)
    parent.chmod(0o555)
    data_dir = parent / "data"
    assert_one_line_error(serve(data_dir, as_nobody=os.geteuid() == 0), str(data_dir), "Permission denied")


def test_initialised_data_dir_the_server_may_not_write(open_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hand an initialised data dir to a user who may not write it")
    data_dir = open_dir / "data"
    sluice_cli("init", "--data-dir", str(data_dir))
    data_dir.chmod(0o755)
    for path in data_dir.iterdir():
        path.chmod(0o644)
    assert_one_line_error(serve(data_dir, as_nobody=True), str(data_dir), "not permitted")


def test_corrupted_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    sluice_cli("init", "--data-dir", str(data_dir))
    for suffix in ("-wal", "-shm"):
        (data_dir / f"sluice.db{suffix}").unlink(missing_ok=True)
    (data_dir / "sluice.db").write_bytes(b"this is not an SQLite database" * 200)
    assert_one_line_error(serve(data_dir), str(data_dir / "sluice.db"), "not a database")


def test_unreachable_postgresql_names_the_url_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://sluice:hunter2-secret@127.0.0.1:{free_port()}/sluice"
    result = serve(tmp_path / "data", env={"SLUICE_DATABASE_URL": url})
    assert_one_line_error(result, "postgresql://sluice:***@127.0.0.1:", "/sluice")
    assert "hunter2" not in result.stderr + result.stdout


def test_missing_postgresql_database(tmp_path: Path, pg_url: str) -> None:
    url = pg_url.rsplit("/", 1)[0] + "/sluice_no_such_database"
    result = sluice_cli("init", "--data-dir", str(tmp_path / "data"), env={**os.environ,
                                                                           "SLUICE_DATABASE_URL": url},
                        check=False)
    assert_one_line_error(result, url, "does not exist")
