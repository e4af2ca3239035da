"""The ``sluice`` command: init, serve, tokens, accounts, master-key."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from sluice.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="Sluice: a self-hosted AI gateway compatible with Cloudflare AI Gateway.",
                  no_args_is_help=True, add_completion=False)
tokens_app = typer.Typer(help="Account API tokens.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts.", no_args_is_help=True)
key_app = typer.Typer(help="The master key-encryption key (KEK) that wraps every stored secret.",
                      no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
app.add_typer(accounts_app, name="accounts")
app.add_typer(key_app, name="master-key")

DataDir = typer.Option(None, "--data-dir", help="Data directory (default: $SLUICE_DATA_DIR or ./data).")
AsJson = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _settings(data_dir: Path | None) -> Settings:
    try:
        return load_settings(data_dir=data_dir)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _initialise(settings: Settings, email: str | None = None) -> Any:
    """Prepare the data dir and database; a problem there (or a master key that cannot open the
    database) is one line naming the path, URL or setting, exit 2."""
    from sluice.bootstrap import initialise
    from sluice.errors import MasterKeyError
    from sluice.startup import StartupError

    try:
        return asyncio.run(initialise(settings) if email is None else initialise(settings, email))
    except (StartupError, MasterKeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _print(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else text)


def _print_bootstrap(creds: Any, as_json: bool) -> None:
    data = {"account_id": creds.account_id, "api_token": creds.api_token, "email": creds.email,
            "api_key": creds.api_key}
    _print(data, as_json,
           "Sluice initialised. These credentials are shown once; store them now.\n"
           f"  account_id: {creds.account_id}\n  api_token:  {creds.api_token}\n"
           f"  email:      {creds.email}\n  api_key:    {creds.api_key}")


@app.command()
def init(data_dir: Path | None = DataDir,
         email: str = typer.Option("admin@example.com", help="Admin user email."),
         as_json: bool = AsJson) -> None:
    """Create the data dir, master key file, database, first account, user and admin token."""
    creds = _initialise(_settings(data_dir), email)
    if creds is None:
        _print({"initialised": False, "message": "already initialised"}, as_json,
               "Already initialised; nothing changed "
               "(credentials are stored hashed and cannot be shown again).")
        return
    _print_bootstrap(creds, as_json)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Address to listen on."),
          port: int = typer.Option(8787, help="Port to listen on."),
          data_dir: Path | None = DataDir,
          workers: int = typer.Option(
              1, min=1, help="Worker processes (they share state through the database; rate limits through "
                             "SLUICE_REDIS_URL; /metrics sums them)."),
          allow_per_process_limits: bool = typer.Option(
              False, "--allow-per-process-limits",
              help="Start --workers N > 1 without SLUICE_REDIS_URL: every worker counts rate limits alone, "
                   "so together they allow up to N times each limit."),
          ) -> None:
    """Run the gateway and management API (initialises the data dir on first start)."""
    from sluice.logging import configure_logging

    settings = _settings(data_dir)
    if workers > 1 and not settings.redis_url and not allow_per_process_limits:
        typer.echo(f"error: --workers {workers} without SLUICE_REDIS_URL: each worker would count rate "
                   f"limits alone, so together they would allow up to {workers} times every limit. Set "
                   "SLUICE_REDIS_URL to share the limits, or pass --allow-per-process-limits to accept that.",
                   err=True)
        raise typer.Exit(2)
    configure_logging(settings)
    creds = _initialise(settings)
    if creds is not None:
        _print_bootstrap(creds, False)
        sys.stdout.flush()
    # the server re-reads settings from the environment
    os.environ["SLUICE_DATA_DIR"] = str(settings.data_dir)
    if workers > 1:  # metrics summed over the workers (docs/scale-out.md); exec keeps this pid
        from sluice.observe.multiproc import ENV, prepare_run_dir

        os.environ[ENV] = str(prepare_run_dir(settings.data_dir, os.getpid()))
    else:  # one process needs no shared files (and no per-update file write)
        from sluice.observe.multiproc import ENV

        os.environ.pop(ENV, None)
    # exec, not uvicorn.run(): the server starts in a fresh interpreter (same pid) without the CLI's
    # modules loaded (measured: ~10 MiB less resident memory per process).
    argv = [sys.executable, "-m", "uvicorn", "sluice.asgi:app", "--host", host, "--port", str(port),
            "--workers", str(workers), "--loop", "uvloop", "--lifespan", "on",
            # httptools, with header, timeout and connection limits and telling the app about a '#'
            # (docs/security.md)
            "--http", "sluice.protocol:LimitedHttpToolsProtocol",
            "--timeout-keep-alive", str(settings.keep_alive_timeout_s),
            "--no-access-log", "--log-level", "warning", "--no-server-header",
            "--no-proxy-headers"]  # measured: its per-request middleware cost; Sluice reads no X-Forwarded-*
    os.execv(sys.executable, argv)


@tokens_app.command("create")
def tokens_create(account: str = typer.Option(..., "--account", help="Account id."),
                  name: str = typer.Option(..., "--name", help="Token name."),
                  permission: list[str] = typer.Option(..., "--permission",
                                                       help="Permission group (repeatable)."),
                  data_dir: Path | None = DataDir, as_json: bool = AsJson) -> None:
    """Create an API token; its value is printed once."""
    from sluice import admin

    try:
        token = asyncio.run(admin.create_token(_settings(data_dir), account, name, permission))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    _print(token, as_json, f"id:    {token['id']}\nname:  {token['name']}\nvalue: {token['value']}\n"
                           f"permissions: {', '.join(token['permissions'])}")


@tokens_app.command("list")
def tokens_list(account: str | None = typer.Option(None, "--account", help="Only this account."),
                data_dir: Path | None = DataDir, as_json: bool = AsJson) -> None:
    """List tokens (never their values)."""
    from sluice import admin

    rows = asyncio.run(admin.list_tokens(_settings(data_dir), account))
    _print(rows, as_json, "\n".join(f"{r['id']}  {r['account_id']}  {r['status']}  {r['name']}  "
                                    f"[{', '.join(r['permissions'])}]" for r in rows) or "no tokens")


@tokens_app.command("revoke")
def tokens_revoke(token_id: str, data_dir: Path | None = DataDir, as_json: bool = AsJson) -> None:
    """Revoke (delete) a token by id."""
    from sluice import admin

    if not asyncio.run(admin.revoke_token(_settings(data_dir), token_id)):
        typer.echo(f"error: no token {token_id}", err=True)
        raise typer.Exit(1)
    _print({"id": token_id, "revoked": True}, as_json, f"revoked {token_id}")


@accounts_app.command("create")
def accounts_create(name: str, data_dir: Path | None = DataDir, as_json: bool = AsJson) -> None:
    """Create an account."""
    from sluice import admin

    row = asyncio.run(admin.create_account(_settings(data_dir), name))
    _print(row, as_json, f"{row['id']}  {row['name']}")


@accounts_app.command("list")
def accounts_list(data_dir: Path | None = DataDir, as_json: bool = AsJson) -> None:
    """List accounts."""
    from sluice import admin

    rows = asyncio.run(admin.list_accounts(_settings(data_dir)))
    _print(rows, as_json, "\n".join(f"{r['id']}  {r['name']}" for r in rows) or "no accounts")


@key_app.command("rotate")
def key_rotate(data_dir: Path | None = DataDir, as_json: bool = AsJson) -> None:
    """Add a new KEK and re-wrap every stored secret under it, while servers keep running."""
    from sluice import admin

    try:
        result = asyncio.run(admin.rotate_master_key(_settings(data_dir)))
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    _print(result, as_json,
           f"active key {result['active_kek_id']}; re-wrapped {result['rewrapped']} secret(s)")


@key_app.command("status")
def key_status(data_dir: Path | None = DataDir, as_json: bool = AsJson) -> None:
    """Show the loaded KEK ids and how many secrets each one wraps."""
    from sluice import admin

    result = asyncio.run(admin.master_key_status(_settings(data_dir)))
    _print(result, as_json, f"source: {result['source']}\nactive: {result['active_kek_id']}\n" + "\n".join(
        f"  {kek}: {count} secret(s)" for kek, count in result["secrets_per_kek"].items()))


def main() -> None:
    app()
