"""Canaries: a unique stored key, Sluice token and cf-aig-authorization value are planted and then
searched for everywhere a client or an operator can see: responses (bodies and headers) and the
server's output. The upstream must receive the stored key, and never the gateway's credentials."""

from __future__ import annotations

import secrets

import anthropic
import httpx
import openai

from tests.proxy.helpers import add_config, create_token, gateway_url, set_gateway, upstream_requests
from tests.support.key_echo import BODY, REFUSED, RELAYED, echo_traffic, install, planted_keys, shown

MESSAGES = [{"role": "user", "content": "hi"}]


def _text(response: httpx.Response) -> str:
    return response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())


def test_credentials_never_leak(server, api, gateway, upstream) -> None:
    stored = f"sk-canary-{secrets.token_hex(16)}"
    anthropic_stored = f"sk-ant-canary-{secrets.token_hex(16)}"
    add_config(api, gateway, "openai", secret=stored)
    add_config(api, gateway, "anthropic", secret=anthropic_stored, rate_limit=3, rate_limit_period=3600)
    set_gateway(api, gateway, authentication=True)
    token = create_token(api)  # used as the provider key (Authorization: Bearer / x-api-key)
    gateway_token = create_token(api)  # used in cf-aig-authorization
    canaries = (stored, anthropic_stored, token, gateway_token)
    seen: list[str] = []
    url = gateway_url(server, gateway)

    def hook(response: httpx.Response) -> None:
        response.read()
        seen.append(_text(response))

    client = httpx.Client(event_hooks={"response": [hook]}, timeout=30)
    # successes, JSON and streamed, with the token as the provider key and in cf-aig-authorization
    oai = openai.OpenAI(base_url=url, api_key=token, http_client=client, max_retries=0)  # closed with client
    oai.chat.completions.create(model="m", messages=MESSAGES)
    for _ in oai.chat.completions.create(model="m", messages=MESSAGES, stream=True):
        pass
    auth = {"cf-aig-authorization": f"Bearer {gateway_token}"}
    with anthropic.Anthropic(base_url=gateway_url(server, gateway, "anthropic"), api_key=None,
                             default_headers={"Authorization": anthropic.Omit(), **auth},
                             max_retries=0) as claude:
        # anthropic uses its own HTTP library: capture the raw responses instead of a hook
        raw = claude.messages.with_raw_response.create(model="m", max_tokens=5, messages=MESSAGES)
        seen.append(raw.http_response.text + str(dict(raw.headers)))
        with claude.messages.with_streaming_response.create(model="m", max_tokens=5, messages=MESSAGES,
                                                            stream=True) as streamed:
            seen.append(streamed.http_response.read().decode() + str(dict(streamed.headers)))
    # the token as Authorization: Bearer, the key as x-api-key
    with anthropic.Anthropic(base_url=gateway_url(server, gateway, "anthropic"), api_key=token,
                             max_retries=0) as claude:
        raw = claude.messages.with_raw_response.create(model="m", max_tokens=5, messages=MESSAGES)
        seen.append(raw.http_response.text + str(dict(raw.headers)))
    # errors: upstream 4xx/5xx, bad alias, key rate limit, timeout, unknown provider, bad token
    client.post(f"{url}/chat/completions", json={}, headers={"Authorization": f"Bearer {token}",
                                                              "x-mock-fault": "status:401"})
    client.post(f"{url}/chat/completions", json={}, headers={**auth, "x-mock-fault": "status:500"})
    client.post(f"{url}/chat/completions", json={}, headers={**auth, "cf-aig-byok-alias": "missing"})
    client.post(gateway_url(server, gateway, "anthropic") + "/v1/messages", json={}, headers=auth)  # 429 2004
    client.post(f"{url}/chat/completions", json={}, headers={**auth, "x-mock-fault": "hang",
                                                              "cf-aig-request-timeout": "200"})
    client.get(gateway_url(server, gateway, "nope") + "/x", headers=auth)
    client.get(f"{url}/models", headers={"cf-aig-authorization": f"Bearer {gateway_token}x"})
    client.get(f"{url}/models", headers={"Authorization": f"Bearer {token}x"})
    client.close()

    assert len(seen) >= 12
    statuses = " ".join(s.split("\n", 1)[0] for s in seen)
    for text in seen:
        for canary in canaries:
            assert canary not in text, f"a credential appeared in a response: {text[:200]}"
    output = server.output()
    for canary in canaries:
        assert canary not in output, "a credential appeared in the server output"
    forwarded = upstream_requests(upstream)
    assert any(r["headers"].get("authorization") == f"Bearer {stored}" for r in forwarded), statuses
    assert any(r["headers"].get("x-api-key") == anthropic_stored for r in forwarded)
    for request in forwarded:
        assert token not in str(request) and gateway_token not in str(request)


def test_stored_keys_of_any_shape_echoed_by_the_provider_never_reach_the_client(server, api, gateway,
                                                                                upstream) -> None:
    """Issue 15 item 6: a provider echoing the key it was sent (``Incorrect API key provided: …``)
    in an error body, plain, compressed, chunked or in a header: the stored value is masked."""
    keys = planted_keys()
    install(api, gateway, keys)
    responses = echo_traffic(server, gateway, keys)
    assert len(responses) == len(keys) * (len(RELAYED) + len(REFUSED))
    for response in responses:
        text = shown(response)
        for key in keys.values():
            assert key not in text, f"a stored key reached the client: {text[:300]}"
        if response.status_code == 401:
            assert "Incorrect API key provided: " in text and "[REDACTED]" in text  # echoed, then masked
        else:  # too large, or a coding Sluice cannot read: not relayed
            assert response.status_code == 502 and "checked for stored keys" in text, text[:300]
    statuses = sorted({r.status_code for r in responses})
    assert statuses == [401, 502]
    # the provider did receive every key: the echo was real
    forwarded = str(upstream_requests(upstream))
    assert all(key in forwarded for key in keys.values())
    # the official SDK sees the masked error too (the token as its key: the stored key goes upstream)
    set_gateway(api, gateway, authentication=True)
    token = create_token(api)
    echo = {"x-mock-fault": "echo-key:gzip", "cf-aig-byok-alias": "team-b"}
    with openai.OpenAI(base_url=gateway_url(server, gateway), api_key=token, max_retries=0,
                       default_headers=echo) as oai:
        try:
            oai.chat.completions.create(model="m", messages=MESSAGES)
        except openai.AuthenticationError as exc:
            assert "[REDACTED]" in str(exc) and keys[("openai", "team-b")] not in str(exc) + str(exc.body)
        else:
            raise AssertionError("the echo fault should answer 401")
    output = server.output()
    assert all(key not in output for key in keys.values())


def test_a_key_quoted_in_a_compressed_answer_never_reaches_the_client(server, api, gateway, upstream) -> None:
    """A 2xx answer quoting the stored key: Sluice asks for it uncompressed (the caller's
    accept-encoding is replaced by identity) so it is masked as it is relayed; a provider that
    compresses it anyway has it decoded and masked whole, or refused (502) when it cannot be read."""
    keys = planted_keys()
    install(api, gateway, keys)
    stored = keys[("openai", "default")]
    url = f"{gateway_url(server, gateway)}/chat/completions"
    with httpx.Client(timeout=30) as client:
        def ask(fault: str) -> httpx.Response:
            return client.post(url, json=BODY, headers={"x-mock-fault": f"key-in-answer:{fault}",
                                                        "accept-encoding": "gzip, deflate, zstd, br"})

        honest = ask("gzip")  # compresses only when asked to: it is not asked
        assert honest.status_code == 200 and "content-encoding" not in honest.headers
        assert stored not in shown(honest) and "You sent Bearer [REDACTED]" in honest.text
        assert upstream_requests(upstream)[-1]["headers"]["accept-encoding"] == "identity"
        for coding in ("gzip", "deflate", "zstd"):  # compressed regardless: decoded, masked whole
            forced = ask(f"{coding}!")
            assert forced.status_code == 200, forced.text
            assert stored not in shown(forced) and "[REDACTED]" in forced.text
            assert forced.json()["choices"][0]["message"]["content"] == "You sent Bearer [REDACTED]."
        unreadable = ask("br!")  # a coding Sluice cannot decode: not relayed
        assert unreadable.status_code == 502 and "checked for stored keys" in unreadable.text
        assert stored not in shown(unreadable)
    # the official SDK (httpx asks for gzip), with a token as its key: the stored key goes upstream
    set_gateway(api, gateway, authentication=True)
    with openai.OpenAI(base_url=gateway_url(server, gateway), api_key=create_token(api), max_retries=0,
                       default_headers={"x-mock-fault": "key-in-answer:gzip!"}) as oai:
        answer = oai.chat.completions.create(model="m", messages=MESSAGES)
    assert answer.choices[0].message.content == "You sent Bearer [REDACTED]."
    assert stored not in server.output()
