"""Custom providers API (docs/api.md, "Custom providers") with the official ``cloudflare`` SDK: create,
get, list with paging, search and filters, update (a merge; the SDK has no update method), delete;
every field validated with a 400 naming it; duplicates 409; extra header values never returned; the
delete / slug-change refusal while provider configs use the provider."""

from __future__ import annotations

import secrets
from typing import Any

import cloudflare
import httpx
import orjson
import pytest

from tests.control.assertions import assert_ok, assert_v4_error
from tests.control.test_canary import files_containing, stored_containing
from tests.proxy.helpers import add_config
from tests.support.server import Server
from tests.support.stored import secret_value

CP = "/ai-gateway/custom-providers"


def new_slug(prefix: str = "cp") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def create(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"name": "Mine", "slug": new_slug(), "base_url": "https://models.example.com/v1", **fields}
    return assert_ok(api.post(CP, json=body))


def test_crud_with_the_cloudflare_sdk(cf, server: Server, api: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    slug, secret_value = new_slug(), f"team-{secrets.token_hex(16)}"
    created = cf.ai_gateway.custom_providers.create(
        account_id=server.account_id, name="Internal models", slug=slug,
        base_url="https://llm.internal.example/v1/", description="our vLLM", enable=True, beta=True,
        position=3, link="https://wiki.example/llm", curl_example="curl ...", js_example="fetch(...)",
        headers=orjson.dumps({"X-Team-Key": secret_value}).decode())
    assert created.slug == slug and created.name == "Internal models"
    assert created.base_url == "https://llm.internal.example/v1"  # the trailing slash is dropped
    assert (created.enable, created.beta, created.position) == (True, True, 3)
    assert created.description == "our vLLM" and created.link == "https://wiki.example/llm"
    assert orjson.loads(created.headers) == {"x-team-key": "[REDACTED]"}  # names only, never values
    assert created.created_at == created.modified_at

    got = cf.ai_gateway.custom_providers.get(created.id, account_id=server.account_id)
    assert got.model_dump() == created.model_dump()
    listed = [p.id for p in cf.ai_gateway.custom_providers.list(account_id=server.account_id, search=slug)]
    assert listed == [created.id]

    raw = api.get(f"{CP}/{created.id}").text + api.get(CP, params={"search": slug}).text
    assert secret_value not in raw

    updated = assert_ok(api.patch(f"{CP}/{created.id}", json={"description": None, "position": 1}))
    assert updated["description"] is None and updated["position"] == 1
    assert updated["name"] == "Internal models"
    assert updated["headers"] == created.headers, "headers left out are kept"
    assert updated["modified_at"] >= updated["created_at"]

    deleted = cf.ai_gateway.custom_providers.delete(created.id, account_id=server.account_id)
    assert deleted.id == created.id
    with pytest.raises(cloudflare.NotFoundError):
        cf.ai_gateway.custom_providers.get(created.id, account_id=server.account_id)


def test_defaults_and_provider_name(api: httpx.Client) -> None:
    row = create(api)
    assert (row["enable"], row["beta"], row["position"]) == (True, False, 0)
    assert row["headers"] is None and row["description"] is None and row["logo"] is None
    assert (row["auth_header"], row["auth_scheme"]) == ("authorization", "Bearer ")
    assert row["provider"] == f"custom-{row['slug']}"


def test_paging_search_filters_and_order(cf, server: Server, api: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    tag = secrets.token_hex(4)
    made = [create(api, name=f"{tag} {name}", position=position, beta=beta, enable=enable)
            for name, position, beta, enable in (("c", 1, False, True), ("a", 1, True, True),
                                                 ("b", 0, False, False), ("d", 2, True, False),
                                                 ("e", 0, False, True))]
    by_name = {r["name"].split()[1]: r["id"] for r in made}
    pager = cf.ai_gateway.custom_providers.list(account_id=server.account_id, search=tag, per_page=2)
    assert [p.id for p in pager] == [by_name[n] for n in "beacd"], "position, then name; every page"
    first = api.get(CP, params={"search": tag, "per_page": 2, "page": 2}).json()
    assert first["result_info"] == {"page": 2, "per_page": 2, "count": 2, "total_count": 5, "total_pages": 3}
    assert api.get(CP, params={"search": tag, "page": 9}).json()["result"] == []
    beta = cf.ai_gateway.custom_providers.list(account_id=server.account_id, search=tag, beta=True)
    assert {p.id for p in beta} == {by_name["a"], by_name["d"]}
    disabled = cf.ai_gateway.custom_providers.list(account_id=server.account_id, search=tag, enable=False)
    assert {p.id for p in disabled} == {by_name["b"], by_name["d"]}
    by_slug = assert_ok(api.get(CP, params={"search": made[0]["slug"]}))
    assert [r["id"] for r in by_slug] == [made[0]["id"]]
    assert_ok(api.get(CP, params={"search": "100%_"}))  # LIKE wildcards are literal


@pytest.mark.parametrize(("query", "field"), [({"page": "0"}, "page"), ({"per_page": "101"}, "per_page"),
                                              ({"beta": "maybe"}, "beta"), ({"enable": "2"}, "enable"),
                                              ({"search": "x" * 257}, "search")])
def test_list_query_errors_name_the_parameter(api: httpx.Client, query: dict[str, str], field: str) -> None:
    assert_v4_error(api.get(CP, params=query), 400, 7001, path=["query", field])


BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"slug": "Upper"}, "slug"), ({"slug": "-lead"}, "slug"), ({"slug": "trail-"}, "slug"),
    ({"slug": "a" * 58}, "slug"), ({"slug": "with space"}, "slug"), ({"slug": 5}, "slug"),
    ({"slug": None}, "slug"),
    ({"base_url": "ftp://host/x"}, "base_url"), ({"base_url": "/v1"}, "base_url"),
    ({"base_url": "https://"}, "base_url"), ({"base_url": "https://u:p@host"}, "base_url"),
    ({"base_url": "https://host/v1?key=1"}, "base_url"), ({"base_url": "https://host:99999"}, "base_url"),
    ({"base_url": "https://host/" + "a" * 2048}, "base_url"), ({"base_url": "https://ho st"}, "base_url"),
    ({"base_url": "https://h.example/\u00e9t\u00e9"}, "base_url"),
    ({"headers": '{"x-a": "\u2603"}'}, "headers"),
    ({"name": ""}, "name"), ({"name": "  "}, "name"), ({"name": None}, "name"), ({"name": "n" * 256}, "name"),
    ({"headers": "not json"}, "headers"), ({"headers": "[]"}, "headers"),
    ({"headers": '{"bad name": "v"}'}, "headers"), ({"headers": '{"host": "h"}'}, "headers"),
    ({"headers": '{"cf-aig-authorization": "x"}'}, "headers"), ({"headers": '{"x-a": 1}'}, "headers"),
    ({"headers": '{"x-a": ""}'}, "headers"), ({"headers": '{"x-a": "a\\nb"}'}, "headers"),
    ({"headers": '{"X-A": "1", "x-a": "2"}'}, "headers"), ({"headers": {"x-a": "1"}}, "headers"),
    ({"headers": orjson.dumps({f"x-{i}": "v" for i in range(33)}).decode()}, "headers"),
    ({"headers": orjson.dumps({"x-a": "v" * 9000}).decode()}, "headers"),
    ({"position": -1}, "position"), ({"position": "1"}, "position"), ({"position": 1.5}, "position"),
    ({"enable": "yes"}, "enable"), ({"beta": 1}, "beta"), ({"description": "d" * 1025}, "description"),
    ({"link": "javascript:alert(1)"}, "link"), ({"curl_example": 7}, "curl_example"),
    ({"auth_header": "bad header"}, "auth_header"), ({"auth_header": "content-length"}, "auth_header"),
    ({"auth_header": "x" * 65}, "auth_header"), ({"auth_scheme": "s" * 65}, "auth_scheme"),
    ({"auth_scheme": "Bearer\n"}, "auth_scheme"), ({"logo": "<svg/>"}, "logo"), ({"extra": 1}, "extra"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_FIELDS,
                         ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD_FIELDS)])
def test_every_field_is_validated(api: httpx.Client, fields: dict[str, Any], field: str) -> None:
    body = {"name": "n", "slug": new_slug(), "base_url": "https://h.example", **fields}
    assert_v4_error(api.post(CP, json=body), 400, 7001, path=["body", field])
    row = create(api)
    assert_v4_error(api.patch(f"{CP}/{row['id']}", json=fields), 400, 7001, path=["body", field])


@pytest.mark.parametrize("headers", [{"bad name": "sk-SECRET-1234567890"}, {"x-a": "sk-SECRET-1234567890\n"},
                                     {"x-a": "sk-SECRET-1234567890" * 300}])
def test_header_errors_never_echo_a_value(api: httpx.Client, headers: dict[str, str]) -> None:
    response = api.post(CP, json={"name": "n", "slug": new_slug(), "base_url": "https://h.example",
                                  "headers": orjson.dumps(headers).decode()})
    assert_v4_error(response, 400, 7001, path=["body", "headers"])
    assert "SECRET" not in response.text


@pytest.mark.parametrize("missing", ["name", "slug", "base_url"])
def test_required_fields(api: httpx.Client, missing: str) -> None:
    body = {"name": "n", "slug": new_slug(), "base_url": "https://h.example"}
    del body[missing]
    assert_v4_error(api.post(CP, json=body), 400, 7001, path=["body", missing], says="field required")


def test_malformed_bodies(api: httpx.Client) -> None:
    assert_v4_error(api.post(CP, content=b"{"), 400, 7001, path=["body"])
    assert_v4_error(api.post(CP, json=[1]), 400, 7001, path=["body"])
    row = create(api)
    assert_v4_error(api.patch(f"{CP}/{row['id']}", json={}), 400, 7001, path=["body"])


def test_sdk_validation_error(cf, server: Server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(cloudflare.BadRequestError) as caught:
        cf.ai_gateway.custom_providers.create(account_id=server.account_id, name="n", slug="Not_OK",
                                              base_url="https://h.example")
    assert caught.value.status_code == 400 and "slug" in str(caught.value.body)


def test_duplicate_slug_is_409(cf, server: Server, api: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    first, second = create(api), create(api)
    with pytest.raises(cloudflare.ConflictError):
        cf.ai_gateway.custom_providers.create(account_id=server.account_id, name="again", slug=first["slug"],
                                              base_url="https://h.example")
    response = api.put(f"{CP}/{second['id']}", json={"slug": first["slug"]})
    assert_v4_error(response, 409, 7009, says=first["slug"])
    assert response.headers["x-should-retry"] == "false"


def test_unknown_id_is_404(api: httpx.Client) -> None:
    for method in ("GET", "DELETE"):
        assert_v4_error(api.request(method, f"{CP}/{'0' * 32}"), 404, 7002)
    assert_v4_error(api.patch(f"{CP}/nope", json={"name": "x"}), 404, 7002)


def test_headers_update_replace_and_clear(api: httpx.Client) -> None:
    row = create(api, headers='{"x-one": "first-value"}')
    changed = assert_ok(api.patch(f"{CP}/{row['id']}", json={"headers": '{"x-two": "second-value"}'}))
    assert orjson.loads(changed["headers"]) == {"x-two": "[REDACTED]"}
    cleared = assert_ok(api.patch(f"{CP}/{row['id']}", json={"headers": None}))
    assert cleared["headers"] is None
    assert assert_ok(api.patch(f"{CP}/{row['id']}", json={"headers": "{}"}))["headers"] is None


def _secret_of(api: httpx.Client, provider_id: str) -> dict[str, Any]:
    for store in assert_ok(api.get("/secrets_store/stores")):
        rows = assert_ok(api.get(f"/secrets_store/stores/{store['id']}/secrets",
                                 params={"search": provider_id}))
        if rows:
            return {**rows[0], "store_id": store["id"]}
    raise AssertionError("the headers secret was not found")


def test_headers_are_a_sealed_secret_that_cannot_be_deleted_under_the_provider(api: httpx.Client,
                                                                               server: Server) -> None:
    value = f"hdr-canary-{secrets.token_hex(16)}"
    row = create(api, headers=orjson.dumps({"x-key": value}).decode())
    secret = _secret_of(api, row["id"])
    assert orjson.loads(secret_value(server, secret["id"]) or "{}") == {"x-key": value}  # sealed ...
    needles = [value.encode()]  # ... and nowhere in plaintext
    assert files_containing(server.data_dir, needles) == [] and stored_containing(server, needles) == []
    assert secret["name"] == f"custom_provider_{row['id']}_headers" and secret["scopes"] == ["ai_gateway"]
    url = f"/secrets_store/stores/{secret['store_id']}/secrets/{secret['id']}"
    assert_v4_error(api.delete(url), 409, 7009)
    assert_ok(api.delete(f"{CP}/{row['id']}"))
    assert_v4_error(api.get(url), 404, 7002)  # deleted with the provider


def test_provider_configs_for_custom_providers(api: httpx.Client, gateway: str) -> None:
    row = create(api)
    provider = row["provider"]
    config = add_config(api, gateway, provider, secret="sk-custom-" + secrets.token_hex(8))
    assert config["provider_slug"] == provider
    unknown = {"provider_slug": f"custom-{new_slug('none')}", "alias": "a", "default_config": True,
               "secret": "k" * 20}
    assert_v4_error(api.post(f"/ai-gateway/gateways/{gateway}/provider_configs", json=unknown), 400, 7001,
                    path=["body", "provider_slug"])
    # refused while a config uses it: its stored keys would go nowhere (docs/api.md)
    assert_v4_error(api.delete(f"{CP}/{row['id']}"), 409, 7009, says=provider)
    assert_v4_error(api.patch(f"{CP}/{row['id']}", json={"slug": new_slug()}), 409, 7009, says=provider)
    disabled = assert_ok(api.patch(f"{CP}/{row['id']}", json={"name": "renamed", "enable": False}))
    assert disabled["enable"] is False
    assert_ok(api.delete(f"/ai-gateway/gateways/{gateway}/provider_configs/{config['id']}"))
    assert_ok(api.delete(f"{CP}/{row['id']}"))


def test_the_longest_slug_fits_every_provider_column(api: httpx.Client, gateway: str) -> None:
    """custom-{slug} is at most 64 characters: the provider slug columns (configs, logs) hold it."""
    row = create(api, slug=secrets.token_hex(4) + "a" * 49)
    assert len(row["provider"]) == 64
    assert add_config(api, gateway, row["provider"])["provider_slug"] == row["provider"]


def test_url_helper_knows_custom_providers(cf, server: Server, api: httpx.Client,  # type: ignore[no-untyped-def]
                                           gateway: str) -> None:
    row = create(api)
    url = cf.ai_gateway.urls.get(row["provider"], account_id=server.account_id, gateway_id=gateway)
    assert url.endswith(f"/v1/{server.account_id}/{gateway}/{row['provider']}")
    response = api.get(f"/ai-gateway/gateways/{gateway}/url/custom-{new_slug('none')}")
    assert_v4_error(response, 400, 7001, path=["path", "provider"])


def test_providers_are_per_account(server: Server, api: httpx.Client) -> None:
    """Another account's provider is not visible (the account path is checked: 9109 for others)."""
    row = create(api)
    other = api.get(f"{server.api}/accounts/{'f' * 32}/ai-gateway/custom-providers/{row['id']}")
    assert_v4_error(other, 403, 9109)
