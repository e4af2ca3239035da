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
from tests.support.key_echo import BODY, PATHS, echo_traffic, install, planted_keys
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


def test_echoed_keys_of_any_shape_are_stored_nowhere(cf, server, api,  # type: ignore[no-untyped-def]
                                                     gateway) -> None:
    """Issue 15 item 6: keys of no known shape (and one under a non-default alias) echoed by the
    provider in error bodies are not in the Logs API as a read-only token sees it, the database
    file (WAL included), ``/metrics`` or the server output; the echoes themselves are logged."""
    keys = planted_keys()
    install(api, gateway, keys)
    marker = f"marker-{secrets.token_hex(8)}"
    responses = echo_traffic(server, gateway, keys, headers={"cf-aig-metadata": f'{{"marker":"{marker}"}}'})
    # a 2xx whose logged request (body, user agent) quotes a stored key: masked by the log writer
    with httpx.Client(timeout=30) as client:
        for (provider, alias), key in keys.items():
            pasted = client.post(f"{gateway_url(server, gateway, provider)}/{PATHS[provider]}",
                                 json={**BODY, "messages": [{"role": "user", "content": f"my key is {key}"}]},
                                 headers={"cf-aig-byok-alias": alias, "user-agent": f"pasted/{key}"})
            assert pasted.status_code == 200, pasted.text
            responses.append(pasted)
    ids = [response.headers["cf-aig-log-id"] for response in responses]
    for log_id in ids:
        wait_for_log(cf, server, gateway, log_id)

    reader = create_token(api, ["AI Gateway Read"])
    with httpx.Client(base_url=f"{server.api}/accounts/{server.account_id}", timeout=30,
                      headers={"Authorization": f"Bearer {reader}"}) as read_only:
        assert read_only.get("/secrets_store/stores").status_code == 403  # read-only indeed
        logs_url = f"/ai-gateway/gateways/{gateway}/logs"
        pages = [read_only.get(logs_url, params={"per_page": 50, "page": page}) for page in (1, 2)]
        assert all(page.status_code == 200 for page in pages)
        assert {item["id"] for page in pages for item in page.json()["result"]} >= set(ids)
        shown = [page.text for page in pages]
        for log_id in ids:
            for suffix in ("", "/request", "/response"):
                answer = read_only.get(f"{logs_url}/{log_id}{suffix}")
                assert answer.status_code == 200, answer.text
                shown.append(answer.text)
    logs_api = "\n".join(shown)
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    database = database_bytes(server)  # the SQLite files (WAL included), or every stored column
    output = server.output()

    assert marker in logs_api and marker.encode() in database  # the search looks at the right bytes
    assert "Incorrect API key provided" in logs_api and "[REDACTED]" in logs_api  # the echoes were logged
    assert logs_api.count("my key is [REDACTED]") >= len(keys) and "pasted/[REDACTED]" in logs_api
    for key in keys.values():
        assert key not in logs_api, "a stored key in the Logs API"
        assert key.encode() not in database, "a stored key in the database file"
        assert key not in metrics and key not in output
