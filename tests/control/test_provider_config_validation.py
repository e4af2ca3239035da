"""Every validation rule of provider-config create (docs/api.md, Provider configs), one case each.

Each refused request answers 400 / 7001 with the field named in ``path`` and a message, and leaves
nothing behind: the gateway's config count and the account's secret count are unchanged.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sluice.providers.registry import CATALOG_SLUGS
from tests.control.assertions import assert_ok, assert_v4_error

VALID = {"provider_slug": "openai", "alias": "main", "default_config": False, "secret": "sk-valid-0123456789"}
MISSING = object()


def body(**changes: Any) -> dict[str, Any]:
    out = {**VALID, **changes}
    return {k: v for k, v in out.items() if v is not MISSING}


# (case id, JSON body, field path, text the message must contain)
CASES: list[tuple[str, Any, list[str], str]] = [
    ("unknown-provider", body(provider_slug="openia"), ["body", "provider_slug"], "anthropic"),
    ("provider-wrong-type", body(provider_slug=7), ["body", "provider_slug"], ""),
    ("alias-empty", body(alias=""), ["body", "alias"], ""),
    ("alias-65-chars", body(alias="a" * 65), ["body", "alias"], "64"),
    ("alias-space", body(alias="my key"), ["body", "alias"], ""),
    ("alias-slash", body(alias="a/b"), ["body", "alias"], ""),
    ("alias-non-ascii", body(alias="schlüssel"), ["body", "alias"], ""),
    ("missing-provider_slug", body(provider_slug=MISSING), ["body", "provider_slug"], "required"),
    ("missing-alias", body(alias=MISSING), ["body", "alias"], "required"),
    ("missing-default_config", body(default_config=MISSING), ["body", "default_config"], "required"),
    ("default_config-string", body(default_config="true"), ["body", "default_config"], ""),
    ("default_config-number", body(default_config=1), ["body", "default_config"], ""),
    ("secret-empty", body(secret=""), ["body", "secret"], "blank"),
    ("secret-blank", body(secret="   \t "), ["body", "secret"], ""),
    ("secret-newline", body(secret="sk-abc\ndef-123456"), ["body", "secret"], "control"),
    ("secret-nul", body(secret="sk-abc\x00def-123456"), ["body", "secret"], "control"),
    ("secret-del", body(secret="sk-abc\x7fdef-123456"), ["body", "secret"], "control"),
    ("secret-65537-bytes", body(secret="k" * 65537), ["body", "secret"], "65536"),
    ("secret-65538-bytes-in-32769-chars", body(secret="é" * 32769), ["body", "secret"], "65536"),
    ("secret-not-string", body(secret=12345), ["body", "secret"], ""),
    ("secret_id-unknown", body(secret=MISSING, secret_id="0" * 32), ["body", "secret_id"], ""),
    ("neither-secret-nor-conventional", body(secret=MISSING, alias="nobody"), ["body", "secret"], "nobody"),
    ("rate_limit-negative", body(rate_limit=-1), ["body", "rate_limit"], ">= 0"),
    ("rate_limit-fraction", body(rate_limit=1.5), ["body", "rate_limit"], "whole"),
    ("rate_limit-string", body(rate_limit="10"), ["body", "rate_limit"], "number"),
    ("rate_limit-bool", body(rate_limit=True), ["body", "rate_limit"], "number"),
    ("rate_limit-huge", body(rate_limit=1e300), ["body", "rate_limit"], ""),
    ("rate_limit_period-zero", body(rate_limit_period=0), ["body", "rate_limit_period"], "> 0"),
    ("rate_limit_period-negative", body(rate_limit_period=-60), ["body", "rate_limit_period"], "> 0"),
    ("rate_limit_period-too-long", body(rate_limit_period=2_592_001), ["body", "rate_limit_period"],
     "2592000"),
    ("rate_limit_period-fraction", body(rate_limit_period=1.5), ["body", "rate_limit_period"], "whole"),
    ("rate_limit_period-string", body(rate_limit_period="60"), ["body", "rate_limit_period"], "number"),
    ("unknown-field", body(colour="blue"), ["body", "colour"], "unknown"),
]


def _counts(api: httpx.Client, gateway: str) -> tuple[int, int]:
    configs = assert_ok(api.get(f"/ai-gateway/gateways/{gateway}/provider_configs"))
    usage = assert_ok(api.get("/secrets_store/quota"))["secrets"]["usage"]
    return len(configs), usage


@pytest.mark.parametrize(("case", "payload", "path", "says"), CASES, ids=[c[0] for c in CASES])
def test_invalid_create_is_refused_naming_the_field(api: httpx.Client, gateway: str, case: str, payload: Any,
                                                    path: list[str], says: str) -> None:
    before = _counts(api, gateway)
    response = api.post(f"/ai-gateway/gateways/{gateway}/provider_configs", json=payload)
    assert_v4_error(response, 400, 7001, path=path, says=says or None)
    assert _counts(api, gateway) == before


def test_unknown_provider_message_lists_every_valid_slug(api: httpx.Client, gateway: str) -> None:
    response = api.post(f"/ai-gateway/gateways/{gateway}/provider_configs", json=body(provider_slug="nope"))
    error = assert_v4_error(response, 400, 7001, path=["body", "provider_slug"])
    assert all(slug in error["message"] for slug in CATALOG_SLUGS), error["message"]


def test_secret_id_without_ai_gateway_scope_is_refused(api: httpx.Client, gateway: str) -> None:
    store = assert_ok(api.post("/secrets_store/stores", json={"name": f"workers-only-{gateway}"}))
    secret = assert_ok(api.post(f"/secrets_store/stores/{store['id']}/secrets",
                                json=[{"name": "w", "value": "v-123456789", "scopes": ["workers"]}]))[0]
    before = _counts(api, gateway)
    response = api.post(f"/ai-gateway/gateways/{gateway}/provider_configs",
                        json=body(secret=MISSING, secret_id=secret["id"]))
    assert_v4_error(response, 400, 7001, path=["body", "secret_id"], says="ai_gateway")
    assert _counts(api, gateway) == before


@pytest.mark.parametrize(("raw", "says"), [(b'{"alias": "x",', "malformed"), (b"[1, 2]", "object"),
                                           (b'"just a string"', "object"), (b"42", "object"),
                                           (b"", "required")],
                         ids=["malformed", "array", "string", "number", "empty"])
def test_unparseable_body_is_refused(api: httpx.Client, gateway: str, raw: bytes, says: str) -> None:
    before = _counts(api, gateway)
    response = api.post(f"/ai-gateway/gateways/{gateway}/provider_configs", content=raw,
                        headers={"content-type": "application/json"})
    assert_v4_error(response, 400, 7001, path=["body"], says=says)
    assert _counts(api, gateway) == before


def test_boundaries_that_are_allowed(api: httpx.Client, gateway: str) -> None:
    """The edges of each rule are accepted, so the refusals above are not over-broad."""
    accepted = [
        body(alias="a" * 64, secret="k" * 65536, rate_limit=0, rate_limit_period=2_592_000),
        body(alias="A-z_0-9", secret="é" * 32768, rate_limit=10.0, rate_limit_period=1),
        body(alias="x", secret="s", provider_slug="anthropic"),
    ]
    for payload in accepted:
        result = assert_ok(api.post(f"/ai-gateway/gateways/{gateway}/provider_configs", json=payload))
        assert result["alias"] == payload["alias"]
    results = assert_ok(api.get(f"/ai-gateway/gateways/{gateway}/provider_configs"))
    assert [r["rate_limit"] for r in results] == [0, 10, None]  # never set: null, as Cloudflare types it
    assert [r["rate_limit_period"] for r in results] == [2_592_000, 1, 60]
