"""``custom-{slug}`` on the data plane (docs/gateway.md, "Custom providers"): a custom provider made
with the official ``cloudflare`` SDK, pointed at the mock upstream through its own ``base_url``, is
called with the official ``openai`` SDK on the provider path and through /compat; the stored key goes
in the header the definition names, the definition's extra headers go along, and neither reaches any
other upstream nor comes back to the client. Changes apply to the next request (in-memory state)."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import openai
import orjson
import pytest

from sluice.testing.mock_upstream import CHAT_TEXT, OPENAI_COMPLETION_TOKENS, OPENAI_PROMPT_TOKENS
from tests.observe.test_end_to_end import wait_for_log
from tests.proxy.helpers import add_config, create_token, gateway_url, new_key, set_gateway, upstream_requests
from tests.support.server import MockUpstream, Server

MESSAGES = [{"role": "user", "content": "Hi"}]
CP = "/ai-gateway/custom-providers"


def make_provider(cf: Any, server: Server, upstream: MockUpstream, **fields: Any) -> tuple[str, str]:
    """A custom provider at the mock under a prefix of its own; returns (custom-{slug}, that prefix)."""
    slug = f"mine-{secrets.token_hex(4)}"
    prefix = f"/own-{slug}/v1"
    created = cf.ai_gateway.custom_providers.create(account_id=server.account_id, name="Mine", slug=slug,
                                                    base_url=upstream.url + prefix, **fields)
    return f"custom-{created.slug}", prefix


def client(server: Server, gateway: str, provider: str, api_key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway_url(server, gateway, provider), api_key=api_key, max_retries=0)


def test_provider_path_with_the_stored_key(cf: Any, server: Server, api: httpx.Client, gateway: str,
                                           upstream: MockUpstream) -> None:
    provider, prefix = make_provider(cf, server, upstream)
    stored = new_key("sk-custom")
    add_config(api, gateway, provider, secret=stored)
    set_gateway(api, gateway, authentication=True)
    token = create_token(api)
    answer = client(server, gateway, provider, token).chat.completions.create(model="m-1", messages=MESSAGES)
    assert answer.choices[0].message.content == CHAT_TEXT
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (
        OPENAI_PROMPT_TOKENS, OPENAI_COMPLETION_TOKENS)
    (seen,) = upstream_requests(upstream)
    assert seen["path"] == f"{prefix}/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {stored}"
    assert token not in str(seen)
    assert orjson.loads(seen["body"])["model"] == "m-1"


def test_the_request_log_names_the_custom_provider(cf: Any, server: Server, api: httpx.Client, gateway: str,
                                                   upstream: MockUpstream) -> None:
    provider, _ = make_provider(cf, server, upstream)
    add_config(api, gateway, provider)
    raw = client(server, gateway, provider, create_token(api)).chat.completions.with_raw_response.create(
        model="m-9", messages=MESSAGES)
    assert raw.headers["cf-aig-byok-alias"] == "default"
    log = wait_for_log(cf, server, gateway, raw.headers["cf-aig-log-id"])
    assert (log.provider, log.model, log.path) == (provider, "m-9", "chat/completions")
    assert (log.tokens_in, log.tokens_out) == (OPENAI_PROMPT_TOKENS, OPENAI_COMPLETION_TOKENS)
    found = cf.ai_gateway.logs.list(gateway, account_id=server.account_id,
                                    filters=[{"key": "provider", "operator": "eq", "value": [provider]}])
    assert [item.id for item in found] == [log.id]


def test_compat_passes_chat_through_to_the_base_url(cf: Any, server: Server, api: httpx.Client, gateway: str,
                                                    upstream: MockUpstream) -> None:
    provider, prefix = make_provider(cf, server, upstream)
    stored = new_key("sk-custom")
    add_config(api, gateway, provider, secret=stored)
    compat = openai.OpenAI(base_url=f"{server.url}/v1/{server.account_id}/{gateway}/compat",
                           api_key=create_token(api), max_retries=0)
    answer = compat.chat.completions.create(model=f"{provider}/org/model-x", messages=MESSAGES)
    assert answer.choices[0].message.content == CHAT_TEXT
    chunks = list(compat.chat.completions.create(model=f"{provider}/model-y", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == CHAT_TEXT
    plain, streamed = upstream_requests(upstream)
    for seen, model in ((plain, "org/model-x"), (streamed, "model-y")):
        assert seen["path"] == f"{prefix}/chat/completions"
        assert seen["headers"]["authorization"] == f"Bearer {stored}"
        assert orjson.loads(seen["body"])["model"] == model


def test_the_definition_says_where_the_key_goes(cf: Any, server: Server, api: httpx.Client, gateway: str,
                                                upstream: MockUpstream) -> None:
    provider, _ = make_provider(cf, server, upstream,
                                extra_body={"auth_header": "X-Api-Key", "auth_scheme": ""})
    stored, own = new_key("raw"), new_key("own")
    add_config(api, gateway, provider, secret=stored)
    token = create_token(api)  # in Authorization: Bearer, as OpenAI's SDK sends it
    client(server, gateway, provider, token).chat.completions.create(model="m", messages=MESSAGES)
    compat = openai.OpenAI(base_url=f"{server.url}/v1/{server.account_id}/{gateway}/compat",
                           api_key=token, max_retries=0)
    compat.chat.completions.create(model=f"{provider}/m", messages=MESSAGES)
    client(server, gateway, provider, own).chat.completions.create(model="m", messages=MESSAGES)
    path, compat_path, caller = upstream_requests(upstream)
    for seen in (path, compat_path):
        assert seen["headers"]["x-api-key"] == stored
        assert "authorization" not in seen["headers"] and token not in str(seen)
    assert caller["headers"]["authorization"] == f"Bearer {own}", "the caller's own key goes unchanged"
    assert stored not in str(caller)


def test_extra_headers_go_on_every_request(cf: Any, server: Server, api: httpx.Client, gateway: str,
                                           upstream: MockUpstream) -> None:
    team = f"team-{secrets.token_hex(12)}"
    provider, _ = make_provider(cf, server, upstream,
                                headers=orjson.dumps({"X-Team": team, "X-Route": "a"}).decode())
    url = f"{gateway_url(server, gateway, provider)}/chat/completions"
    body = {"model": "m", "messages": MESSAGES}
    # no stored key: the headers alone go (they may be the credential); a caller's header wins
    assert httpx.post(url, json=body, headers={"x-route": "mine"}).status_code == 200
    add_config(api, gateway, provider)
    assert httpx.post(url, json=body).status_code == 200
    without_key, with_key = upstream_requests(upstream)
    assert (without_key["headers"]["x-team"], without_key["headers"]["x-route"]) == (team, "mine")
    assert "authorization" not in without_key["headers"]
    assert (with_key["headers"]["x-team"], with_key["headers"]["x-route"]) == (team, "a")
    assert with_key["headers"]["authorization"].startswith("Bearer sk-test-")


def test_changes_apply_to_the_next_request(cf: Any, server: Server, api: httpx.Client, gateway: str,
                                           upstream: MockUpstream) -> None:
    provider, _ = make_provider(cf, server, upstream)
    add_config(api, gateway, provider)
    (row,) = [p for p in cf.ai_gateway.custom_providers.list(account_id=server.account_id,
                                                              search=provider.removeprefix("custom-"))]
    oai = client(server, gateway, provider)
    assert httpx.patch(f"{server.api}/accounts/{server.account_id}{CP}/{row.id}", headers=server.headers(),
                       json={"base_url": f"{upstream.url}/moved"}).status_code == 200
    oai.chat.completions.create(model="m", messages=MESSAGES)
    assert upstream_requests(upstream)[-1]["path"] == "/moved/chat/completions"
    assert httpx.patch(f"{server.api}/accounts/{server.account_id}{CP}/{row.id}", headers=server.headers(),
                       json={"enable": False}).status_code == 200
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="m", messages=MESSAGES)
    assert caught.value.status_code == 400 and "unknown provider" in caught.value.response.text
    assert len(upstream_requests(upstream)) == 1


def test_unknown_custom_provider_is_refused(server: Server, api: httpx.Client, gateway: str,
                                            upstream: MockUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(server, gateway, "custom-nobody-here").chat.completions.create(model="m", messages=MESSAGES)
    assert caught.value.status_code == 400
    compat = openai.OpenAI(base_url=f"{server.url}/v1/{server.account_id}/{gateway}/compat",
                           api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        compat.chat.completions.create(model="custom-nobody-here/m", messages=MESSAGES)
    assert caught.value.param == "model"
    assert upstream_requests(upstream) == []


def test_keys_reach_only_their_own_upstream_and_never_come_back(cf: Any, server: Server, api: httpx.Client,
                                                                gateway: str, upstream: MockUpstream) -> None:
    """Canary: each stored key and header value arrives only at its provider, and an upstream that
    echoes its credential (a 401 quoting it) has it masked before the client sees it."""
    header_secret, third_secret = (f"hdr-canary-{secrets.token_hex(16)}" for _ in range(2))
    first, first_prefix = make_provider(cf, server, upstream)
    second, second_prefix = make_provider(cf, server, upstream, extra_body={"auth_header": "x-api-key",
                                                                              "auth_scheme": ""},
                                          headers=orjson.dumps({"x-tenant": header_secret}).decode())
    third, third_prefix = make_provider(cf, server, upstream,
                                        headers=orjson.dumps({"api-key": third_secret}).decode())
    keys = {first: new_key("sk-canary-one"), second: new_key("sk-canary-two"), "openai": new_key("sk-oai")}
    for provider, key in keys.items():
        add_config(api, gateway, provider, secret=key)
    seen_by_client: list[str] = []
    for provider in (first, second, third, "openai"):
        oai = client(server, gateway, provider)
        oai.chat.completions.create(model="m", messages=MESSAGES)
        response = httpx.post(f"{gateway_url(server, gateway, provider)}/chat/completions",
                              json={"model": "m", "messages": MESSAGES}, headers={"x-mock-fault": "echo-key"})
        assert response.status_code == 401
        seen_by_client.append(response.text + str(response.headers))
    requests = upstream_requests(upstream)
    prefixes = {first: first_prefix, second: second_prefix, third: third_prefix, "openai": "/openai"}
    secrets_by_provider = {**keys, third: third_secret}
    for provider, value in [*secrets_by_provider.items(), (second, header_secret)]:
        holders = {r["path"] for r in requests if value in str(r["headers"])}
        assert holders and all(p.startswith(prefixes[provider]) for p in holders), (provider, holders)
    everything = "\n".join(seen_by_client)
    for value in [*secrets_by_provider.values(), header_secret]:
        assert value not in everything
    assert "[REDACTED]" in everything


def test_compat_embeddings_pass_through(cf: Any, server: Server, api: httpx.Client, gateway: str,
                                        upstream: MockUpstream) -> None:
    provider, prefix = make_provider(cf, server, upstream)
    stored = new_key("sk-embed")
    add_config(api, gateway, provider, secret=stored)
    compat = openai.OpenAI(base_url=f"{server.url}/v1/{server.account_id}/{gateway}/compat",
                           api_key=create_token(api), max_retries=0)
    answer = compat.embeddings.create(model=f"{provider}/embed-x", input=["one", "two"])
    assert len(answer.data) == 2
    (seen,) = upstream_requests(upstream)
    assert seen["path"] == f"{prefix}/embeddings" and seen["headers"]["authorization"] == f"Bearer {stored}"
    assert orjson.loads(seen["body"])["model"] == "embed-x"


def test_universal_steps_reach_custom_providers(cf: Any, server: Server, api: httpx.Client, gateway: str,
                                                upstream: MockUpstream) -> None:
    first, first_prefix = make_provider(cf, server, upstream)
    second, second_prefix = make_provider(cf, server, upstream, extra_body={"auth_header": "x-api-key",
                                                                              "auth_scheme": ""})
    keys = {first: new_key("sk-first"), second: new_key("sk-second")}
    for provider, key in keys.items():
        add_config(api, gateway, provider, secret=key)
    chat = {"model": "m", "messages": MESSAGES}
    steps = [{"provider": first, "endpoint": "chat/completions", "headers": {"x-mock-fault": "status:500"},
              "query": chat},
             {"provider": second, "endpoint": "chat/completions", "headers": {}, "query": chat}]
    response = httpx.post(f"{server.url}/v1/{server.account_id}/{gateway}", content=orjson.dumps(steps),
                          timeout=30)
    assert response.status_code == 200 and response.headers["cf-aig-step"] == "1"
    assert response.json()["choices"][0]["message"]["content"] == CHAT_TEXT
    failed, answered = upstream_requests(upstream)
    assert failed["path"] == f"{first_prefix}/chat/completions"
    assert failed["headers"]["authorization"] == f"Bearer {keys[first]}"
    assert answered["path"] == f"{second_prefix}/chat/completions"
    assert answered["headers"]["x-api-key"] == keys[second] and keys[first] not in str(answered)


def test_universal_refuses_an_unknown_custom_provider_and_a_key_in_its_header(
        cf: Any, server: Server, api: httpx.Client, gateway: str, upstream: MockUpstream) -> None:
    provider, _ = make_provider(cf, server, upstream, extra_body={"auth_header": "x-own-key"})
    chat = {"model": "m", "messages": MESSAGES}
    url = f"{server.url}/v1/{server.account_id}/{gateway}"
    unknown = [{"provider": "custom-nobody-here", "endpoint": "chat/completions", "headers": {},
                "query": chat}]
    response = httpx.post(url, content=orjson.dumps(unknown), timeout=30)
    assert response.status_code == 400
    assert response.json()["error"][0]["message"].startswith("steps[0].provider: ")
    # the custom provider's auth header on the request itself would reach every step's provider
    steps = [{"provider": provider, "endpoint": "chat/completions", "headers": {}, "query": chat}]
    response = httpx.post(url, content=orjson.dumps(steps), headers={"x-own-key": "sk-not-for-everyone"},
                          timeout=30)
    assert response.status_code == 400 and "x-own-key" in response.text
    assert upstream_requests(upstream) == []
