"""Durability: every provider-config create answered 200 survives a SIGKILL, secret included,
and an unanswered create is all-or-nothing (no config without its secret, no orphan secret)."""

from __future__ import annotations

import asyncio
import secrets
import threading
from pathlib import Path

import httpx
import pytest

from tests.control.assertions import assert_ok
from tests.support.server import Server
from tests.support.stored import read_secret_values

THREADS = 4
ANSWERED_BEFORE_KILL = 40


def all_pages(api: httpx.Client, url: str) -> list[dict]:
    out, page = [], 1
    while batch := assert_ok(api.get(url, params={"per_page": 100, "page": page})):
        out.extend(batch)
        page += 1
    return out


@pytest.mark.slow
def test_answered_creates_survive_sigkill(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data").start()
    base = f"{srv.api}/accounts/{srv.account_id}"
    assert_ok(httpx.post(f"{base}/ai-gateway/gateways", json={"id": "crash"}, headers=srv.headers()))
    url = f"{base}/ai-gateway/gateways/crash/provider_configs"

    answered: dict[str, tuple[dict, str]] = {}  # alias -> (config, secret sent)
    attempted: dict[str, str] = {}
    lock = threading.Lock()
    enough = threading.Event()

    def burst(worker: int) -> None:
        with httpx.Client(headers=srv.headers(), timeout=30) as client:
            for n in range(10_000):
                alias, value = f"w{worker}-{n}", f"sk-crash-{worker}-{n}-" + secrets.token_hex(12)
                with lock:
                    attempted[alias] = value
                try:
                    response = client.post(url, json={"provider_slug": "openai", "alias": alias,
                                                      "default_config": False, "secret": value})
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 200:
                    with lock:
                        answered[alias] = (response.json()["result"], value)
                        if len(answered) >= ANSWERED_BEFORE_KILL:
                            enough.set()

    threads = [threading.Thread(target=burst, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    assert enough.wait(timeout=120), f"the burst never got going:\n{srv.output()[-2000:]}"
    srv.kill()  # mid-burst: the other threads have requests in flight
    for thread in threads:
        thread.join(timeout=60)
    assert len(attempted) > len(answered), "some requests were in flight when the server died"

    srv.start()
    try:
        with httpx.Client(base_url=base, headers=srv.headers(), timeout=30) as api:
            configs_url = "/ai-gateway/gateways/crash/provider_configs"
            for config, _ in answered.values():
                got = assert_ok(api.get(f"{configs_url}/{config['id']}"))
                assert {k: got[k] for k in config} == config
            stored = {c["alias"]: c for c in all_pages(api, configs_url)}
            store_id = assert_ok(api.get("/ai-gateway/gateways/crash"))["store_id"]
            secret_names = {s["name"] for s in all_pages(api, f"/secrets_store/stores/{store_id}/secrets")}
    finally:
        srv.stop()

    assert set(answered) <= set(stored)
    # unanswered creates: committed entirely or not at all
    # no orphan secret, no config without one
    assert {f"crash_openai_{alias}" for alias in stored} == secret_names
    values = asyncio.run(read_secret_values(srv, [c["secret_id"] for c in stored.values()]))
    for alias, config in stored.items():
        assert values[config["secret_id"]] == attempted[alias], alias
