"""The storage contract, run against both backends: SQLite (a temp file) and PostgreSQL.

Exercises ``open_database`` + ``queries`` + ``vault`` directly; the API tests cover the rest.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from sluice.clock import new_id, now, rfc3339
from sluice.errors import Conflict, CryptoError
from sluice.secrets import vault
from sluice.secrets.crypto import Keyring
from sluice.store import queries
from sluice.store.database import Database, open_database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Sync on purpose: ``pg_url`` runs its own event loop, which cannot nest in the test loop."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('store') / 'contract.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="module")
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await open_database(db_url)
    assert database.dialect == db_url.split(":")[0]
    yield database
    await database.close()


@pytest.fixture()
async def account(db: Database) -> str:
    account_id = new_id()
    async with db.begin() as conn:
        await queries.insert_account(conn, account_id, "contract")
    return account_id


KEYRING = Keyring((os.urandom(32),))


def config_row(account_id: str, gateway_id: str, alias: str, secret_id: str, default: bool = False,
               slug: str = "openai") -> dict:
    stamp = rfc3339(now())
    return {"id": new_id(), "account_id": account_id, "gateway_id": gateway_id, "provider_slug": slug,
            "alias": alias,
            "default_config": default, "secret_id": secret_id, "rate_limit": None, "rate_limit_period": 60,
            "created_at": stamp, "modified_at": stamp}


async def new_store(db: Database, account_id: str) -> dict:
    async with db.begin() as conn:
        return await vault.default_store(conn, account_id)


async def test_migrations_are_idempotent(db: Database) -> None:
    await db.migrate()
    await db.migrate()
    again = await open_database(db.url)
    try:
        async with again.begin() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        assert version
        assert await again.ping()
    finally:
        await again.close()


async def test_gateway_insert_get_list_paging_order(db: Database, account: str) -> None:
    ids = [f"gw-{i}-{secrets.token_hex(2)}" for i in range(5)]
    async with db.begin() as conn:
        for gateway_id in ids:
            await queries.insert_gateway(conn, account, gateway_id, {"cache_ttl": 5, "authentication": True})
    async with db.begin() as conn:
        got = await queries.get_gateway(conn, account, ids[0])
        assert got is not None and got["cache_ttl"] == 5 and got["account_id"] == account
        assert await queries.get_gateway(conn, new_id(), ids[0]) is None, "scoped by account"
        rows, total = await queries.list_gateways(conn, account, None, 1, 100)
        # same created_at millisecond is possible: the order is (created_at, id), stable either way
        ordered = sorted(rows, key=lambda r: (r["created_at"], r["id"]))
        assert total == 5 and [r["id"] for r in rows] == [r["id"] for r in ordered]
        assert sorted(r["id"] for r in rows) == sorted(ids)
        page2, _ = await queries.list_gateways(conn, account, None, 2, 2)
        assert [r["id"] for r in page2] == [r["id"] for r in rows[2:4]]
        past, total = await queries.list_gateways(conn, account, None, 4, 2)
        assert past == [] and total == 5
        found, total = await queries.list_gateways(conn, account, ids[3], 1, 10)
        assert [r["id"] for r in found] == [ids[3]] and total == 1
        # LIKE wildcards are literal
        assert (await queries.list_gateways(conn, account, "gw-_", 1, 10))[0] == []


async def test_unique_constraints(db: Database, account: str) -> None:
    store = await new_store(db, account)
    async with db.begin() as conn:
        await queries.insert_gateway(conn, account, "uniq", {})
        secret = await vault.create_secret(conn, KEYRING, account_id=account, store_id=store["id"], name="n",
                                           value="v-1", scopes=["ai_gateway"])
        await queries.insert_config(conn, config_row(account, "uniq", "a", secret["id"]))
    duplicates = [
        lambda conn: queries.insert_account(conn, account, "again"),
        lambda conn: queries.insert_gateway(conn, account, "uniq", {}),
        lambda conn: queries.insert_config(conn, config_row(account, "uniq", "a", secret["id"])),
        lambda conn: vault.create_secret(conn, KEYRING, account_id=account, store_id=store["id"], name="n",
                                         value="v-2", scopes=["workers"]),
        lambda conn: queries.insert_store(conn, {**store, "id": new_id()}),
    ]
    for attempt in duplicates:  # the store answers a taken key with the domain's 409, not the driver's error
        with pytest.raises(Conflict, match="already exists") as caught:
            async with db.begin() as conn:
                await attempt(conn)
        assert caught.value.status == 409 and caught.value.headers == {"x-should-retry": "false"}
    async with db.begin() as conn:
        _, total = await queries.list_configs(conn, account, "uniq")
        assert total == 1
        # same alias on another gateway or provider is fine
        await queries.insert_config(conn, config_row(account, "uniq", "a", secret["id"], slug="groq"))


async def test_failed_transaction_rolls_back(db: Database, account: str) -> None:
    with pytest.raises(Conflict):
        async with db.begin() as conn:
            await queries.insert_gateway(conn, account, "rolled-back", {})
            await queries.insert_account(conn, account, "dup")
    async with db.begin() as conn:
        assert await queries.get_gateway(conn, account, "rolled-back") is None


async def test_delete_gateway_cascades(db: Database, account: str) -> None:
    store = await new_store(db, account)
    async with db.begin() as conn:
        for gateway_id in ("doomed", "kept"):
            await queries.insert_gateway(conn, account, gateway_id, {})
        made = []
        for gateway_id in ("doomed", "kept"):
            config = config_row(account, gateway_id, "k", "")
            secret = await vault.create_secret(conn, KEYRING, account_id=account, store_id=store["id"],
                                               name=f"{gateway_id}_openai_k", value="v-x",
                                               scopes=["ai_gateway"],
                                               created_by=config["id"])
            await queries.insert_config(conn, {**config, "secret_id": secret["id"]})
            made.append(secret["id"])
        foreign = await vault.create_secret(conn, KEYRING, account_id=account, store_id=store["id"],
                                            name="user-made",
                                            value="v-y", scopes=["ai_gateway"])
        await queries.insert_config(conn, config_row(account, "doomed", "byid", foreign["id"]))
    async with db.begin() as conn:
        await queries.delete_gateway(conn, account, "doomed")
    async with db.begin() as conn:
        assert await queries.get_gateway(conn, account, "doomed") is None
        assert (await queries.list_configs(conn, account, "doomed"))[1] == 0
        assert (await queries.list_configs(conn, account, "kept"))[1] == 1
        assert await queries.get_secret(conn, account, made[0]) is None
        assert await queries.get_secret(conn, account, made[1]) is not None
        assert await queries.get_secret(conn, account, foreign["id"]) is not None, "not created by a config"


async def test_demote_defaults(db: Database, account: str) -> None:
    async with db.begin() as conn:
        rows = [config_row(account, "dflt", alias, "s", default=True, slug=slug)
                for alias, slug in (("a", "openai"), ("b", "openai"), ("c", "anthropic"))]
        for row in rows:
            await queries.insert_config(conn, row)
        await queries.demote_defaults(conn, account, "dflt", "openai", rows[1]["id"])
    async with db.begin() as conn:
        listed, _ = await queries.list_configs(conn, account, "dflt")
    assert {r["alias"]: bool(r["default_config"]) for r in listed} == {"a": False, "b": True, "c": True}


async def test_change_feed(db: Database, account: str) -> None:
    async with db.begin() as conn:
        start = await queries.feed_horizon(conn)
        await queries.record_change(conn, account, "gateway")
        await queries.record_change(conn, account, "provider_config")
    async with db.begin() as conn:
        horizon = await queries.feed_horizon(conn)
        new = await queries.changes_from(conn, start)
        assert [(c["account_id"], c["kind"]) for c in new if c["account_id"] == account] == \
            [(account, "gateway"), (account, "provider_config")]
        # Never behind where it was; how far ahead depends on every transaction in the cluster (other
        # sessions may hold it back), which tests/store/test_change_feed.py drives explicitly.
        assert horizon >= start and all(c["xid"] >= start for c in new)


async def test_prune_keeps_the_newest_row(db: Database, account: str) -> None:
    async with db.begin() as conn:
        await queries.record_change(conn, account, "gateway")
        await queries.record_change(conn, account, "token")
    async with db.begin() as conn:
        await queries.prune_changes(conn, "9999-12-31T00:00:00.000Z")  # everything is "old"
        left = await queries.changes_from(conn, 0)
    assert [(c["account_id"], c["kind"]) for c in left] == [(account, "token")]


async def test_sealed_secret_roundtrip_and_binding(db: Database, account: str) -> None:
    store = await new_store(db, account)
    values = {"first": "sk-first-" + secrets.token_hex(8), "second": "sk-second-é-" + secrets.token_hex(8)}
    async with db.begin() as conn:
        made = {name: await vault.create_secret(conn, KEYRING, account_id=account, store_id=store["id"],
                                                name=f"bind-{name}", value=value, scopes=["ai_gateway"])
                for name, value in values.items()}
    ids = {name: row["id"] for name, row in made.items()}
    async with db.begin() as conn:
        rows = {r["id"]: r for r in await queries.sealed_secrets(conn, list(ids.values()))}
        public = await queries.get_secret(conn, account, ids["first"])
    assert "ciphertext" not in public and "wrapped_key" not in public  # type: ignore[operator]
    for name, secret_id in ids.items():
        assert vault.open_row(KEYRING, rows[secret_id]) == values[name]
        assert values[name].encode() not in bytes(rows[secret_id]["ciphertext"])
    # copy the first row's sealed columns onto the second row: it must not decrypt there
    first = rows[ids["first"]]
    async with db.begin() as conn:
        await queries.update_secret(conn, ids["second"],
                                    {"kek_id": first["kek_id"], "wrapped_key": first["wrapped_key"],
                                                          "ciphertext": first["ciphertext"]})
        moved = (await queries.sealed_secrets(conn, [ids["second"]]))[0]
    with pytest.raises(CryptoError):
        vault.open_row(KEYRING, moved)
    with pytest.raises(CryptoError):
        vault.open_row(Keyring((os.urandom(32),)), first)
    # replace_value re-seals in place
    async with db.begin() as conn:
        secret = await queries.get_secret(conn, account, ids["second"])
        await vault.replace_value(conn, KEYRING, secret, "sk-replaced")  # type: ignore[arg-type]
        fixed = (await queries.sealed_secrets(conn, [ids["second"]]))[0]
    assert vault.open_row(KEYRING, fixed) == "sk-replaced"


async def test_token_and_user_lookups(db: Database, account: str) -> None:
    async with db.begin() as conn:
        user_id = new_id()
        email = f"{user_id}@example.com"
        key_hash = secrets.token_hex(32)
        await queries.insert_user(conn, user_id, email, key_hash)
        await queries.add_member(conn, account, user_id)
        assert await queries.user_accounts(conn, email, key_hash) == [account]
        assert await queries.user_accounts(conn, email, "wrong") is None
        assert await queries.user_accounts(conn, "nobody@example.com", "x") is None
    with pytest.raises(Conflict):
        async with db.begin() as conn:
            await queries.insert_user(conn, new_id(), email, secrets.token_hex(32))


async def test_token_restrictions_round_trip(db: Database, account: str) -> None:
    from sluice.control.tokens import token_row
    from sluice.identity.restrictions import restrictions

    row = token_row(account, "restricted", "sluice_" + secrets.token_urlsafe(32), ["AI Gateway Run"],
                    "2031-01-01T00:00:00.000Z", not_before="2030-01-01T00:00:00.000Z",
                    condition='{"request_ip": {"in": ["10.0.0.0/8"], "not_in": ["::1/128"]}}', policies="[]")
    async with db.begin() as conn:
        await queries.insert_token(conn, row)
        stored = await queries.token_by_hash(conn, row["value_hash"])
        assert stored is not None and stored["condition"] == row["condition"]
        rules = restrictions(stored)
        assert rules.ip is not None and rules.ip.permits("10.1.2.3") and not rules.ip.permits("::1")
        assert not rules.in_window(1_893_456_000.0 - 1) and rules.in_window(1_893_456_000.0)  # 2030-01-01
        await queries.update_token(conn, row["id"], {"condition": None, "not_before": None})
        cleared = await queries.get_token(conn, account, row["id"])
    assert cleared is not None and restrictions(cleared).ip is None and cleared["not_before"] is None


def test_sqlite_file_is_private(tmp_path: Path) -> None:
    import asyncio

    async def run() -> None:
        database = await open_database(f"sqlite:///{tmp_path / 'priv' / 'x.db'}")
        await database.close()

    asyncio.run(run())
    assert (tmp_path / "priv" / "x.db").stat().st_mode & 0o077 == 0


def test_head_revision_constant_matches_alembic() -> None:
    """database.HEAD_REVISION lets a started server skip importing Alembic; it must be the real head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from sluice.store.database import HEAD_REVISION, MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_heads() == [HEAD_REVISION]


async def test_sqlite_transactions_queue_in_order_and_nesting_fails_loudly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One writer at a time inside a process (no busy-handler starvation); a nested begin() in one
    task would wait for itself forever, so it raises instead."""
    import asyncio

    import pytest

    from sluice.store.database import open_database

    db = await open_database(f"sqlite:///{tmp_path / 'order.db'}")
    try:
        order: list[int] = []

        async def write(n: int) -> None:
            async with db.begin() as conn:
                await queries.record_change(conn, "acct", f"k{n}")
                await asyncio.sleep(0.01)  # hold the transaction while the others queue
                order.append(n)

        tasks = []
        for n in range(5):
            tasks.append(asyncio.ensure_future(write(n)))
            await asyncio.sleep(0)  # queue them in a known order
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2, 3, 4]
        with pytest.raises(RuntimeError, match="deadlock"):
            async with db.begin():
                async with db.begin():
                    pass
    finally:
        await db.close()


async def test_write_batch_commits_or_rolls_back_as_one(db: Database, account: str) -> None:
    def insert(gateway_id: str):  # type: ignore[no-untyped-def]
        def work(conn):  # type: ignore[no-untyped-def]
            conn.execute(text("INSERT INTO gateways (account_id, id, body, created_at, modified_at) "
                              "VALUES (:a, :g, '{}', 'now', 'now')"), {"a": account, "g": gateway_id})
            return queries.get_gateway_sync(conn, account, gateway_id)
        return work

    assert (await db.write_batch(insert("batch")))["id"] == "batch"  # type: ignore[index]

    def two(conn):  # type: ignore[no-untyped-def]
        insert("rolled-back")(conn)
        insert("batch")(conn)  # violates the key: the whole batch is rolled back

    with pytest.raises(IntegrityError):
        await db.write_batch(two)
    async with db.begin() as conn:
        assert await queries.get_gateway(conn, account, "batch") is not None
        assert await queries.get_gateway(conn, account, "rolled-back") is None


async def test_sqlite_write_batch_runs_in_one_thread_and_queues_with_begin(tmp_path: Path) -> None:
    """A batch is one hop to the batch thread; in-process writers wait for it instead of spinning
    in SQLite's busy handler."""
    import asyncio
    import threading
    import time

    db = await open_database(f"sqlite:///{tmp_path / 'batch.db'}")
    try:
        order: list[str] = []
        threads: set[str] = set()

        def slow(conn):  # type: ignore[no-untyped-def]
            threads.add(threading.current_thread().name)
            conn.execute(text("INSERT INTO changes (account_id, kind, created_at) "
                              "VALUES ('a', 'batch', 'now')"))
            time.sleep(0.05)  # hold the write transaction while begin() queues
            order.append("batch")

        async def writer() -> None:
            async with db.begin() as conn:
                await queries.record_change(conn, "a", "begin")
                order.append("begin")

        batch = asyncio.ensure_future(db.write_batch(slow))
        await asyncio.sleep(0)
        await asyncio.gather(batch, writer())
        assert order == ["batch", "begin"]
        assert len(threads) == 1 and threading.current_thread().name not in threads
        with pytest.raises(RuntimeError, match="deadlock"):
            async with db.begin():
                await db.write_batch(slow)
    finally:
        await db.close()


async def test_custom_providers_slug_unique_search_and_store_delete(db: Database, account: str) -> None:
    from tests.support.stored import custom_provider_row

    async with db.begin() as conn:
        store = await vault.default_store(conn, account)
        secret = await vault.create_secret(conn, KEYRING, account_id=account, store_id=store["id"], name="h",
                                           value='{"x-a": "b"}', scopes=["ai_gateway"])
        first = custom_provider_row(account, "first", position=2, header_names='["x-a"]',
                                    headers_secret_id=secret["id"])
        await queries.insert_custom_provider(conn, first)
        await queries.insert_custom_provider(conn, custom_provider_row(account, "second_%", position=1))
    with pytest.raises(Conflict):  # its own transaction: on PostgreSQL the failed insert aborts it
        async with db.begin() as conn:
            await queries.insert_custom_provider(conn, custom_provider_row(account, "first"))
    async with db.begin() as conn:
        rows, total = await queries.list_custom_providers(conn, account)
        assert [r["slug"] for r in rows] == ["second_%", "first"] and total == 2
        assert [r["slug"] for r in (await queries.list_custom_providers(conn, account, search="d_%"))[0]] \
            == ["second_%"]
        assert await queries.secret_references(conn, secret["id"]) == 1
        assert await queries.secrets_references(conn, [secret["id"]]) == {secret["id"]: 1}
        await queries.delete_store(conn, store["id"])  # force: the headers go, the provider stays
        row = await queries.get_custom_provider(conn, account, first["id"])
        assert row is not None and row["headers_secret_id"] is None and row["header_names"] is None
