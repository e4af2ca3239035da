"""``/compat/models`` and ``/compat/embeddings`` with the official ``openai`` SDK.

The model list comes from the catalog (nothing goes upstream): the providers this gateway holds a
stored key for, or every ``/compat`` provider when the caller brings its own key; gateway
authentication applies. Embeddings pass through to OpenAI-format providers and are translated to
Gemini's ``batchEmbedContents``; either way the SDK gets OpenAI's answer, as floats or base64.
"""

from __future__ import annotations

import base64
import struct

import httpx
import openai
import orjson
import pytest

from sluice.providers.registry import load_catalog
from sluice.testing.mock_upstream import EMBEDDING_TOKENS_PER_INPUT, mock_embedding
from tests.proxy.helpers import add_config, create_token, new_key, set_gateway, upstream_requests
from tests.proxy.test_compat import compat_client
from tests.support.server import MockUpstream, Server

CATALOG = load_catalog({})
COMPAT_PROVIDERS = sorted(slug for slug, provider in CATALOG.items() if provider.compat is not None)


def _listed(provider: str) -> list[str]:
    compat = CATALOG[provider].compat
    assert compat is not None
    return [f"{provider}/{name}" for name in (*compat.models, *compat.embedding_models)]


def test_models_lists_the_providers_with_a_stored_key(server: Server, api: httpx.Client, gateway: str,
                                                      upstream: MockUpstream) -> None:
    add_config(api, gateway, "anthropic")
    add_config(api, gateway, "mistral", alias="second", default=False)
    add_config(api, gateway, "cohere")  # a stored key, but cohere is not served by /compat
    client = compat_client(server, gateway, create_token(api))
    models = list(client.models.list())
    assert sorted(m.id for m in models) == sorted([*_listed("anthropic"), *_listed("mistral")])
    claude = next(m for m in models if m.id == "anthropic/claude-sonnet-4-5")
    assert (claude.object, claude.owned_by) == ("model", "anthropic")
    assert claude.created == CATALOG["anthropic"].compat.models_reviewed > 1_700_000_000  # type: ignore[union-attr]
    assert client.models.retrieve("mistral/mistral-embed").owned_by == "mistral"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("openai/gpt-4o")  # no key for openai on this gateway
    assert caught.value.code == "model_not_found"
    assert upstream_requests(upstream) == []


def test_a_callers_own_key_lists_every_compat_provider(server: Server, gateway: str,
                                                       upstream: MockUpstream) -> None:
    models = list(compat_client(server, gateway, new_key("sk-own")).models.list())
    assert sorted({m.owned_by for m in models}) == COMPAT_PROVIDERS
    assert "google-ai-studio/gemini-2.5-flash" in {m.id for m in models}
    assert upstream_requests(upstream) == []


def test_models_without_any_key_is_an_empty_list(server: Server, gateway: str) -> None:
    response = httpx.get(f"{server.url}/v1/{server.account_id}/{gateway}/compat/models", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"object": "list", "data": []}


def test_models_follows_gateway_authentication(server: Server, api: httpx.Client, gateway: str) -> None:
    set_gateway(api, gateway, authentication=True)
    add_config(api, gateway, "openai")
    base = f"{server.url}/v1/{server.account_id}/{gateway}/compat"
    with pytest.raises(openai.AuthenticationError):
        compat_client(server, gateway, new_key("sk-own")).models.list()  # own key, no gateway token
    with pytest.raises(openai.AuthenticationError):
        compat_client(server, gateway, "sluice_not-a-real-token").models.list()
    token = create_token(api)
    assert {m.owned_by for m in compat_client(server, gateway, token).models.list()} == {"openai"}
    via_header = httpx.get(f"{base}/models", headers={"cf-aig-authorization": f"Bearer {token}"},
                           timeout=10)
    assert via_header.status_code == 200 and {m["owned_by"] for m in via_header.json()["data"]} == {"openai"}
    assert httpx.post(f"{base}/models", headers={"cf-aig-authorization": f"Bearer {token}"},
                      timeout=10).status_code == 405


TEXTS = ["hello", "a longer input text"]


@pytest.mark.parametrize("encoding", ["float", "base64", None], ids=["float", "base64", "sdk-default"])
@pytest.mark.parametrize("provider", ["openai", "mistral", "workers-ai", "google-ai-studio"])
def test_embeddings_answer_in_openai_format(server: Server, api: httpx.Client, gateway: str,
                                            upstream: MockUpstream, provider: str,
                                            encoding: str | None) -> None:
    stored = new_key(f"sk-{provider}")
    add_config(api, gateway, provider, secret=stored)
    client = compat_client(server, gateway, create_token(api))
    extra = {"encoding_format": encoding} if encoding else {}
    answer = client.embeddings.create(model=f"{provider}/embed-x", input=TEXTS, **extra)  # type: ignore[arg-type]
    got = [item.embedding for item in answer.data]
    if encoding == "base64":  # the SDK hands base64 over as it came
        got = [list(struct.unpack("<3f", base64.b64decode(item))) for item in got]  # type: ignore[arg-type]
    assert got == [mock_embedding(text) for text in TEXTS]
    assert [item.index for item in answer.data] == [0, 1]

    (seen,) = upstream_requests(upstream)
    body = orjson.loads(seen["body"])
    if provider == "google-ai-studio":
        assert seen["path"].endswith("/v1beta/models/embed-x:batchEmbedContents")
        assert seen["headers"]["x-goog-api-key"] == stored
        assert body == {"requests": [{"model": "models/embed-x", "content": {"parts": [{"text": t}]}}
                                     for t in TEXTS]}
        assert answer.usage.prompt_tokens == 0  # Gemini reports no token counts for embeddings
    else:
        path = "/embeddings" if provider == "openai" else "/v1/embeddings"
        assert seen["path"].endswith(path) and not seen["path"].endswith("/v1" + path)
        assert seen["headers"]["authorization"] == f"Bearer {stored}"
        assert body["model"] == "embed-x" and body["input"] == TEXTS
        assert answer.usage.prompt_tokens == EMBEDDING_TOKENS_PER_INPUT * len(TEXTS)


def test_gemini_embeddings_dimensions_and_refusals(server: Server, api: httpx.Client, gateway: str,
                                                   upstream: MockUpstream) -> None:
    add_config(api, gateway, "google-ai-studio")
    add_config(api, gateway, "anthropic")
    client = compat_client(server, gateway, create_token(api))
    client.embeddings.create(model="google-ai-studio/e", input="one", dimensions=3)
    (seen,) = upstream_requests(upstream)
    assert orjson.loads(seen["body"])["requests"][0]["outputDimensionality"] == 3
    upstream.clear()
    for kwargs, param in (({"input": [[1, 2, 3]]}, "input[0]"), ({"input": "x", "user": "u"}, "user"),
                          ({"input": "x", "dimensions": 0}, "dimensions"), ({"input": []}, "input")):
        with pytest.raises(openai.BadRequestError) as caught:
            client.embeddings.create(model="google-ai-studio/e", **kwargs)  # type: ignore[arg-type]
        assert caught.value.param == param, kwargs
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="anthropic/claude-x", input="x")
    assert caught.value.param == "model" and "google-ai-studio, mistral, openai" in caught.value.message
    assert upstream_requests(upstream) == []


@pytest.mark.parametrize("provider", ["openai", "google-ai-studio"])
def test_embeddings_provider_error_is_openai_shaped(server: Server, api: httpx.Client, gateway: str,
                                                    upstream: MockUpstream, provider: str) -> None:
    add_config(api, gateway, provider)
    client = openai.OpenAI(base_url=f"{server.url}/v1/{server.account_id}/{gateway}/compat",
                           api_key=create_token(api), max_retries=0,
                           default_headers={"x-mock-fault": "status:429"})
    with pytest.raises(openai.RateLimitError) as caught:
        client.embeddings.create(model=f"{provider}/e", input="x")
    assert "mock upstream fault" in caught.value.message


def test_workers_ai_chat_goes_to_its_openai_compatible_path(server: Server, api: httpx.Client, gateway: str,
                                                            upstream: MockUpstream) -> None:
    add_config(api, gateway, "workers-ai")
    client = compat_client(server, gateway, create_token(api))
    answer = client.chat.completions.create(model="workers-ai/@cf/meta/llama-3.1-8b-instruct",
                                            messages=[{"role": "user", "content": "Hi"}])
    assert answer.choices[0].message.content
    (seen,) = upstream_requests(upstream)
    assert seen["path"].endswith("/v1/chat/completions")
    assert orjson.loads(seen["body"])["model"] == "@cf/meta/llama-3.1-8b-instruct"
