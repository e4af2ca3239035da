"""Official openai / anthropic SDKs through the gateway: which credential reaches the provider
(docs/gateway.md#credentials-in-this-order)."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from sluice.testing.mock_upstream import CHAT_TEXT
from tests.proxy.helpers import add_config, create_token, gateway_url, new_key, set_gateway, upstream_requests

MESSAGES = [{"role": "user", "content": "hi"}]


def oai(server, gateway, api_key="unused", **kwargs) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    # The SDK insists on an api_key; tests relying on stored keys blank the header (NO_KEY): an empty
    # provider header counts as absent.
    return openai.OpenAI(base_url=gateway_url(server, gateway, "openai"), api_key=api_key, max_retries=0,
                         **kwargs)


def claude(server, gateway, api_key=None, **kwargs) -> anthropic.Anthropic:  # type: ignore[no-untyped-def]
    return anthropic.Anthropic(base_url=gateway_url(server, gateway, "anthropic"), api_key=api_key,
                               max_retries=0,
                               **kwargs)


NO_KEY = {"Authorization": ""}  # openai SDK: an empty auth header counts as absent → stored key
# anthropic 2.x sends api_key as Authorization: Bearer; relying on stored keys means omitting it.
NO_ANTHROPIC_KEY = {"Authorization": anthropic.Omit()}


def test_openai_default_stored_key_in_bearer_header(server, api, gateway, upstream) -> None:
    key = new_key()
    add_config(api, gateway, "openai", secret=key)
    with oai(server, gateway, default_headers=NO_KEY) as client:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = raw.parse()
    assert completion.choices[0].message.content == CHAT_TEXT
    assert raw.headers["cf-aig-byok-alias"] == "default"
    assert raw.headers["cf-aig-log-id"]
    (seen,) = upstream_requests(upstream, "/openai/")
    assert seen["path"] == "/openai/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {key}"


def test_anthropic_default_stored_key_in_x_api_key(server, api, gateway, upstream) -> None:
    key = new_key("sk-ant")
    add_config(api, gateway, "anthropic", secret=key)
    with claude(server, gateway, default_headers=NO_ANTHROPIC_KEY) as client:
        message = client.messages.create(model="claude-x", max_tokens=10, messages=MESSAGES)
    assert message.content[0].text == CHAT_TEXT
    (seen,) = upstream_requests(upstream, "/anthropic/")
    assert seen["path"] == "/anthropic/v1/messages"
    assert seen["headers"]["x-api-key"] == key
    assert "authorization" not in seen["headers"]
    assert seen["headers"]["anthropic-version"]  # the SDK's own value is kept


def test_byok_alias_header_selects_another_key(server, api, gateway, upstream) -> None:
    default_key, other_key = new_key(), new_key()
    add_config(api, gateway, "openai", alias="main", secret=default_key)
    add_config(api, gateway, "openai", alias="backup", default=False, secret=other_key)
    with oai(server, gateway, default_headers=NO_KEY) as client:
        client.chat.completions.create(model="m", messages=MESSAGES)
        raw = client.chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, extra_headers={"cf-aig-byok-alias": "backup"})
    assert raw.headers["cf-aig-byok-alias"] == "backup"
    first, second = upstream_requests(upstream, "/openai/")
    assert first["headers"]["authorization"] == f"Bearer {default_key}"
    assert second["headers"]["authorization"] == f"Bearer {other_key}"
    assert not any(name.startswith("cf-aig-") for name in second["headers"])


def test_gateway_token_as_api_key_authenticates_and_is_not_forwarded(server, api, gateway, upstream) -> None:
    key = new_key()
    add_config(api, gateway, "openai", secret=key)
    set_gateway(api, gateway, authentication=True)
    token = create_token(api)
    with oai(server, gateway, api_key=token) as client:
        completion = client.chat.completions.create(model="m", messages=MESSAGES)
        assert completion.choices[0].message.content == CHAT_TEXT
    with claude(server, gateway, api_key=token) as client:
        with pytest.raises(anthropic.AuthenticationError):  # no anthropic key stored: 401 2005
            client.messages.create(model="m", max_tokens=5, messages=MESSAGES)
    (seen,) = upstream_requests(upstream)
    assert seen["headers"]["authorization"] == f"Bearer {key}"
    assert token not in str(seen)


def test_anthropic_sluice_token_as_api_key_or_x_api_key(server, api, gateway, upstream) -> None:
    key = new_key("sk-ant")
    add_config(api, gateway, "anthropic", secret=key)
    token = create_token(api)
    with claude(server, gateway, api_key=token) as client:  # sent as Authorization: Bearer
        client.messages.create(model="m", max_tokens=5, messages=MESSAGES)
    with claude(server, gateway, default_headers={**NO_ANTHROPIC_KEY, "x-api-key": token}) as client:
        client.messages.create(model="m", max_tokens=5, messages=MESSAGES)
    for seen in upstream_requests(upstream):
        assert seen["headers"]["x-api-key"] == key
        assert "authorization" not in seen["headers"]
        assert token not in str(seen)
    assert len(upstream_requests(upstream)) == 2


def test_gateway_token_without_run_permission_is_refused(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    token = create_token(api, ["AI Gateway Read"])
    with oai(server, gateway, api_key=token) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="m", messages=MESSAGES)
    assert caught.value.response.json()["internalCode"] == 2009
    assert upstream_requests(upstream) == []


def test_unknown_sluice_token_is_refused(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    with oai(server, gateway, api_key="sluice_" + "x" * 43) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="m", messages=MESSAGES)
    assert caught.value.response.json()["internalCode"] == 2009
    assert upstream_requests(upstream) == []


def test_callers_own_key_passes_through_untouched(server, api, gateway, upstream) -> None:
    stored, own = new_key(), new_key("sk-own")
    add_config(api, gateway, "openai", secret=stored)
    with oai(server, gateway, api_key=own) as client:
        raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert "cf-aig-byok-alias" not in raw.headers
    with claude(server, gateway, api_key="sk-ant-own") as client:
        client.messages.create(model="m", max_tokens=5, messages=MESSAGES)
    first, second = upstream_requests(upstream)
    assert first["headers"]["authorization"] == f"Bearer {own}"
    assert second["headers"]["authorization"] == "Bearer sk-ant-own"  # anthropic 2.x's header, untouched
    assert "x-api-key" not in second["headers"]


def test_unknown_alias_is_400_naming_it_and_nothing_is_forwarded(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    with oai(server, gateway, default_headers={**NO_KEY, "cf-aig-byok-alias": "nosuchalias"}) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="m", messages=MESSAGES)
    body = caught.value.response.json()
    assert body["internalCode"] == 2006 and body["name"] == "AiGatewayError"
    assert "nosuchalias" in body["error"][0]["message"] and "openai" in body["error"][0]["message"]
    assert caught.value.response.headers["cf-aig-log-id"]
    assert upstream_requests(upstream) == []


def test_authenticated_gateway_rejects_anonymous_and_accepts_cf_aig_authorization(
        server, api, gateway, upstream) -> None:
    key = new_key()
    add_config(api, gateway, "openai", secret=key)
    set_gateway(api, gateway, authentication=True)
    with oai(server, gateway, default_headers=NO_KEY) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="m", messages=MESSAGES)
    assert caught.value.response.json()["internalCode"] == 2009
    bogus = {**NO_KEY, "cf-aig-authorization": "Bearer sluice_bogus"}
    with oai(server, gateway, default_headers=bogus) as client:
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="m", messages=MESSAGES)
    assert upstream_requests(upstream) == []
    token = create_token(api)
    with oai(server, gateway,
             default_headers={**NO_KEY, "cf-aig-authorization": f"Bearer {token}"}) as client:
        client.chat.completions.create(model="m", messages=MESSAGES)
    (seen,) = upstream_requests(upstream)
    assert seen["headers"]["authorization"] == f"Bearer {key}"
    assert "cf-aig-authorization" not in seen["headers"] and token not in str(seen)


def test_revoked_token_stops_working_on_the_next_request(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    response = api.post("/tokens", json={"name": "short-lived", "permissions": ["AI Gateway Run"]})
    token, token_id = response.json()["result"]["value"], response.json()["result"]["id"]
    url = gateway_url(server, gateway) + "/models"
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert api.delete(f"/tokens/{token_id}").status_code == 200
    refused = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and refused.json()["internalCode"] == 2009


def test_streamed_text_through_the_gateway_equals_direct(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    add_config(api, gateway, "anthropic")

    def openai_text(client: openai.OpenAI) -> str:
        stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    def anthropic_text(client: anthropic.Anthropic) -> str:
        with client.messages.stream(model="m", max_tokens=10, messages=MESSAGES) as stream:
            return "".join(stream.text_stream)

    with oai(server, gateway, default_headers=NO_KEY) as via, \
            openai.OpenAI(base_url=f"{upstream.url}/openai", api_key="sk-direct", max_retries=0) as direct:
        assert openai_text(via) == openai_text(direct) == CHAT_TEXT
    with claude(server, gateway, default_headers=NO_ANTHROPIC_KEY) as via, \
            anthropic.Anthropic(base_url=f"{upstream.url}/anthropic", api_key="sk-direct",
                                max_retries=0) as direct:
        assert anthropic_text(via) == anthropic_text(direct) == CHAT_TEXT


def test_token_use_is_recorded_in_the_background(server, api, gateway, upstream) -> None:
    import time

    add_config(api, gateway, "openai")
    response = api.post("/tokens", json={"name": "used", "permissions": ["AI Gateway Run"]})
    token, token_id = response.json()["result"]["value"], response.json()["result"]["id"]
    assert api.get(f"/tokens/{token_id}").json()["result"]["last_used_on"] is None
    listed = httpx.get(gateway_url(server, gateway) + "/models", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    deadline = time.monotonic() + 20  # written in batches every few seconds; this only bounds a broken writer
    while (api.get(f"/tokens/{token_id}").json()["result"]["last_used_on"] is None
           and time.monotonic() < deadline):
        time.sleep(0.25)
    assert api.get(f"/tokens/{token_id}").json()["result"]["last_used_on"] is not None


def test_exchange_reaches_the_request_log(server, api, gateway, upstream) -> None:
    """The data plane fills the Exchange (log id, alias, model, usage from a stream) for the observer."""
    import time

    add_config(api, gateway, "openai", alias="logged")
    with oai(server, gateway, default_headers=NO_KEY) as client:
        with client.chat.completions.with_streaming_response.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True,
                stream_options={"include_usage": True}) as response:
            log_id = response.headers["cf-aig-log-id"]
            response.read()
    deadline = time.monotonic() + 20  # logs are written in background batches
    while True:
        found = api.get(f"/ai-gateway/gateways/{gateway}/logs/{log_id}")
        if found.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found.status_code == 200, found.text
    entry = found.json()["result"]
    assert entry["id"] == log_id and entry["provider"] == "openai" and entry["model"] == "gpt-4o-mini"
    assert (entry["tokens_in"], entry["tokens_out"]) == (11, 7)
    assert entry["status_code"] == 200 and entry["success"] is True
