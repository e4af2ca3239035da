"""Issue 15 item 8: a lost master key is never replaced silently.

A data dir holding sealed secrets, with its key file removed or the wrong SLUICE_MASTER_KEY set,
must not start: exit code 2 and one line naming the setting or the key file; no new key written.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from sluice.app import SluiceApp
from sluice.errors import MasterKeyError
from sluice.settings import load_settings
from tests.support.server import PYTHON, Server, free_port

OTHER_KEY = base64.b64encode(b"\x07" * 32).decode()


def serve(data_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``sluice serve``; a server that starts anyway is killed after the timeout (and the test fails)."""
    try:
        return subprocess.run([PYTHON, "-m", "sluice", "serve", "--data-dir", str(data_dir), "--port",
                               str(free_port())],
                              capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("sluice serve started although the master key cannot open the stored secrets")


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


@pytest.fixture(scope="module")
def sealed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding two sealed provider keys (and tokens), its server stopped."""
    # SQLite: these tests remove and swap the key file of a data dir and start `sluice serve` on it
    srv = Server(tmp_path_factory.mktemp("sealed") / "data", backend="sqlite").start()
    try:
        api = f"{srv.api}/accounts/{srv.account_id}/ai-gateway/gateways"
        with httpx.Client(headers=srv.headers(), timeout=30) as client:
            assert client.post(api, json={"id": "g"}).status_code == 200
            for alias in ("a", "b"):
                body = {"provider_slug": "openai", "alias": alias, "default_config": alias == "a",
                        "secret": f"sk-lost-{alias}-0123456789abcdef"}
                assert client.post(f"{api}/g/provider_configs", json=body).status_code == 200
    finally:
        srv.stop()
    return srv.data_dir


@pytest.fixture()
def sealed_dir(sealed_template: Path, tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    shutil.copytree(sealed_template, data_dir)
    return data_dir


def test_a_removed_key_file_is_not_replaced(sealed_dir: Path) -> None:
    key_file = sealed_dir / "master.key"
    key_file.unlink()
    line = one_error_line(serve(sealed_dir))
    assert str(key_file) in line and "SLUICE_MASTER_KEY" in line
    assert not key_file.exists(), "a new master key was generated for an initialised database"


def test_a_wrong_master_key_is_refused(sealed_dir: Path) -> None:
    line = one_error_line(serve(sealed_dir, {"SLUICE_MASTER_KEY": OTHER_KEY}))
    assert "SLUICE_MASTER_KEY" in line and "(2 secrets)" in line
    assert OTHER_KEY not in line


def test_a_key_file_holding_another_key_is_refused(sealed_dir: Path) -> None:
    key_file = sealed_dir / "master.key"
    key_file.write_text(OTHER_KEY + "\n")
    line = one_error_line(serve(sealed_dir))
    assert str(key_file) in line and "not loaded" in line


def test_init_refuses_too(sealed_dir: Path) -> None:
    (sealed_dir / "master.key").unlink()
    result = subprocess.run([PYTHON, "-m", "sluice", "init", "--data-dir", str(sealed_dir)],
                            capture_output=True,
                            text=True, timeout=60)
    one_error_line(result)
    assert not (sealed_dir / "master.key").exists()


def test_an_initialised_database_without_secrets_gets_no_new_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert subprocess.run([PYTHON, "-m", "sluice", "init", "--data-dir", str(data_dir)], capture_output=True,
                          timeout=60).returncode == 0
    (data_dir / "master.key").unlink()  # the database holds the account and its admin token
    one_error_line(serve(data_dir))
    assert not (data_dir / "master.key").exists()


def test_the_server_itself_refuses_a_key_that_opens_nothing(sealed_dir: Path) -> None:
    """Started without the CLI (``uvicorn sluice.asgi:app``), start-up fails the same way."""
    settings = load_settings({"SLUICE_DATA_DIR": str(sealed_dir), "SLUICE_MASTER_KEY": OTHER_KEY})
    app = SluiceApp(settings)
    with pytest.raises(MasterKeyError, match="SLUICE_MASTER_KEY"):
        asyncio.run(app.startup())


def test_rotation_keys_still_start(sealed_dir: Path) -> None:
    """The key file's keys plus a new active one (a rotation under way) open everything: no refusal."""
    old = (sealed_dir / "master.key").read_text().strip()
    srv = Server(sealed_dir, env={"SLUICE_MASTER_KEY": f"{OTHER_KEY},{old}"}, backend="sqlite")
    srv.creds = {"started": True}
    srv.start()
    srv.stop()
