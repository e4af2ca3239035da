"""Canaries, after the fact: a stored provider key, a Sluice token used as the SDK's api_key and a
gateway token sent in cf-aig-authorization carry traffic (plain, streamed, cached, failed); then
none of them may appear in what the server keeps or shows: the Logs API (list, get, request,
response), the database (SQLite: the file bytes, WAL and shared memory included; PostgreSQL: every
column of every table), ``GET /metrics`` and the
server's output. A marker sent as metadata must be found in the same places, so the search is shown
to look at the right bytes."""

from __future__ import annotations

import secrets

import anthropic
import httpx
import openai

from tests.observe.test_end_to_end import wait_for_log
from tests.proxy.helpers import add_config, create_token, gateway_url, set_gateway
from tests.support.stored import database_bytes

MESSAGES = [{"role": "user", "content": "canary traffic"}]


def _traffic(server, gateway: str, token: str,  # type: ignore[no-untyped-def]
             gateway_token: str, marker: str) -> list[str]:
    """Requests of every kind; returns the log ids of those that reached a provider or the cache."""
    meta = {"cf-aig-metadata": f'{{"marker":"{marker}"}}',
            "cf-aig-authorization": f"Bearer {gateway_token}"}
    ids = []
    oai = openai.OpenAI(base_url=gateway_url(server, gateway), api_key=token, max_retries=0,
                        default_headers=meta)
    statuses = []
    for _ in range(2):  # the second is a cache hit
        raw = oai.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
        ids.append(raw.headers["cf-aig-log-id"])
        statuses.append(raw.headers.get("cf-aig-cache-status"))
    assert statuses == ["MISS", "HIT"]
    raw = oai.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                                        stream_options={"include_usage": True})
    list(raw.parse())
    ids.append(raw.headers["cf-aig-log-id"])
    for failure in ({"x-mock-fault": "status:500"}, {"cf-aig-byok-alias": "missing"}):
        try:
            oai.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=failure)
        except openai.APIStatusError:
            pass
    oai.close()
    claude = anthropic.Anthropic(base_url=gateway_url(server, gateway, "anthropic"), api_key=token,
                                 max_retries=0, default_headers=meta)
    raw = claude.messages.with_raw_response.create(model="claude-3-5-haiku", max_tokens=9, messages=MESSAGES)
    ids.append(raw.headers["cf-aig-log-id"])
    raw = claude.messages.with_raw_response.create(model="claude-3-5-haiku", max_tokens=9, messages=MESSAGES,
                                                   stream=True)
    list(raw.parse())
    ids.append(raw.headers["cf-aig-log-id"])
    claude.close()
    return ids


def test_no_credential_is_stored_or_shown(cf, server, api, gateway) -> None:  # type: ignore[no-untyped-def]
    openai_key = f"sk-canary-{secrets.token_hex(16)}"
    anthropic_key = f"sk-ant-canary-{secrets.token_hex(16)}"
    add_config(api, gateway, "openai", secret=openai_key)
    add_config(api, gateway, "anthropic", secret=anthropic_key)
    set_gateway(api, gateway, authentication=True, cache_ttl=300)
    token, gateway_token = create_token(api), create_token(api)
    canaries = (openai_key, anthropic_key, token, gateway_token)
    marker = f"marker-{secrets.token_hex(8)}"

    ids = _traffic(server, gateway, token, gateway_token, marker)
    for log_id in ids:
        wait_for_log(cf, server, gateway, log_id)  # committed to the database

    logs_url = f"/ai-gateway/gateways/{gateway}/logs"
    listed = api.get(logs_url, params={"per_page": 50})
    every = [item["id"] for item in listed.json()["result"]]
    assert set(ids) <= set(every) and len(every) >= len(ids) + 2  # the failures are logged too
    shown = [listed.text]
    for log_id in every:
        for suffix in ("", "/request", "/response"):
            shown.append(api.get(f"{logs_url}/{log_id}{suffix}").text)
    logs_api = "\n".join(shown)
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    database = database_bytes(server)
    if server.on_sqlite:
        assert any(p.name.endswith("-wal") for p in server.data_dir.glob("sluice.db*")), "expected WAL mode"
    output = server.output()

    # the places searched do hold this traffic
    assert marker in logs_api and marker.encode() in database
    assert f'gateway="{gateway}"' in metrics and 'result="hit"' in metrics
    assert "sluice ready" in output  # the server's own output was captured
    for canary in canaries:
        assert canary not in logs_api, "a credential in the Logs API"
        assert canary.encode() not in database, "a credential in the database"
        assert canary not in metrics, "a credential in /metrics"
        assert canary not in output, "a credential in the server output"
