"""The response cache through the real data plane (docs/gateway.md, docs/observability.md), driven by
the official OpenAI SDK: HIT/MISS, scope per gateway, skip, streams stored only when complete, custom keys,
authentication and the key rate limit on hits. The mock numbers every response (``chatcmpl-mock…``),
so a HIT is recognisable by repeating the first response's id, and the mock's request log shows
what reached the provider."""

from __future__ import annotations

import re

import httpx
import openai
import pytest

from sluice.testing.mock_upstream import CHAT_TEXT, OPENAI_COMPLETION_TOKENS, OPENAI_PROMPT_TOKENS
from tests.observe.test_end_to_end import wait_for_log
from tests.proxy.helpers import add_config, create_token, gateway_url, set_gateway, upstream_requests

MESSAGES = [{"role": "user", "content": "cache me"}]
STATUS = "cf-aig-cache-status"


def _client(server, gateway: str, api_key: str = "sk-caller", **headers: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway_url(server, gateway), api_key=api_key, max_retries=0,
                         default_headers=headers or None)


def _chat(client: openai.OpenAI, content: str = "cache me", **headers: str):  # type: ignore[no-untyped-def]
    return client.chat.completions.with_raw_response.create(
        model="mock-model", messages=[{"role": "user", "content": content}], extra_headers=headers or None)


def _calls(upstream, gateway_marker: str = "/openai/chat/completions") -> int:  # type: ignore[no-untyped-def]
    return len(upstream_requests(upstream, gateway_marker))


def _metric(server, gateway: str, result: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    labels = rf'[^}}]*gateway="{re.escape(gateway)}"[^}}]*result="{result}"[^}}]*'
    pattern = rf"^sluice_cache_lookups_total\{{{labels}\}} (\S+)$"
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def test_second_identical_call_is_a_hit(server, api, cf, gateway, upstream) -> None:
    set_gateway(api, gateway, cache_ttl=300)
    add_config(api, gateway, alias="cached-key")
    client = _client(server, gateway, create_token(api))
    first = _chat(client)
    second = _chat(client)
    assert (first.headers[STATUS], second.headers[STATUS]) == ("MISS", "HIT")
    assert _calls(upstream) == 1
    assert second.parse().id == first.parse().id  # the very same response, replayed
    assert second.parse().choices[0].message.content == CHAT_TEXT
    assert "cf-aig-byok-alias" not in second.headers  # no stored key was used for the hit
    assert second.headers["cf-aig-log-id"] != first.headers["cf-aig-log-id"]

    missed = wait_for_log(cf, server, gateway, first.headers["cf-aig-log-id"])
    hit = wait_for_log(cf, server, gateway, second.headers["cf-aig-log-id"])
    assert (missed.cached, hit.cached) == (False, True)
    assert (hit.tokens_in, hit.tokens_out, hit.cost) == (OPENAI_PROMPT_TOKENS, OPENAI_COMPLETION_TOKENS, 0)
    assert (_metric(server, gateway, "hit"), _metric(server, gateway, "miss")) == (1, 1)


def test_entries_are_never_shared_across_gateways(server, api, gateway, upstream) -> None:
    other = api.post("/ai-gateway/gateways", json={"id": f"{gateway}-b", "authentication": False})
    assert other.status_code == 200, other.text
    for gw in (gateway, f"{gateway}-b"):
        set_gateway(api, gw, cache_ttl=300)
        add_config(api, gw)
    assert _chat(_client(server, gateway)).headers[STATUS] == "MISS"
    assert _chat(_client(server, f"{gateway}-b")).headers[STATUS] == "MISS"
    assert _calls(upstream) == 2
    assert _chat(_client(server, f"{gateway}-b")).headers[STATUS] == "HIT"
    assert _calls(upstream) == 2


def test_skip_cache_bypasses_lookup_and_store(server, api, gateway, upstream) -> None:
    set_gateway(api, gateway, cache_ttl=300)
    client = _client(server, gateway)
    stored = _chat(client)
    skipped = _chat(client, **{"cf-aig-skip-cache": "true"})
    assert STATUS not in skipped.headers  # the cache was not consulted
    assert skipped.parse().id != stored.parse().id
    assert _calls(upstream) == 2
    again = _chat(client)
    assert again.headers[STATUS] == "HIT" and again.parse().id == stored.parse().id  # skip stored nothing


def test_without_gateway_caching_nothing_is_cached_unless_asked(server, api, gateway, upstream) -> None:
    client = _client(server, gateway)
    plain = [_chat(client), _chat(client)]
    assert all(STATUS not in r.headers for r in plain)
    assert _calls(upstream) == 2
    ttl = {"cf-aig-cache-ttl": "60"}
    assert [_chat(client, **ttl).headers[STATUS] for _ in range(2)] == ["MISS", "HIT"]
    assert _calls(upstream) == 3
    # cf-aig-cache-key replaces the request-derived key: a different body finds the same entry
    keyed = {"cf-aig-cache-key": "greeting-v1"}
    first = _chat(client, "one body", **keyed)
    second = _chat(client, "another body", **keyed)
    assert (first.headers[STATUS], second.headers[STATUS]) == ("MISS", "HIT")
    assert second.parse().id == first.parse().id
    assert _calls(upstream) == 4
    assert _chat(client, **{"cf-aig-cache-ttl": "0"}).headers.get(STATUS) is None  # 0 turns it off


def test_a_stream_is_cached_only_when_complete(server, api, gateway, upstream) -> None:
    set_gateway(api, gateway, cache_ttl=300)
    client = _client(server, gateway)

    def stream(**headers: str) -> tuple[str, str]:
        raw = client.chat.completions.with_raw_response.create(
            model="mock-model", messages=MESSAGES, stream=True, extra_headers=headers or None)
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        return raw.headers.get(STATUS, ""), text

    with pytest.raises(openai.APIError):  # the provider breaks off after two events
        stream(**{"x-mock-fault": "drop"})
    assert _calls(upstream) == 1
    assert stream() == ("MISS", CHAT_TEXT)  # the broken stream was not stored
    assert _calls(upstream) == 2
    assert stream() == ("HIT", CHAT_TEXT)
    assert _calls(upstream) == 2


def test_upstream_errors_are_not_cached(server, api, gateway, upstream) -> None:
    set_gateway(api, gateway, cache_ttl=300)
    client = _client(server, gateway)
    with pytest.raises(openai.InternalServerError):
        _chat(client, **{"x-mock-fault": "status:500"})
    assert _chat(client).headers[STATUS] == "MISS"  # the fault header is not part of the key
    assert _calls(upstream) == 2


def test_a_hit_needs_authentication_but_no_key_quota(server, api, gateway, upstream) -> None:
    set_gateway(api, gateway, cache_ttl=300, authentication=True)
    add_config(api, gateway, rate_limit=1, rate_limit_period=3600)
    client = _client(server, gateway, create_token(api))
    assert _chat(client).headers[STATUS] == "MISS"  # uses the key's one request
    assert [_chat(client).headers[STATUS] for _ in range(3)] == ["HIT"] * 3  # hits use no key
    with pytest.raises(openai.RateLimitError):  # a miss still needs the key, now used up
        _chat(client, "a different question")
    with pytest.raises(openai.AuthenticationError):  # cached or not, the gateway wants a token
        _chat(_client(server, gateway, "sk-not-a-token"))
    assert _calls(upstream) == 1


def test_deprecated_cache_headers_still_work_and_stay_here(server, api, gateway, upstream) -> None:
    # Cloudflare: cf-cache-ttl / cf-skip-cache are deprecated but "will still function".
    client = _client(server, gateway)
    ttl = {"cf-cache-ttl": "60"}
    first, second = _chat(client, "old ttl", **ttl), _chat(client, "old ttl", **ttl)
    assert (first.headers[STATUS], second.headers[STATUS]) == ("MISS", "HIT")
    assert second.parse().id == first.parse().id
    assert _chat(client, "old ttl", **{"cf-cache-ttl": "0"}).headers.get(STATUS) is None  # 0 turns it off
    skipped = _chat(client, "old ttl", **{"cf-cache-ttl": "60", "cf-skip-cache": "true"})
    assert STATUS not in skipped.headers and skipped.parse().id != first.parse().id
    # the new header wins over the old one
    both = {"cf-aig-cache-ttl": "0", "cf-cache-ttl": "60"}
    assert _chat(client, "old ttl", **both).headers.get(STATUS) is None
    sent = upstream_requests(upstream, "/openai/chat/completions")
    assert len(sent) == 4
    for request in sent:
        names = {name.lower() for name in request["headers"]}
        assert not names & {"cf-cache-ttl", "cf-skip-cache"}, names
