"""Stored keys of several shapes, and traffic that makes the mock provider echo them back.

Shared by the canary tests (issue 15 item 6): the mock's ``echo-key`` fault answers 401 with
``Incorrect API key provided: <the auth header it was sent>``, as OpenAI does, in several framings.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.proxy.helpers import add_config, gateway_url

# (provider, alias) -> a fresh key; three have no shape the prefix rules know
Planted = dict[tuple[str, str], str]
PATHS = {"openai": "chat/completions", "anthropic": "v1/messages", "mistral": "v1/chat/completions",
         "azure-openai": "res/dep/chat/completions?api-version=2024-10-21",
         "workers-ai": "v1/chat/completions"}
# how the 401 comes: content-length, compressed three ways, chunked, echoed in a header too
RELAYED = ("", "gzip", "deflate", "zstd", "chunked", "header")
REFUSED = ("big", "br")  # cannot be checked: a 502 instead of the provider's body
BODY = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def planted_keys() -> Planted:
    return {
        ("openai", "default"): f"sk-proj-{secrets.token_urlsafe(24)}",
        ("openai", "team-b"): secrets.token_urlsafe(32),  # an OpenAI key under another alias, no known shape
        ("anthropic", "default"): f"sk-ant-api03-{secrets.token_urlsafe(24)}",
        ("mistral", "default"): secrets.token_urlsafe(24),
        ("azure-openai", "default"): secrets.token_hex(16),
        ("workers-ai", "default"): secrets.token_urlsafe(30),
    }


def install(api: httpx.Client, gateway: str, keys: Planted) -> None:
    for (provider, alias), key in keys.items():
        add_config(api, gateway, provider, alias=alias, default=alias == "default", secret=key)


def echo_traffic(server: Any, gateway: str, keys: Planted, headers: dict[str, str] | None = None,
                 variants: tuple[str, ...] = RELAYED + REFUSED) -> list[httpx.Response]:
    """One request per stored key and framing; every response read whole."""
    responses = []
    with httpx.Client(timeout=30) as client:
        for provider, alias in keys:
            url = f"{gateway_url(server, gateway, provider)}/{PATHS[provider]}"
            for variant in variants:
                sent = {**(headers or {}), "x-mock-fault": f"echo-key:{variant}" if variant else "echo-key",
                        "cf-aig-byok-alias": alias}
                responses.append(client.post(url, json=BODY, headers=sent))
    return responses


def shown(response: httpx.Response) -> str:
    """What a client sees: the body as sent (and decoded) and every header."""
    raw = response.content.decode("latin-1")
    return raw + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
