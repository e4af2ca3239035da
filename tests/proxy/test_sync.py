"""StateSync against a real SQLite file, with an injected clock: the feed brings changes made by
others, and a process that could not read the feed for too long reloads everything (the rows it
missed may have been pruned)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluice.clock import new_id
from sluice.control.tokens import token_row
from sluice.identity.credentials import hash_value
from sluice.providers.registry import load_catalog
from sluice.proxy.sync import RESYNC_AFTER_S, StateSync
from sluice.services import Keys, Services
from sluice.settings import load_settings
from sluice.store import queries
from sluice.store.database import open_database


@pytest.fixture()
async def sync(tmp_path: Path) -> AsyncIterator[tuple[StateSync, list[float], str]]:
    settings = load_settings({"SLUICE_DATA_DIR": str(tmp_path)}, master_key=None)
    db = await open_database(f"sqlite:///{tmp_path / 'sync.db'}")
    services = Services(settings=settings, db=db, keys=Keys(settings, keyring=_keyring()),
                        catalog=load_catalog({}))
    account = new_id()
    async with db.begin() as conn:
        await queries.insert_account(conn, account, "sync")
        await queries.insert_token(conn, token_row(account, "first", "sluice_first", ["AI Gateway Run"]))
    now = [0.0]
    state = StateSync(services, clock=lambda: now[0])
    await state.start()  # the poll job runs every 0.5 s; the tests call poll_once themselves
    yield state, now, account
    await state.close()
    await db.close()


def _keyring():  # type: ignore[no-untyped-def]
    from sluice.secrets.crypto import Keyring

    return Keyring((os.urandom(32),))


async def _add_token(sync: StateSync, account: str, value: str, *, record: bool) -> None:
    async with sync.services.db.begin() as conn:
        await queries.insert_token(conn, token_row(account, value, value, ["AI Gateway Run"]))
        if record:
            await queries.record_change(conn, account, "token")


async def test_a_change_recorded_elsewhere_is_applied_by_the_poll(sync) -> None:  # type: ignore[no-untyped-def]
    state, _, account = sync
    assert hash_value("sluice_first") in state.accounts[account].tokens
    await _add_token(state, account, "sluice_second", record=True)
    await state.poll_once()
    assert hash_value("sluice_second") in state.accounts[account].tokens


async def test_a_process_cut_off_for_too_long_reloads_every_account(sync) -> None:  # type: ignore[no-untyped-def]
    state, now, account = sync
    await _add_token(state, account, "sluice_unrecorded", record=False)  # as if its feed row was pruned
    await state.poll_once()
    assert hash_value("sluice_unrecorded") not in state.accounts[account].tokens  # the feed has nothing
    now[0] += RESYNC_AFTER_S + 1  # no successful read for that long
    await state.poll_once()
    assert hash_value("sluice_unrecorded") in state.accounts[account].tokens


async def test_a_custom_provider_made_elsewhere_is_resolved_after_the_poll(sync) -> None:  # type: ignore[no-untyped-def]
    """Custom providers are part of the in-memory state: loaded (extra headers decrypted) when the
    feed names the account, never read per request."""
    from sluice.proxy.state import resolve_provider
    from sluice.secrets import vault
    from tests.support.stored import custom_provider_row

    state, _, account = sync
    provider_id = new_id()
    async with state.services.db.begin() as conn:
        store = await vault.default_store(conn, account)
        secret = await vault.create_secret(conn, state.services.keyring, account_id=account,
                                           store_id=store["id"], name="h", value='{"x-team": "team-value-1"}',
                                           scopes=["ai_gateway"], created_by=provider_id)
        await queries.insert_custom_provider(conn, custom_provider_row(
            account, "elsewhere", id=provider_id, header_names='["x-team"]', headers_secret_id=secret["id"]))
    await state.poll_once()
    assert resolve_provider(state.accounts[account], "custom-elsewhere") is None  # no feed row yet
    async with state.services.db.begin() as conn:
        await queries.record_change(conn, account, "custom_provider")
    await state.poll_once()
    provider = resolve_provider(state.accounts[account], "custom-elsewhere")
    assert provider is not None and provider.custom
    assert provider.upstream_url("chat/completions", "", account) == "http://127.0.0.1:9/v1/chat/completions"
    assert provider.extra_headers == (("x-team", "team-value-1"),)
    assert resolve_provider(state.accounts[account], "openai") is not None  # the catalog stays reachable
    assert state.accounts[account].key_matcher.redact(b"team-value-1") == b"[REDACTED]"
    async with state.services.db.begin() as conn:
        await queries.update_custom_provider(conn, provider_id, {"enable": False})
        await queries.record_change(conn, account, "custom_provider")
    await state.poll_once()
    assert resolve_provider(state.accounts[account], "custom-elsewhere") is None  # disabled: not routable


async def test_a_change_a_reload_has_seen_is_not_reloaded_again_by_the_poll(sync, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A management write in this process reloads its account (``refresh``); the poll then finds that
    write's feed row and, before, loaded the account a second time for it. A change the reload had
    not seen (made after it) is still reloaded."""
    state, _, account = sync
    reloads: list[str] = []
    original = state._reload

    async def counted(account_id: str, horizon: int | None = None) -> None:
        reloads.append(account_id)
        await original(account_id, horizon)

    monkeypatch.setattr(state, "_reload", counted)
    await _add_token(state, account, "sluice_mine", record=True)
    await state.refresh(account)
    assert reloads == [account]
    await state.poll_once()
    assert reloads == [account]  # the poll read the row and knew it applied
    assert hash_value("sluice_mine") in state.accounts[account].tokens

    await _add_token(state, account, "sluice_later", record=True)  # as if from another process
    await state.poll_once()
    assert reloads == [account, account]
    assert hash_value("sluice_later") in state.accounts[account].tokens
    await state.poll_once()
    assert reloads == [account, account]
    assert state._fresh == {}  # every row it remembered is now below the horizon
