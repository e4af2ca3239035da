"""Every catalog provider: the request reaches that provider's upstream path with the stored key in
the provider's own header and scheme."""

from __future__ import annotations

import httpx
import pytest

from sluice.providers.registry import CATALOG_SLUGS, load_catalog
from tests.proxy.helpers import add_config, gateway_url, new_key, upstream_requests

CATALOG = load_catalog({})
# A path each provider accepts, and the path its (overridden) upstream then receives.
PATHS = {
    "azure-openai": ("my-resource/my-deployment/chat/completions", "chat/completions"),
    "workers-ai": ("@cf/meta/llama-3.1-8b-instruct", "run/@cf/meta/llama-3.1-8b-instruct"),
    "google-ai-studio": ("v1beta/models/gemini-2.0-flash:generateContent",
                         "v1beta/models/gemini-2.0-flash:generateContent"),
    "google-vertex-ai": ("v1/projects/p/locations/us-east1/publishers/google/models/g:generateContent",
                         "v1/projects/p/locations/us-east1/publishers/google/models/g:generateContent"),
}
STORED = [slug for slug in CATALOG_SLUGS if CATALOG[slug].stored_keys]


@pytest.mark.parametrize("slug", STORED)
def test_stored_key_reaches_the_right_upstream(server, api, gateway, upstream, slug: str) -> None:
    key = new_key()
    add_config(api, gateway, slug, secret=key)
    path, expected = PATHS.get(slug, ("chat/completions", "chat/completions"))
    response = httpx.post(f"{gateway_url(server, gateway, slug)}/{path}?x=1",
                          json={"model": "m", "messages": []})
    assert response.status_code == 200, response.text
    assert response.headers["cf-aig-byok-alias"] == "default"
    (seen,) = upstream_requests(upstream)
    assert seen["path"] == f"/{slug}/{expected}"
    assert seen["query"] == "x=1"
    provider = CATALOG[slug]
    assert seen["headers"][provider.auth_header] == provider.auth_scheme + key
    for name, value in provider.extra_headers:
        assert seen["headers"][name] == value


def test_bedrock_passes_the_client_signed_request_through(server, api, gateway, upstream) -> None:
    signature = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/bedrock/aws4_request, "
                 "Signature=abc")
    headers = {"Authorization": signature, "x-amz-date": "20260101T000000Z"}
    bedrock = gateway_url(server, gateway, "aws-bedrock")
    url = f"{bedrock}/bedrock-runtime/us-east-1/model/anthropic.claude/invoke"
    response = httpx.post(url, content=b'{"x":1}', headers=headers)
    assert response.status_code == 200, response.text
    assert "cf-aig-byok-alias" not in response.headers
    (seen,) = upstream_requests(upstream)
    assert seen["path"] == "/aws-bedrock/model/anthropic.claude/invoke"
    assert seen["headers"]["authorization"] == signature
    assert seen["headers"]["x-amz-date"] == "20260101T000000Z"
    assert seen["body"] == '{"x":1}'


def test_bedrock_without_a_signed_request_is_401(server, gateway, upstream) -> None:
    url = f"{gateway_url(server, gateway, 'aws-bedrock')}/bedrock-runtime/us-east-1/model/m/invoke"
    response = httpx.post(url, content=b"{}")
    assert response.status_code == 401 and response.json()["internalCode"] == 2005
    assert upstream_requests(upstream) == []


def test_method_query_and_body_pass_through(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    body = b"\x00binary\xffpayload" * 100
    url = f"{gateway_url(server, gateway)}/files/abc%2Fdef?purpose=fine-tune&b=%20"
    response = httpx.request("PATCH", url, content=body, headers={"content-type": "application/octet-stream",
                                                                  "x-custom": "kept",
                                                                  "cf-aig-metadata": "{}"})
    assert response.status_code == 200
    (seen,) = upstream_requests(upstream)
    assert seen["method"] == "PATCH"
    assert seen["path"] == "/openai/files/abc/def" or seen["path"] == "/openai/files/abc%2Fdef"
    assert seen["query"] == "purpose=fine-tune&b=%20"
    assert seen["body"].encode("latin-1") == body
    assert seen["headers"]["x-custom"] == "kept"
    assert seen["headers"]["content-type"] == "application/octet-stream"
    assert not any(name.startswith("cf-aig-") for name in seen["headers"])


def test_headers_the_connection_header_names_stay_on_the_client_hop(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    response = httpx.post(f"{gateway_url(server, gateway)}/chat/completions",
                          json={"model": "m", "messages": []},
                          headers={"connection": "keep-alive, x-hop", "x-hop": "private", "x-end": "kept"})
    assert response.status_code == 200
    (seen,) = upstream_requests(upstream)
    assert seen["headers"]["x-end"] == "kept" and "x-hop" not in seen["headers"]
