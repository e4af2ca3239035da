"""The provider catalog: every slug loads, keys are sent the provider's way, URLs are built right."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.providers.registry import (
    CATALOG_SLUGS,
    CatalogError,
    Provider,
    _raw_catalog,
    load_catalog,
    override_env_name,
    parse_catalog,
)

REQUIRED = (
    "openai", "anthropic", "azure-openai", "google-ai-studio", "google-vertex-ai", "workers-ai", "groq",
    "mistral", "cohere", "perplexity-ai", "deepseek", "cerebras", "grok", "openrouter", "huggingface",
    "replicate", "cartesia", "elevenlabs", "aws-bedrock",
)
CATALOG = load_catalog({})
MOCK = "http://127.0.0.1:9999"
VERTEX_PATH = ("v1/projects/p1/locations/europe-west4/publishers/google/models/"
               "gemini-2.0-flash:generateContent")

# slug -> (auth header, value for key "k1", usage format)
AUTH = {
    "openai": ("authorization", "Bearer k1", "openai"),
    "anthropic": ("x-api-key", "k1", "anthropic"),
    "azure-openai": ("api-key", "k1", "openai"),
    "google-ai-studio": ("x-goog-api-key", "k1", "google"),
    "google-vertex-ai": ("authorization", "Bearer k1", "google"),
    "workers-ai": ("authorization", "Bearer k1", "openai"),
    "groq": ("authorization", "Bearer k1", "openai"),
    "mistral": ("authorization", "Bearer k1", "openai"),
    "cohere": ("authorization", "Bearer k1", "cohere"),
    "perplexity-ai": ("authorization", "Bearer k1", "openai"),
    "deepseek": ("authorization", "Bearer k1", "openai"),
    "cerebras": ("authorization", "Bearer k1", "openai"),
    "grok": ("authorization", "Bearer k1", "openai"),
    "openrouter": ("authorization", "Bearer k1", "openai"),
    "huggingface": ("authorization", "Bearer k1", "openai"),
    "replicate": ("authorization", "Token k1", "none"),
    "cartesia": ("x-api-key", "k1", "none"),
    "elevenlabs": ("xi-api-key", "k1", "none"),
    "aws-bedrock": ("authorization", "k1", "none"),
}

# slug, gateway path, query -> real upstream URL, URL under an override
URLS = [
    ("openai", "chat/completions", "", "https://api.openai.com/v1/chat/completions", "/chat/completions"),
    ("openai", "responses", "a=1&b=2", "https://api.openai.com/v1/responses?a=1&b=2", "/responses?a=1&b=2"),
    ("openai", "", "", "https://api.openai.com/v1", ""),
    ("anthropic", "v1/messages", "", "https://api.anthropic.com/v1/messages", "/v1/messages"),
    ("azure-openai", "myres/mydep/chat/completions", "api-version=2024-10-21",
     "https://myres.openai.azure.com/openai/deployments/mydep/chat/completions?api-version=2024-10-21",
     "/chat/completions?api-version=2024-10-21"),
    ("azure-openai", "myres/mydep", "", "https://myres.openai.azure.com/openai/deployments/mydep", ""),
    ("google-ai-studio", "v1beta/models/gemini-2.0-flash:generateContent", "",
     "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent",
     "/v1beta/models/gemini-2.0-flash:generateContent"),
    ("google-vertex-ai", VERTEX_PATH, "", f"https://europe-west4-aiplatform.googleapis.com/{VERTEX_PATH}",
     f"/{VERTEX_PATH}"),
    ("google-vertex-ai", "v1/projects/p1/publishers/google/models/m:generateContent", "",
     "https://us-central1-aiplatform.googleapis.com/v1/projects/p1/publishers/google/models/m:generateContent",
     "/v1/projects/p1/publishers/google/models/m:generateContent"),
    ("google-vertex-ai", "v1/projects/p1/locations/global/publishers/google/models/m:generateContent", "",
     "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/publishers/google/models/m:generateContent",
     "/v1/projects/p1/locations/global/publishers/google/models/m:generateContent"),
    ("workers-ai", "@cf/meta/llama-3.1-8b-instruct", "",
     "https://api.cloudflare.com/client/v4/accounts/acct1/ai/run/@cf/meta/llama-3.1-8b-instruct",
     "/run/@cf/meta/llama-3.1-8b-instruct"),
    ("workers-ai", "v1/chat/completions", "",
     "https://api.cloudflare.com/client/v4/accounts/acct1/ai/v1/chat/completions", "/v1/chat/completions"),
    ("workers-ai", "run/@cf/x", "", "https://api.cloudflare.com/client/v4/accounts/acct1/ai/run/@cf/x",
     "/run/@cf/x"),
    ("groq", "chat/completions", "", "https://api.groq.com/openai/v1/chat/completions", "/chat/completions"),
    ("mistral", "v1/chat/completions", "", "https://api.mistral.ai/v1/chat/completions",
     "/v1/chat/completions"),
    ("cohere", "v1/chat", "", "https://api.cohere.ai/v1/chat", "/v1/chat"),
    ("perplexity-ai", "chat/completions", "", "https://api.perplexity.ai/chat/completions",
     "/chat/completions"),
    ("deepseek", "chat/completions", "", "https://api.deepseek.com/chat/completions", "/chat/completions"),
    ("cerebras", "chat/completions", "", "https://api.cerebras.ai/v1/chat/completions", "/chat/completions"),
    ("grok", "v1/chat/completions", "", "https://api.x.ai/v1/chat/completions", "/v1/chat/completions"),
    ("openrouter", "v1/chat/completions", "", "https://openrouter.ai/api/v1/chat/completions",
     "/v1/chat/completions"),
    ("huggingface", "bigcode/starcoder", "", "https://api-inference.huggingface.co/models/bigcode/starcoder",
     "/bigcode/starcoder"),
    ("replicate", "predictions", "", "https://api.replicate.com/v1/predictions", "/predictions"),
    ("cartesia", "tts/bytes", "", "https://api.cartesia.ai/tts/bytes", "/tts/bytes"),
    ("elevenlabs", "v1/text-to-speech/voice1", "", "https://api.elevenlabs.io/v1/text-to-speech/voice1",
     "/v1/text-to-speech/voice1"),
    ("aws-bedrock", "bedrock-runtime/us-east-1/model/anthropic.claude-v2/invoke", "",
     "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-v2/invoke",
     "/model/anthropic.claude-v2/invoke"),
]

BAD_PATHS = [
    ("azure-openai", ""),
    ("azure-openai", "myres"),
    ("azure-openai", "myres/"),
    ("azure-openai", "/mydep/chat/completions"),
    ("azure-openai", "evil.com#/dep/chat"),
    ("azure-openai", "a@evil.com/dep/chat"),
    ("azure-openai", "res/dep?x/chat"),
    ("aws-bedrock", "model/x/invoke"),
    ("aws-bedrock", "bedrock-runtime"),
    ("aws-bedrock", "bedrock-runtime/evil.com:80/model/x"),
    ("google-vertex-ai", "v1/projects/p/locations/evil.com%2F/x"),
    ("google-vertex-ai", "v1/projects/p/locations/a.b/x"),
]


def test_every_required_slug_loads():
    assert set(REQUIRED) <= set(CATALOG_SLUGS)
    assert list(CATALOG_SLUGS) == sorted(CATALOG_SLUGS)
    assert set(CATALOG) == set(CATALOG_SLUGS)
    assert all(isinstance(p, Provider) and not p.overridden for p in CATALOG.values())
    assert set(AUTH) == set(CATALOG_SLUGS), "every catalog slug is covered by the auth table"


@pytest.mark.parametrize("slug", sorted(AUTH))
def test_auth_value_and_usage_format(slug):
    header, value, usage_format = AUTH[slug]
    provider = CATALOG[slug]
    assert provider.auth_header == header
    assert provider.auth_value("k1") == value
    assert provider.usage_format == usage_format


def test_extra_headers_and_stored_keys():
    assert CATALOG["anthropic"].extra_headers == (("anthropic-version", "2023-06-01"),)
    assert dict(CATALOG["cartesia"].extra_headers).keys() == {"cartesia-version"}
    assert CATALOG["openai"].extra_headers == ()
    assert [slug for slug, p in CATALOG.items() if not p.stored_keys] == ["aws-bedrock"]


@pytest.mark.parametrize(("slug", "path", "query", "real", "mocked"), URLS)
def test_upstream_url(slug, path, query, real, mocked):
    assert CATALOG[slug].upstream_url(path, query, "acct1") == real
    overridden = load_catalog({slug: MOCK})[slug]
    assert overridden.overridden and overridden.base_url == MOCK
    assert overridden.upstream_url(path, query, "acct1") == MOCK + mocked


def test_every_slug_has_a_url_case():
    assert {case[0] for case in URLS} == set(CATALOG_SLUGS)


def test_override_is_verbatim_and_only_for_its_slug():
    catalog = load_catalog({"openai": "http://127.0.0.1:1/prefix/", "nonexistent": "http://x"})
    assert catalog["openai"].base_url == "http://127.0.0.1:1/prefix"
    assert catalog["openai"].upstream_url("chat/completions", "", "a") == "http://127.0.0.1:1/prefix/chat/completions"
    assert not catalog["anthropic"].overridden
    assert load_catalog({"openai": ""})["openai"].overridden is False
    with pytest.raises(CatalogError, match="SLUICE_UPSTREAM_OPENAI"):
        load_catalog({"openai": "ftp://x"})


@pytest.mark.parametrize(("slug", "path"), BAD_PATHS)
def test_bad_template_paths_raise_value_error(slug, path):
    with pytest.raises(ValueError, match=slug):
        CATALOG[slug].upstream_url(path, "", "acct1")


def test_template_consumption_still_checked_when_overridden():
    azure = load_catalog({"azure-openai": MOCK})["azure-openai"]
    with pytest.raises(ValueError, match="azure-openai"):
        azure.upstream_url("only-resource", "", "a")


@pytest.mark.parametrize("account", ["", "a/b", "a?b", "x#y", "acc@evil"])
def test_workers_ai_rejects_unsafe_account_id(account):
    with pytest.raises(ValueError, match="workers-ai"):
        CATALOG["workers-ai"].upstream_url("@cf/m", "", account)


@settings(max_examples=300, deadline=None)
@given(path=st.text(), query=st.text(), account=st.text(), slug=st.sampled_from(CATALOG_SLUGS))
def test_upstream_url_never_raises_anything_but_value_error(path, query, account, slug):
    for provider in (CATALOG[slug], load_catalog({slug: MOCK})[slug]):
        try:
            url = provider.upstream_url(path, query, account)
        except ValueError:
            continue
        assert url.startswith(("https://", MOCK))
        if not provider.overridden and "{" not in provider.base_url:
            assert url.startswith(provider.base_url)


@pytest.mark.parametrize(
    ("slug", "headers", "expected"),
    [
        ("openai", {"authorization": "Bearer sk-1"}, "Bearer sk-1"),
        ("openai", {"authorization": ""}, None),
        ("openai", {"authorization": "   "}, None),
        ("openai", {"authorization": "Bearer "}, None),
        ("openai", {"authorization": "bearer"}, None),
        ("openai", {}, None),
        ("openai", {"x-api-key": "k"}, None),
        ("anthropic", {"x-api-key": "sk-ant"}, "sk-ant"),
        ("anthropic", {"x-api-key": ""}, None),
        ("anthropic", {"authorization": "Bearer x"}, "Bearer x"),  # anthropic SDK 2.x sends this
        ("anthropic", {"authorization": "Bearer "}, None),
        ("anthropic", {"authorization": "Bearer b", "x-api-key": "a"}, "a"),
        ("anthropic", {"authorization": "Bearer b", "x-api-key": ""}, "Bearer b"),
        ("cartesia", {"authorization": "Bearer c2"}, "Bearer c2"),
        ("elevenlabs", {"authorization": "Bearer e"}, None),
        ("azure-openai", {"api-key": "az"}, "az"),
        ("google-ai-studio", {"x-goog-api-key": "g"}, "g"),
        ("elevenlabs", {"xi-api-key": "e"}, "e"),
        ("cartesia", {"x-api-key": "c"}, "c"),
        ("replicate", {"authorization": "Token r8"}, "Token r8"),
        ("replicate", {"authorization": "Token "}, None),
        ("aws-bedrock", {"authorization": "AWS4-HMAC-SHA256 Credential=x"}, "AWS4-HMAC-SHA256 Credential=x"),
    ],
)
def test_credential_header(slug, headers, expected):
    found = CATALOG[slug].credential_header(headers)
    assert (found[1] if found else None) == expected


def test_credential_header_and_names():
    anthropic = CATALOG["anthropic"]
    assert anthropic.auth_header_names == ("x-api-key", "authorization")
    found = anthropic.credential_header({"authorization": "Bearer sluice_x"})
    assert found == ("authorization", "Bearer sluice_x")
    assert anthropic.strip_scheme("Bearer sluice_x", "authorization") == "sluice_x"
    assert anthropic.strip_scheme("Bearer sluice_x") == "Bearer sluice_x"  # x-api-key has no scheme
    assert anthropic.auth_value("k") == "k"
    assert CATALOG["openai"].auth_header_names == ("authorization",)
    assert CATALOG["openai"].credential_header({}) is None


def test_strip_scheme():
    assert CATALOG["openai"].strip_scheme("Bearer sluice_abc") == "sluice_abc"
    assert CATALOG["openai"].strip_scheme("bearer  sluice_abc ") == "sluice_abc"
    assert CATALOG["anthropic"].strip_scheme("sluice_abc") == "sluice_abc"


def test_override_env_name():
    assert override_env_name("openai") == "SLUICE_UPSTREAM_OPENAI"
    assert override_env_name("google-ai-studio") == "SLUICE_UPSTREAM_GOOGLE_AI_STUDIO"
    assert override_env_name("perplexity-ai") == "SLUICE_UPSTREAM_PERPLEXITY_AI"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"base_url": None}, "base_url"),
        ({"base_url": "api.openai.com"}, "base_url"),
        ({"base_url": "https://{nothing}.example"}, "placeholders"),
        ({"auth_header": "Authorization"}, "auth_header"),
        ({"usage_format": "xml"}, "usage_format"),
        ({"stored_keys": "no"}, "stored_keys"),
        ({"extra_headers": {"X-Thing": "1"}}, "extra_headers"),
        ({"extra_headers": {"x-thing": 1}}, "extra_headers"),
        ({"path_rewrite": [["a"]]}, "path_rewrite"),
        ({"base_url_when": {"region": "https://x"}}, "base_url_when"),
        ({"alt_auth": {"authorization": "Bearer "}}, "alt_auth"),
        ({"alt_auth": {"X-Key": ""}}, "alt_auth"),
        ({"surprise": 1}, "unknown keys"),
        ({"compat": "soap"}, "compat must be one of"),
        ({"compat": None}, "need compat"),
        ({"compat_chat_path": None}, "compat needs compat_chat_path"),
        ({"compat_chat_path": "/chat/completions"}, "compat_chat_path must be a relative path"),
        ({"compat_embeddings_path": "v1/{name}"}, "compat_embeddings_path must be a relative path"),
        ({"models": "gpt-4o"}, "models must be a list"),
        ({"embedding_models": [""]}, "embedding_models must be a list"),
        ({"models_reviewed": "2026-11-29"}, "models_reviewed must be a date"),
    ],
)
def test_bad_catalog_entry_names_the_slug(change, message):
    data = copy.deepcopy(_raw_catalog())
    for key, value in change.items():
        if value is None:
            del data["openai"][key]
        else:
            data["openai"][key] = value
    with pytest.raises(CatalogError, match=rf"'openai'.*{message}"):
        parse_catalog(data, {})


def test_non_table_entry_rejected():
    with pytest.raises(CatalogError, match="'broken'"):
        parse_catalog({"broken": "https://x"}, {})


def test_compat_data_of_the_bundled_catalog():
    catalog = load_catalog({})
    openai, gemini = catalog["openai"].compat, catalog["google-ai-studio"].compat
    assert openai is not None and gemini is not None and catalog["cohere"].compat is None
    assert (openai.format, openai.chat_path, openai.stream_path) == ("passthrough", "chat/completions",
                                                                     "chat/completions")
    assert gemini.stream_path == "v1beta/models/{model}:streamGenerateContent?alt=sse"
    assert gemini.models_reviewed == 1_795_910_400  # 2026-11-29, midnight UTC
