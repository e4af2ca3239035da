"""Canaries on the surfaces added since the first canary tests (issues 17, 18, 19): the Universal
endpoint, ``/compat`` with translated providers, key pools with failover, dynamic routes and the
console's API extensions.

Distinctive stored keys are planted for several providers (two for OpenAI on a gateway with
``key_failover``), then every surface is driven, mostly down unhappy paths built to make a key come
back: the mock provider echoes the auth header it was sent in error bodies (plain, compressed, in
Anthropic's and Gemini's shapes translated to OpenAI's), in a 429 that triggers a failover, in a
failing Universal step or dynamic-route model, and inside a streamed SSE event of a 200; invalid
Universal steps and ``/compat`` requests carry a caller's key in headers. Then everything is searched
(``tests/support/canary.py``): every response body and header the client saw, the Logs API, the
database's bytes, ``/metrics``, the console API and the server's output. A stored key may appear only
at its own provider's mock upstream; a caller's key sent with a refused request appears nowhere.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.observe.test_end_to_end import wait_for_log
from tests.proxy.helpers import add_config, gateway_url, set_gateway
from tests.proxy.test_custom_providers import make_provider
from tests.routing.graphs import end, model, single_model, start
from tests.support.canary import Scan, forms
from tests.support.server import MockUpstream, Server
from tests.support.stored import database_bytes

CHAT = {"messages": [{"role": "user", "content": "canary"}], "max_tokens": 9}
ECHO = {"x-mock-fault": "echo-key"}
IN_STREAM = {"x-mock-fault": "key-in-stream"}  # a 200 stream whose text quotes the key


def _key(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(16)}"


def _gateway(api: httpx.Client, **settings: Any) -> str:
    gateway_id = f"canary-{secrets.token_hex(4)}"
    response = api.post("/ai-gateway/gateways", json={"id": gateway_id, "authentication": False, **settings})
    assert response.status_code == 200, response.text
    return gateway_id


class Client:
    """An httpx client that hands every response it gets to the scan."""

    def __init__(self, scan: Scan) -> None:
        self.http = httpx.Client(timeout=30, event_hooks={"response": [self._seen]})
        self.scan = scan
        self.log_ids: list[tuple[str, str]] = []  # (gateway, log id) of the provider's answers

    def _seen(self, response: httpx.Response) -> None:
        self.scan.add_response(response)
        log_id = response.headers.get("cf-aig-log-id")
        path = response.request.url.path
        gateway = path.split("/")[3] if path.startswith("/v1/") else ""
        called = response.request.method == "POST" and response.status_code in (200, 401, 403, 429)
        if log_id and gateway and called:  # /compat/models (a GET) calls no provider: not logged
            self.log_ids.append((gateway, log_id))

    def post(self, url: str, body: Any, **headers: str) -> httpx.Response:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        return self.http.post(url, content=content, headers={"content-type": "application/json", **headers})


@pytest.fixture()
def seen() -> Iterator[Client]:
    client = Client(Scan())
    yield client
    client.http.close()


def _step(provider: str, endpoint: str, query: dict[str, Any], **headers: str) -> dict[str, Any]:
    return {"provider": provider, "endpoint": endpoint, "headers": headers, "query": query}


def _universal(client: Client, server: Server, gateway: str, caller_key: str) -> None:
    url = f"{server.url}/v1/{server.account_id}/{gateway}"
    openai_chat = {**CHAT, "model": "gpt-4o"}
    claude = {**CHAT, "model": "claude-x"}
    gemini = {**CHAT, "model": "google-ai-studio/gemini-x"}
    ok = _step("openai", "chat/completions", openai_chat)
    # step 1 echoes its key in a 401, or fails with a 500; step 2 answers
    answered = client.post(url, [_step("openai", "chat/completions", openai_chat, **ECHO),
                                 _step("anthropic", "v1/messages", claude)])
    assert answered.status_code == 200 and answered.headers["cf-aig-step"] == "1", answered.text
    failing = _step("openai", "chat/completions", openai_chat, **{"x-mock-fault": "status:500"})
    answered = client.post(url, [failing, ok])
    assert answered.status_code == 200 and answered.headers["cf-aig-step"] == "1", answered.text
    # every step echoes: the last step's (masked) error is the answer
    gzipped = {"x-mock-fault": "echo-key:gzip"}
    failed = client.post(url, [_step("openai", "chat/completions", openai_chat, **gzipped),
                               _step("mistral", "v1/chat/completions", {**CHAT, "model": "m"}, **ECHO),
                               _step("compat", "chat/completions", gemini, **ECHO)])
    assert failed.status_code == 401 and "[REDACTED]" in failed.text, failed.text
    # a stream whose event quotes the key
    client.post(url, [_step("openai", "chat/completions", {**openai_chat, "stream": True},
                            **IN_STREAM)])
    # invalid steps carrying a caller's key (in credential positions only: a provider or field name
    # is quoted by the error that names it): refused before anything is sent
    bearer = f"Bearer {caller_key}"
    invalid: list[Any] = [
        [_step("openai", "chat/completions", openai_chat, authorization=bearer, x=f"{caller_key}\n")],
        [_step("openai", "chat/completions", openai_chat, authorization=bearer, Host=caller_key)],
        [_step("nope", "x", {}, **{"x-api-key": caller_key})],
        [_step("openai", "../x", openai_chat, authorization=bearer)],
        [{**_step("openai", "chat/completions", openai_chat, authorization=bearer),
          "authorization": {"a": bearer}}],
        [{**_step("openai", "chat/completions", openai_chat, authorization=bearer),
          "config": {"requestTimeout": caller_key}}],
        [{**_step("openai", "chat/completions", openai_chat, authorization=bearer), "bogus": bearer}],
        b'[{"provider": "openai", "headers": {"authorization": "Bearer ' + caller_key.encode(),
    ]
    for body in invalid:
        refused = client.post(url, body)
        assert refused.status_code == 400, (body, refused.text)
    # a provider key on the request itself would reach every step's provider: refused
    refused = client.post(url, [ok], authorization=f"Bearer {caller_key}")
    assert 400 <= refused.status_code < 500, refused.text


def _compat(client: Client, server: Server, gateway: str, caller_key: str) -> None:
    base = gateway_url(server, gateway, "compat")
    chat, embeddings = f"{base}/chat/completions", f"{base}/embeddings"
    echoes = (("anthropic/claude-x", "echo-key"), ("anthropic/claude-x", "echo-key:chunked"),
              ("google-ai-studio/gemini-x", "echo-key"), ("google-ai-studio/gemini-x", "echo-key:gzip"),
              ("mistral/mistral-x", "echo-key:header"), ("openai/gpt-4o", "echo-key:deflate"),
              ("workers-ai/llama-x", "echo-key:zstd"))
    for name, fault in echoes:
        for stream in (False, True):
            echoed = client.post(chat, {**CHAT, "model": name, "stream": stream}, **{"x-mock-fault": fault})
            assert echoed.status_code == 401 and "[REDACTED]" in echoed.text, (name, fault, echoed.text)
    for name in ("google-ai-studio/text-embedding-004", "openai/text-embedding-3-small",
                 "mistral/mistral-embed"):
        echoed = client.post(embeddings, {"model": name, "input": "canary"}, **ECHO)
        assert echoed.status_code == 401 and "[REDACTED]" in echoed.text, (name, echoed.text)
    # 200 streams whose text quotes the key (pass-through and translated)
    for name in ("openai/gpt-4o", "anthropic/claude-x"):
        client.post(chat, {**CHAT, "model": name, "stream": True}, **IN_STREAM)
    # requests whose error could quote a header holding a caller's key; those that carry it as
    # the provider key are refused before anything is sent (an accepted one would go upstream, the
    # caller's own to send). An alias is a name, and the 2006 error quotes it: no key is sent as one.
    for headers in ({"cf-aig-authorization": f"Bearer {caller_key}"}, {"cf-aig-request-timeout": caller_key},
                    {"cf-aig-max-attempts": caller_key}, {"cf-aig-metadata": f'{{"key":"{caller_key}"'}):
        for name in ("anthropic/claude-x", "nope/x", "google-ai-studio/gemini/x"):
            client.post(chat, {**CHAT, "model": name}, **headers)
    for name in ("nope/x", "google-ai-studio/gemini/x", ""):
        refused = client.post(chat, {**CHAT, "model": name}, authorization=f"Bearer {caller_key}")
        assert refused.status_code == 400, refused.text
    client.post(chat, {**CHAT, "model": "anthropic/claude-x", "logprobs": True},
                authorization=f"Bearer {caller_key}")  # refused by the translation
    client.http.get(f"{base}/models", headers={"authorization": f"Bearer {caller_key}"})
    client.http.get(f"{base}/models/anthropic/unknown", headers={"authorization": f"Bearer {caller_key}"})


def _routes(client: Client, api: httpx.Client, server: Server, gateway: str) -> None:
    def deploy(name: str, elements: list[dict[str, Any]]) -> None:
        response = api.post(f"/ai-gateway/gateways/{gateway}/routes",
                            json={"name": name, "elements": elements})
        assert response.status_code == 200, response.text

    deploy("fallback", [start("m1"), model("m1", "openai", "mock-fault=echo-key", fallback="m2"),
                        model("m2", "anthropic", "claude-x"), end()])
    deploy("fragile", single_model("mistral", "mock-fault=echo-key:gzip"))
    deploy("streamy", single_model("openai", "mock-fault=key-in-stream"))
    chat = f"{gateway_url(server, gateway, 'compat')}/chat/completions"
    answered = client.post(chat, {**CHAT, "model": "dynamic/fallback"})
    assert answered.status_code == 200, answered.text
    failed = client.post(chat, {**CHAT, "model": "dynamic/fragile"})
    assert failed.status_code == 401 and "[REDACTED]" in failed.text, failed.text
    client.post(chat, {**CHAT, "model": "dynamic/streamy", "stream": True})


def _pool(client: Client, server: Server, gateway: str, markers: tuple[str, str]) -> None:
    """First key refused with a 429 quoting it: the second answers; then both refused."""
    chat = f"{gateway_url(server, gateway)}/chat/completions"
    first, second = markers
    answered = client.post(chat, {**CHAT, "model": "gpt-4o"},
                           **{"x-mock-fault": f"key-status:{first}=429/30"})
    assert answered.status_code == 200 and answered.headers["cf-aig-byok-alias"] == "k1", answered.text
    both = client.post(chat, {**CHAT, "model": "gpt-4o"},
                       **{"x-mock-fault": f"key-status:{first}=429/30;{second}=403"})
    assert both.status_code in (403, 429) and "[REDACTED]" in both.text, both.text
    with openai.OpenAI(base_url=gateway_url(server, gateway), api_key="unused", max_retries=0,
                       http_client=client.http) as oai:  # the SDK sees whatever is left
        try:
            oai.chat.completions.create(model="gpt-4o", messages=CHAT["messages"])  # type: ignore[arg-type]
        except openai.APIStatusError as exc:
            client.scan.add("openai SDK exception", f"{exc} {exc.body}")


def _custom(client: Client, server: Server, gateway: str, providers: list[str]) -> None:
    """Custom providers (one with a stored key, one whose definition's header is its credential):
    the provider path, /compat and a Universal step, each made to quote what it was sent."""
    for provider in providers:
        url = f"{gateway_url(server, gateway, provider)}/chat/completions"
        echoed = client.post(url, {**CHAT, "model": "m"}, **ECHO)
        assert echoed.status_code == 401 and "[REDACTED]" in echoed.text, echoed.text
        client.post(url, {**CHAT, "model": "m", "stream": True}, **IN_STREAM)
        compat = f"{gateway_url(server, gateway, 'compat')}/chat/completions"
        echoed = client.post(compat, {**CHAT, "model": f"{provider}/m"}, **{"x-mock-fault": "echo-key:gzip"})
        assert echoed.status_code == 401 and "[REDACTED]" in echoed.text, echoed.text
        client.post(compat, {**CHAT, "model": f"{provider}/m", "stream": True}, **IN_STREAM)
        steps = [_step(provider, "chat/completions", {**CHAT, "model": "m"}, **ECHO),
                 _step(provider, "chat/completions", {**CHAT, "model": "m", "stream": True},
                       **IN_STREAM)]
        answered = client.post(f"{server.url}/v1/{server.account_id}/{gateway}", steps)
        assert answered.status_code == 200 and answered.headers["cf-aig-step"] == "1", answered.text


def _stored(api: httpx.Client, cf: Any, server: Server, client: Client, gateways: list[str],
            scan: Scan) -> None:
    """What the management and console APIs show, once every answered request is logged."""
    for gateway, log_id in client.log_ids:
        wait_for_log(cf, server, gateway, log_id)
    time.sleep(0.5)  # refused attempts and failed steps are flushed with the same batch or just after
    for gateway in gateways:
        logs = f"/ai-gateway/gateways/{gateway}/logs"
        listed = [api.get(logs, params={"per_page": 50, "page": page}) for page in (1, 2, 3)]
        for response in listed:
            scan.add_response(response, "logs API")
        for item in (item for response in listed for item in response.json()["result"]):
            for suffix in ("", "/request", "/response"):
                scan.add_response(api.get(f"{logs}/{item['id']}{suffix}"), "logs API")
        scan.add_response(api.get(f"/ai-gateway/gateways/{gateway}/provider_configs"), "configs")
        for params in ({}, {"provider": "openai"}, {"provider": "openai", "alias": "default"}):
            scan.add_response(api.get(f"/ai-gateway/gateways/{gateway}/timeseries", params=params), "console")
    identity = httpx.get(f"{server.api}/sluice/identity", headers=server.headers(), timeout=10)
    scan.add_response(identity, "console")
    scan.add_response(httpx.get(f"{server.url}/metrics", timeout=10), "metrics")
    scan.add("database", database_bytes(server))
    scan.add("server output", server.output())


def test_no_key_leaks_through_the_new_surfaces(cf, server: Server, api: httpx.Client,  # type: ignore[no-untyped-def]
                                              mock_upstream: MockUpstream, seen: Client) -> None:
    main, pooled = _gateway(api), _gateway(api, key_failover=True)
    stored = {("openai", main): _key("sk-proj-canaryoa"), ("anthropic", main): _key("sk-ant-api03-canary"),
              ("google-ai-studio", main): _key("AIzaCanary"), ("mistral", main): _key("canarymistral"),
              ("workers-ai", main): _key("canarycf")}
    for (provider, gateway), key in stored.items():
        add_config(api, gateway, provider, secret=key)
    markers = (f"pa{secrets.token_hex(4)}", f"pb{secrets.token_hex(4)}")
    pool_keys = {"default": _key(f"sk-{markers[0]}-"), "k1": _key(f"sk-{markers[1]}-")}
    for alias, key in pool_keys.items():
        add_config(api, pooled, "openai", alias=alias, default=alias == "default", secret=key)
        stored[("openai", f"{pooled}/{alias}")] = key
    custom_key, custom_header = _key("canary-custom-key-"), _key("canary-custom-header-")
    with_key, key_prefix = make_provider(cf, server, mock_upstream)
    with_header, header_prefix = make_provider(cf, server, mock_upstream,
                                               headers=orjson.dumps({"api-key": custom_header}).decode())
    add_config(api, main, with_key, secret=custom_key)
    stored[(with_key, main)] = custom_key
    upstreams = {with_key: key_prefix, with_header: header_prefix}  # where a custom provider's requests go
    caller_key = _key("sk-caller-canary")  # sent only in requests that are refused
    marker = f"marker-{secrets.token_hex(6)}"
    set_gateway(api, main, authentication=False)
    mock_upstream.clear()

    seen.http.headers["cf-aig-metadata"] = f'{{"marker":"{marker}"}}'
    _universal(seen, server, main, caller_key)
    _compat(seen, server, main, caller_key)
    _routes(seen, api, server, main)
    _custom(seen, server, main, [with_key, with_header])
    _pool(seen, server, pooled, markers)  # last: the openai SDK closes the client it was given
    scan = seen.scan
    answers = scan.count()
    _stored(api, cf, server, seen, [main, pooled], scan)

    # the places searched hold this traffic (so a leak would have been found)
    assert answers >= 50, answers
    assert scan.contains(marker) and scan.contains("mock key refused") and scan.contains("[REDACTED]")
    assert marker.encode() in database_bytes(server)
    assert "sluice ready" in server.output()
    secrets_by_name = {f"{provider} key of {where}": key for (provider, where), key in stored.items()}
    secrets_by_name[f"{with_header} header"] = custom_header
    found = scan.hits({**secrets_by_name, "caller key": caller_key})
    assert found == [], "\n".join(found + scan.excerpts(caller_key))

    # each stored key reached its own provider's upstream, and nothing else did
    forwarded = [r for r in mock_upstream.requests() if not r["path"].startswith("/__mock__")]
    holders = [(f"{provider} key of {where}", upstreams.get(provider, f"/{provider}/"), key)
               for (provider, where), key in stored.items()]
    for name, prefix, value in [*holders, (f"{with_header} header", header_prefix, custom_header)]:
        reached = {r["path"] for r in forwarded if value in str(r)}
        assert reached and all(path.startswith(prefix) for path in reached), f"{name} reached {reached}"
    refused_sent = [f"{r['path']} {r['headers']}" for r in forwarded if caller_key in str(r)]
    assert refused_sent == [], refused_sent


def test_the_scan_finds_a_planted_value_in_every_form() -> None:
    """The search can fail: a value put in a scanned place, encoded several ways, is reported."""
    value = _key("sk-canary-")
    for form in forms(value):
        scan = Scan()
        scan.add("clean", b"nothing here")
        scan.add("leaky", b"prefix " + form + b" suffix")
        assert scan.hits({"planted": value}) == ["planted in leaky"], form
    response = httpx.Response(401, headers={"www-authenticate": f"Bearer {value}"},
                              request=httpx.Request("POST", "http://x/v1/a/g/openai/chat/completions"))
    scan = Scan()
    scan.add_response(response)
    assert scan.hits({"planted": value}) == ["planted in POST /v1/a/g/openai/chat/completions -> 401"]
