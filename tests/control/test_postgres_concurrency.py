"""Concurrent provider-config and Secrets Store writes against a server on PostgreSQL (SQLite
serialises writers with BEGIN IMMEDIATE; PostgreSQL's READ COMMITTED does not, so the invariants
need their own proof)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx
import pytest

from sluice.store.queries import KEY_WRITES_LOCK
from tests.control.assertions import assert_ok
from tests.support.server import Server

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
WORKERS = 12


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Its own fresh database: ``sluice init`` needs one with no account yet."""
    name = f"sluice_conc_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is unreachable: {exc}")
    srv = Server(tmp_path_factory.mktemp("pg") / "data",
                 env={"SLUICE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}"}).start()
    yield srv
    srv.stop()
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _burst(srv: Server, url: str, bodies: list[dict]) -> list[httpx.Response]:
    def post(body: dict) -> httpx.Response:
        return httpx.post(url, json=body, headers=srv.headers(), timeout=60)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def _gateway(srv: Server) -> str:
    gateway_id = "conc-" + secrets.token_hex(4)
    assert_ok(httpx.post(f"{srv.api}/accounts/{srv.account_id}/ai-gateway/gateways", json={"id": gateway_id},
                         headers=srv.headers()))
    return gateway_id


def test_concurrent_defaults_leave_exactly_one(pg_server: Server) -> None:
    srv = pg_server
    url = f"{srv.api}/accounts/{srv.account_id}/ai-gateway/gateways/{_gateway(srv)}/provider_configs"
    responses = _burst(srv, url, [{"provider_slug": "openai", "alias": f"d{i}", "default_config": True,
                                   "secret": f"sk-default-{i}-123456"} for i in range(WORKERS)])
    failed = [r.text for r in responses if r.status_code != 200]
    assert [r.status_code for r in responses] == [200] * WORKERS, failed
    configs = assert_ok(httpx.get(url, headers=srv.headers()))
    assert len(configs) == WORKERS
    assert sum(c["default_config"] for c in configs) == 1, configs


def test_concurrent_duplicate_alias_is_one_create_and_conflicts(pg_server: Server) -> None:
    srv = pg_server
    url = f"{srv.api}/accounts/{srv.account_id}/ai-gateway/gateways/{_gateway(srv)}/provider_configs"
    responses = _burst(srv, url, [{"provider_slug": "openai", "alias": "same", "default_config": False,
                                   "secret": f"sk-same-{i}-123456"} for i in range(WORKERS)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * (WORKERS - 1), [r.text for r in responses]
    assert len(assert_ok(httpx.get(url, headers=srv.headers()))) == 1


def test_concurrent_first_configs_share_one_default_store(pg_server: Server) -> None:
    """Each gateway's first config creates or reuses the account's default store, at the same moment."""
    srv = pg_server
    gateways = [_gateway(srv) for _ in range(WORKERS)]
    base = f"{srv.api}/accounts/{srv.account_id}/ai-gateway/gateways"

    def post(gateway_id: str) -> httpx.Response:
        return httpx.post(f"{base}/{gateway_id}/provider_configs", headers=srv.headers(), timeout=60,
                          json={"provider_slug": "groq", "alias": "k", "default_config": True,
                                "secret": "gsk-12345678"})

    with ThreadPoolExecutor(WORKERS) as pool:
        responses = list(pool.map(post, gateways))
    failed = [r.text for r in responses if r.status_code != 200]
    assert [r.status_code for r in responses] == [200] * WORKERS, failed
    stores = {assert_ok(httpx.get(f"{base}/{g}", headers=srv.headers()))["store_id"] for g in gateways}
    assert len(stores) == 1


def _store_with_secret(srv: Server) -> tuple[str, str]:
    base = f"{srv.api}/accounts/{srv.account_id}/secrets_store/stores"
    store = assert_ok(httpx.post(base, json={"name": "s-" + secrets.token_hex(4)}, headers=srv.headers()))
    [secret] = assert_ok(httpx.post(f"{base}/{store['id']}/secrets", headers=srv.headers(), json=[
        {"name": "k-" + secrets.token_hex(4), "value": "sk-lock-test-12345678", "scopes": ["ai_gateway"]}]))
    return f"{base}/{store['id']}", secret["id"]


@pytest.mark.parametrize("operation", ["delete secret", "create secrets", "patch secret", "duplicate secret",
                                       "delete store", "delete gateway", "bulk delete secrets"])
def test_key_writes_wait_for_the_accounts_key_lock(pg_server: Server, operation: str) -> None:
    """Secrets Store writes and gateway deletes (which delete configs and their secrets) take the lock
    provider-config writes take, so none acts on what another is changing."""
    srv = pg_server
    store_url, secret_id = _store_with_secret(srv)
    gateway_url = f"{srv.api}/accounts/{srv.account_id}/ai-gateway/gateways/{_gateway(srv)}"
    send = {
        "delete secret": lambda: httpx.delete(f"{store_url}/secrets/{secret_id}", headers=srv.headers(),
                                              timeout=60),
        "create secrets": lambda: httpx.post(f"{store_url}/secrets", headers=srv.headers(), timeout=60, json=[
            {"name": "new-" + secrets.token_hex(4), "value": "sk-another-12345678",
             "scopes": ["ai_gateway"]}]),
        "patch secret": lambda: httpx.patch(f"{store_url}/secrets/{secret_id}", headers=srv.headers(),
                                            timeout=60,
                                            json={"comment": "rotated"}),
        "duplicate secret": lambda: httpx.post(f"{store_url}/secrets/{secret_id}/duplicate",
                                               headers=srv.headers(),
                                               timeout=60, json={"name": "dup-" + secrets.token_hex(4),
                                                                 "scopes": ["ai_gateway"]}),
        "delete store": lambda: httpx.delete(store_url, params={"force": "true"}, headers=srv.headers(),
                                             timeout=60),
        "delete gateway": lambda: httpx.delete(gateway_url, headers=srv.headers(), timeout=60),
        "bulk delete secrets": lambda: httpx.request("DELETE", f"{store_url}/secrets", headers=srv.headers(),
                                                     timeout=60, json=[{"id": secret_id}]),
    }[operation]

    async def run() -> httpx.Response:
        holder = await asyncpg.connect(srv.env["SLUICE_DATABASE_URL"])  # advisory locks are per database
        try:
            await holder.execute("SELECT pg_advisory_lock($1, hashtext($2))", KEY_WRITES_LOCK, srv.account_id)
            with ThreadPoolExecutor(1) as pool:
                pending = asyncio.get_running_loop().run_in_executor(pool, send)
                done, _ = await asyncio.wait([pending], timeout=1.5)
                assert not done, f"{operation} went ahead while the account's key writes were locked"
                await holder.execute("SELECT pg_advisory_unlock($1, hashtext($2))", KEY_WRITES_LOCK,
                                     srv.account_id)
                return await pending
        finally:
            await holder.close()

    response = asyncio.run(run())
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("bulk", [False, True], ids=["delete", "bulk-delete"])
def test_a_secret_deleted_while_configs_are_created_with_it_is_never_left_in_use(pg_server: Server,
                                                                                 bulk: bool) -> None:
    srv = pg_server
    for _ in range(3):
        store_url, secret_id = _store_with_secret(srv)
        gateway = _gateway(srv)
        configs_url = f"{srv.api}/accounts/{srv.account_id}/ai-gateway/gateways/{gateway}/provider_configs"

        def create(i: int, configs_url: str = configs_url, secret_id: str = secret_id) -> httpx.Response:
            return httpx.post(configs_url, headers=srv.headers(), timeout=60, json={
                "provider_slug": "openai", "alias": f"a{i}", "default_config": False, "secret_id": secret_id})

        def delete(store_url: str = store_url, secret_id: str = secret_id) -> httpx.Response:
            if bulk:
                return httpx.request("DELETE", f"{store_url}/secrets", headers=srv.headers(), timeout=60,
                                     json=[{"id": secret_id}])
            return httpx.delete(f"{store_url}/secrets/{secret_id}", headers=srv.headers(), timeout=60)

        with ThreadPoolExecutor(WORKERS) as pool:
            made = [pool.submit(create, i) for i in range(WORKERS - 1)]
            deleted = pool.submit(delete).result()
            results = [f.result() for f in made]
        configs = assert_ok(httpx.get(configs_url, headers=srv.headers()))
        statuses = sorted({r.status_code for r in results})
        assert statuses in ([200], [200, 400], [400]), [r.text for r in results]
        if deleted.status_code == 200:  # it went first: no config may point at it
            assert configs == [], configs
        else:  # some config was created first: the delete is refused and the secret stays
            assert deleted.status_code == 409 and configs, deleted.text
            assert httpx.get(f"{store_url}/secrets/{secret_id}", headers=srv.headers()).status_code == 200
