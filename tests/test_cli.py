"""The ``sluice`` command: init, tokens, accounts, master-key, serve options and settings errors."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.control.assertions import assert_ok, assert_v4_error
from tests.support.server import Server, free_port, sluice_cli
from tests.support.stored import read_secret_values


def cli_json(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> Any:
    result = sluice_cli(*args, "--data-dir", str(data_dir), "--json", env=env)
    return json.loads(result.stdout)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_init_creates_private_data_dir_and_prints_credentials(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    creds = cli_json("init", data_dir=data_dir)
    assert set(creds) == {"account_id", "api_token", "email", "api_key"}
    assert len(creds["account_id"]) == 32 and creds["api_token"].startswith("sluice_")
    assert creds["email"] == "admin@example.com" and len(creds["api_key"]) >= 32
    assert mode(data_dir) == 0o700 and mode(data_dir / "master.key") == 0o600
    assert mode(data_dir / "sluice.db") & 0o077 == 0
    # stored hashed: the token and key are nowhere in the data dir
    for path in data_dir.iterdir():
        content = path.read_bytes()
        assert creds["api_token"].encode() not in content and creds["api_key"].encode() not in content

    key_before = (data_dir / "master.key").read_bytes()
    again = sluice_cli("init", "--data-dir", str(data_dir))
    assert again.returncode == 0 and "already initialised" in again.stdout.lower()
    assert creds["api_token"] not in again.stdout
    assert cli_json("init", data_dir=data_dir) == {"initialised": False, "message": "already initialised"}
    assert (data_dir / "master.key").read_bytes() == key_before
    assert len(cli_json("accounts", "list", data_dir=data_dir)) == 1
    assert len(cli_json("tokens", "list", data_dir=data_dir)) == 1


def test_init_with_email_and_bootstrap_token(tmp_path: Path) -> None:
    token = "sluice_" + secrets.token_urlsafe(40)
    creds = cli_json("init", "--email", "ops@example.org", data_dir=tmp_path / "d",
                     env={**os.environ, "SLUICE_BOOTSTRAP_TOKEN": token})
    assert creds["email"] == "ops@example.org" and creds["api_token"] == token


def test_tokens_and_accounts_commands(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    creds = cli_json("init", data_dir=data_dir)
    account = cli_json("accounts", "create", "second", data_dir=data_dir)
    assert account["name"] == "second" and len(account["id"]) == 32
    listed = cli_json("accounts", "list", data_dir=data_dir)
    assert [a["id"] for a in listed] == [creds["account_id"], account["id"]]
    plain = sluice_cli("accounts", "list", "--data-dir", str(data_dir)).stdout
    assert account["id"] in plain and "second" in plain

    token = cli_json("tokens", "create", "--account", account["id"], "--name", "runner", "--permission",
                     "AI Gateway Run", "--permission", "AI Gateway Read", data_dir=data_dir)
    assert set(token) == {"id", "name", "value", "permissions"}
    assert token["value"].startswith("sluice_")
    assert token["permissions"] == ["AI Gateway Read", "AI Gateway Run"]
    listed = cli_json("tokens", "list", "--account", account["id"], data_dir=data_dir)
    assert [t["id"] for t in listed] == [token["id"]] and token["value"] not in json.dumps(listed)
    assert len(cli_json("tokens", "list", data_dir=data_dir)) == 2

    bad = sluice_cli("tokens", "create", "--account", account["id"], "--name", "x", "--permission", "Root",
                     "--data-dir", str(data_dir), check=False)
    assert bad.returncode != 0 and "Root" in bad.stderr
    nobody = sluice_cli("tokens", "create", "--account", "f" * 32, "--name", "x", "--permission",
                        "AI Gateway Run",
                        "--data-dir", str(data_dir), check=False)
    assert nobody.returncode != 0 and "no account" in nobody.stderr

    revoked = cli_json("tokens", "revoke", token["id"], data_dir=data_dir)
    assert revoked == {"id": token["id"], "revoked": True}
    assert cli_json("tokens", "list", "--account", account["id"], data_dir=data_dir) == []
    again = sluice_cli("tokens", "revoke", token["id"], "--data-dir", str(data_dir), check=False)
    assert again.returncode == 1 and token["id"] in again.stderr


def test_revoked_token_stops_working_on_a_running_server(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data").start()
    try:
        token = cli_json("tokens", "create", "--account", srv.account_id, "--name", "tmp", "--permission",
                         "AI Gateway Read", data_dir=srv.data_dir, env=srv.env)
        url = f"{srv.api}/accounts/{srv.account_id}/ai-gateway/gateways"
        assert_ok(httpx.get(url, headers=srv.headers(token["value"])))
        cli_json("tokens", "revoke", token["id"], data_dir=srv.data_dir, env=srv.env)
        assert_v4_error(httpx.get(url, headers=srv.headers(token["value"])), 401, 10000)
    finally:
        srv.stop()


def test_master_key_rotation_while_serving(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data").start()
    try:
        api = httpx.Client(base_url=f"{srv.api}/accounts/{srv.account_id}", headers=srv.headers(), timeout=30)
        assert_ok(api.post("/ai-gateway/gateways", json={"id": "rot"}))
        keys = {f"k{i}": f"sk-before-{i}-" + secrets.token_hex(8) for i in range(3)}
        configs = {alias: assert_ok(api.post("/ai-gateway/gateways/rot/provider_configs", json={
            "provider_slug": "openai", "alias": alias, "default_config": False, "secret": value}))
            for alias, value in keys.items()}

        status = cli_json("master-key", "status", data_dir=srv.data_dir, env=srv.env)
        old_kek = status["active_kek_id"]
        assert status["secrets_per_kek"] == {old_kek: 3} and status["loaded_kek_ids"] == [old_kek]

        rotated = cli_json("master-key", "rotate", data_dir=srv.data_dir, env=srv.env)
        new_kek = rotated["active_kek_id"]
        assert new_kek != old_kek and rotated["rewrapped"] == 3
        assert mode(srv.data_dir / "master.key") == 0o600
        status = cli_json("master-key", "status", data_dir=srv.data_dir, env=srv.env)
        assert status["active_kek_id"] == new_kek and status["loaded_kek_ids"] == [new_kek, old_kek]
        assert status["secrets_per_kek"] == {new_kek: 3}

        # the running server still opens the re-wrapped secrets (duplicate decrypts and re-seals) ...
        store_id = assert_ok(api.get("/ai-gateway/gateways/rot"))["store_id"]
        secret_url = f"/secrets_store/stores/{store_id}/secrets/{configs['k0']['secret_id']}"
        copy = assert_ok(api.post(f"{secret_url}/duplicate",
                                  json={"name": "k0_copy", "scopes": ["ai_gateway"]}))
        # ... and creates new configs, sealed under the new key
        fresh = assert_ok(api.post("/ai-gateway/gateways/rot/provider_configs", json={
            "provider_slug": "anthropic", "alias": "after", "default_config": True,
            "secret": "sk-after-rotation"}))
        status = cli_json("master-key", "status", data_dir=srv.data_dir, env=srv.env)
        assert status["secrets_per_kek"] == {new_kek: 5}

        import asyncio
        wanted = {c["secret_id"]: keys[alias] for alias, c in configs.items()}
        wanted |= {fresh["secret_id"]: "sk-after-rotation", copy["id"]: keys["k0"]}
        assert asyncio.run(read_secret_values(srv, list(wanted))) == wanted
        api.close()
    finally:
        srv.stop()


def test_serve_help_lists_options() -> None:
    out = sluice_cli("serve", "--help").stdout
    for option in ("--host", "--port", "--data-dir", "--workers"):
        assert option in out


@pytest.mark.parametrize(("variable", "value"),
                         [("SLUICE_MAX_BODY_BYTES", "lots"), ("SLUICE_MAX_BODY_BYTES", "-5"),
                                                 ("SLUICE_LOG_LEVEL", "loud"),
                          ("SLUICE_MASTER_KEY", "c2hvcnQ="),
                                                 ("SLUICE_DATABASE_URL", "mysql://x")])
def test_bad_setting_stops_serve_naming_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    result = sluice_cli("serve", "--data-dir", str(tmp_path / "d"), "--port", str(free_port()),
                        env={**os.environ, variable: value}, check=False)
    assert result.returncode != 0
    assert variable in result.stderr + result.stdout
    assert not (tmp_path / "d").exists(), "nothing is created before the settings are valid"
