"""Custom provider definitions (pure): slugs, the Provider built from a row, extra header rules."""

from __future__ import annotations

import pytest

from sluice.providers.custom import MAX_SLUG, custom_provider, is_custom, parse_headers


def test_slugs() -> None:
    assert is_custom("custom-a") and is_custom("custom-" + "a" * MAX_SLUG) and is_custom("custom-a-1")
    for slug in ("custom-", "custom-A", "custom--a", "custom-a-", "custom-" + "a" * (MAX_SLUG + 1),
                 "openai", "xcustom-a", "custom-a/b"):
        assert not is_custom(slug), slug


def test_provider_from_a_row() -> None:
    row = {"slug": "mine", "base_url": "https://h.example/v1/", "auth_header": "authorization",
           "auth_scheme": "Bearer "}
    provider = custom_provider(row, {"x-team": "t"})
    assert provider.slug == "custom-mine" and provider.custom and provider.stored_keys
    assert provider.upstream_url("chat/completions", "a=1", "acct") == "https://h.example/v1/chat/completions?a=1"
    assert provider.auth_value("k") == "Bearer k" and provider.auth_header_names == ("authorization",)
    assert provider.extra_headers == (("x-team", "t"),) and provider.usage_format == "openai"
    other = custom_provider({**row, "auth_header": "x-api-key", "auth_scheme": ""}, {})
    assert other.auth_value("k") == "k"
    assert other.auth_header_names == ("x-api-key", "authorization")  # OpenAI's SDKs send Authorization
    assert other.strip_scheme("Bearer k", "authorization") == "k"


def test_headers_are_lower_cased() -> None:
    assert parse_headers('{"X-Team": "a", "Api-Key": "b"}') == {"x-team": "a", "api-key": "b"}
    assert parse_headers("{}") == {}


BAD = ['{"Host": "h"}', '{"Transfer-Encoding": "chunked"}', '{"CF-AIG-Metadata": "x"}', '{"a b": "x"}',
       '{"x": null}', '{"x": "  "}', '{"x": "a\\r\\nb: c"}', "[1]", '{"x": "\\u0100"}',
       '{"x": "1", "X": "2"}', "{"]


@pytest.mark.parametrize("text", BAD)
def test_bad_headers(text: str) -> None:
    with pytest.raises(ValueError):
        parse_headers(text)
