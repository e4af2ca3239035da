"""Issue 15 items 9–10: a token grants only what its creator holds; condition.request_ip, not_before,
expires_on and resources are enforced or refused; update, roll and permission groups via the SDK."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cloudflare import Cloudflare, PermissionDeniedError

from sluice.identity.permissions import ALL_GROUPS, GROUP_IDS
from tests.control.assertions import assert_ok, assert_v4_error
from tests.support.server import Server

TOKENS_WRITE = "Account API Tokens Write"
READ, WRITE = "AI Gateway Read", "AI Gateway Write"


def make(api: httpx.Client, permissions: list[str], **fields: Any) -> dict[str, Any]:
    return assert_ok(api.post("/tokens", json={"name": "t", "permissions": permissions, **fields}))


def sdk(server: Server, token: str) -> Cloudflare:
    return Cloudflare(api_token=token, base_url=server.api, max_retries=0)


def policy(*groups: str, **resources: str) -> dict[str, Any]:
    return {"effect": "allow", "permission_groups": [{"id": GROUP_IDS[g]} for g in groups],
            "resources": resources}


def by_name(*groups: str, **resources: str) -> dict[str, Any]:
    """A policy naming its groups (the form Sluice has always taken; ``policy`` uses Cloudflare's ids)."""
    return {"effect": "allow", "permission_groups": [{"name": g} for g in groups], "resources": resources}


def gateways(server: Server, token: str) -> httpx.Response:
    return httpx.get(f"{server.api}/accounts/{server.account_id}/ai-gateway/gateways",
                     headers=server.headers(token))


# -- item 9: no escalation through Account API Tokens Write ---------------------------------------

def test_tokens_write_only_cannot_mint_an_admin_token(api: httpx.Client, server: Server) -> None:
    minter = make(api, [TOKENS_WRITE])["value"]
    before = assert_ok(api.get("/tokens", params={"per_page": 50}))
    with sdk(server, minter) as cf, pytest.raises(PermissionDeniedError) as caught:
        cf.accounts.tokens.create(account_id=server.account_id, name="escalate",
                                  policies=[by_name(*ALL_GROUPS)])  # type: ignore[list-item]
    message = caught.value.body["errors"][0]["message"]  # type: ignore[index]
    assert caught.value.status_code == 403
    assert "'AI Gateway Write'" in message and "'Secrets Store Write'" in message
    assert assert_ok(api.get("/tokens", params={"per_page": 50})) == before  # nothing was made
    # the Sluice form is held to the same rule, and so is a single missing group
    response = httpx.post(f"{server.api}/accounts/{server.account_id}/tokens", headers=server.headers(minter),
                          json={"name": "x", "permissions": [TOKENS_WRITE, WRITE]})
    assert_v4_error(response, 403, 10000)
    assert "'AI Gateway Write'" in response.json()["errors"][0]["message"]
    # what it holds it may grant
    assert assert_ok(httpx.post(f"{server.api}/accounts/{server.account_id}/tokens",
                                headers=server.headers(minter),
                                json={"name": "ok", "permissions": [TOKENS_WRITE]}))["value"]


def test_tokens_write_only_cannot_roll_widen_or_delete_a_stronger_token(api: httpx.Client,
                                                                       server: Server) -> None:
    minter = make(api, [TOKENS_WRITE])["value"]
    admin = make(api, list(ALL_GROUPS))
    weak = make(api, [TOKENS_WRITE])
    base = f"{server.api}/accounts/{server.account_id}/tokens"
    headers = server.headers(minter)
    assert_v4_error(httpx.delete(f"{base}/{admin['id']}", headers=headers), 403, 10000)
    # rolling would hand over the admin token's new value
    assert_v4_error(httpx.put(f"{base}/{admin['id']}/value", headers=headers), 403, 10000)
    assert_v4_error(httpx.put(f"{base}/{admin['id']}", headers=headers,
                              json={"name": "mine", "policies": [policy(TOKENS_WRITE)]}), 403, 10000)
    assert_v4_error(httpx.put(f"{base}/{weak['id']}", headers=headers,
                              json={"name": "wider", "policies": [policy(TOKENS_WRITE, WRITE)]}), 403, 10000)
    assert assert_ok(gateways(server, admin["value"])) is not None  # the admin token still works
    assert assert_ok(api.get(f"/tokens/{weak['id']}"))["permissions"] == [TOKENS_WRITE]


# -- item 10: restrictions enforced on the management API -------------------------------------------

def test_request_ip_condition_is_enforced(api: httpx.Client, server: Server) -> None:
    elsewhere = make(api, [READ], condition={"request_ip": {"in": ["10.0.0.0/8", "2001:db8::/32"]}})
    response = gateways(server, elsewhere["value"])
    assert_v4_error(response, 403, 9109)
    assert "127.0.0.1" in response.json()["errors"][0]["message"]
    assert elsewhere["condition"] == {"request_ip": {"in": ["10.0.0.0/8", "2001:db8::/32"], "not_in": []}}
    assert_v4_error(httpx.get(f"{server.api}/user/tokens/verify", headers=server.headers(elsewhere["value"])),
                    403, 9109)
    here = make(api, [READ], condition={"request_ip": {"in": ["127.0.0.0/8"]}})
    assert_ok(gateways(server, here["value"]))
    excluded = make(api, [READ], condition={"request_ip": {"in": ["127.0.0.0/8"], "not_in": ["127.0.0.1"]}})
    assert_v4_error(gateways(server, excluded["value"]), 403, 9109)


def test_not_before_in_the_future_is_not_yet_valid(api: httpx.Client, server: Server) -> None:
    later = make(api, [READ], not_before="2030-01-01T00:00:00Z", expires_on="2031-01-01T00:00:00Z")
    assert_v4_error(gateways(server, later["value"]), 401, 10000)
    assert later["not_before"] == "2030-01-01T00:00:00.000Z"
    started = make(api, [READ], not_before="2020-01-01T00:00:00Z")
    assert_ok(gateways(server, started["value"]))


@pytest.mark.parametrize(("fields", "path", "words"), [
    ({"expires_on": "2020-01-01T00:00:00Z"}, ["body", "expires_on"], "future"),
    ({"not_before": "2031-01-01T00:00:00Z", "expires_on": "2030-01-01T00:00:00Z"}, ["body", "not_before"],
     "before expires_on"),
    ({"not_before": "soon"}, ["body", "not_before"], "RFC 3339"),
    ({"condition": {"request_ip": {"in": ["10.0.0.0/33"]}}}, ["body", "condition", "request_ip", "in"],
     "CIDR"),
    ({"condition": {"request_ip": {"not_in": ["nope"]}}}, ["body", "condition", "request_ip", "not_in"],
     "CIDR"),
    ({"condition": {"request_ip": {"allow": ["10.0.0.0/8"]}}}, ["body", "condition", "request_ip", "allow"],
     "unknown field"),
    ({"condition": {"request_asn": [1]}}, ["body", "condition", "request_asn"], "unknown field"),
    ({"policies": [by_name(READ, **{"com.cloudflare.api.account.0123456789abcdef0123456789abcdef": "*"})]},
     ["body", "policies", 0, "resources"], "not this account"),
    ({"policies": [by_name(READ, **{"com.cloudflare.api.account.zone.*": "*"})]},
     ["body", "policies", 0, "resources"], "not this account"),
    ({"policies": [{**by_name(READ), "effect": "deny"}]}, ["body", "policies", 0, "effect"], "deny"),
    ({"policies": [{"permission_groups": [{"id": "0" * 32}]}]},
     ["body", "policies", 0, "permission_groups", 0], "unknown permission group"),
    ({"policies": [{"permission_groups": [{"id": GROUP_IDS[READ], "name": WRITE}]}]},
     ["body", "policies", 0, "permission_groups", 0], "different"),
], ids=["expired", "window", "bad-not-before", "bad-cidr", "bad-not-in", "unknown-ip-field",
        "unknown-condition", "other-account", "zone-resource", "deny", "unknown-group-id",
        "id-name-mismatch"])
def test_restrictions_not_enforced_are_refused(api: httpx.Client, fields: dict[str, Any], path: list[Any],
                                               words: str) -> None:
    before = api.get("/tokens", params={"per_page": 50}).json()["result_info"]["total_count"]
    body = {"name": "x", **({"permissions": [READ]} if "policies" not in fields else {}), **fields}
    response = api.post("/tokens", json=body)
    assert_v4_error(response, 400, 7001, path=path)
    assert words in response.json()["errors"][0]["message"]
    assert api.get("/tokens", params={"per_page": 50}).json()["result_info"]["total_count"] == before


# -- the SDK's accounts.tokens calls -------------------------------------------------------------

def test_sdk_token_calls(cf: Cloudflare, server: Server) -> None:
    account = server.account_id
    groups = cf.accounts.tokens.permission_groups.list(account_id=account)
    by_name = {g.name: g for g in groups}
    assert set(by_name) == set(ALL_GROUPS)
    assert by_name[READ].id == "4dc8917b4b40457d88d3035d5dadb054" and by_name[READ].is_selectable
    assert [g.name for g in cf.accounts.tokens.permission_groups.get(account_id=account, name=READ)] == [READ]
    user_scope = cf.accounts.tokens.permission_groups.list(account_id=account,
                                                           scope="com.cloudflare.api.user")
    assert list(user_scope) == []

    created = cf.accounts.tokens.create(
        account_id=account, name="sdk", policies=[policy(READ)],  # type: ignore[list-item]
        condition={"request_ip": {"in": ["127.0.0.1/32"], "not_in": ["10.0.0.0/8"]}},
        expires_on="2999-01-01T00:00:00Z")
    assert created is not None and created.value and created.id
    assert created.policies[0].permission_groups[0].id == GROUP_IDS[READ]  # type: ignore[index]
    resources = created.policies[0].resources  # type: ignore[index]
    assert resources == {f"com.cloudflare.api.account.{account}": "*"}
    assert created.condition.request_ip.in_ == ["127.0.0.1/32"]  # type: ignore[union-attr]
    assert_ok(gateways(server, created.value))

    got = cf.accounts.tokens.get(created.id, account_id=account)
    assert got is not None and got.name == "sdk" and got.status == "active"
    assert created.id in [t.id for t in cf.accounts.tokens.list(account_id=account, per_page=50)]

    updated = cf.accounts.tokens.update(
        created.id, account_id=account, name="sdk-2", status="disabled",
        policies=[policy(READ, WRITE)])  # type: ignore[list-item]
    assert updated is not None and updated.name == "sdk-2" and updated.status == "disabled"
    assert updated.condition is not None and updated.condition.request_ip is None  # PUT replaces
    assert_v4_error(gateways(server, created.value), 401, 10000)  # disabled
    cf.accounts.tokens.update(created.id, account_id=account, name="sdk-2",
                              policies=[policy(READ)], status="active")  # type: ignore[list-item]
    assert_ok(gateways(server, created.value))

    rolled = cf.accounts.tokens.value.update(created.id, account_id=account)
    assert isinstance(rolled, str) and rolled.startswith("sluice_") and rolled != created.value
    assert_v4_error(gateways(server, created.value), 401, 10000)  # the old value stops at once
    assert_ok(gateways(server, rolled))

    deleted = cf.accounts.tokens.delete(created.id, account_id=account)
    assert deleted is not None and deleted.id == created.id
    assert_v4_error(gateways(server, rolled), 401, 10000)


def test_roll_and_update_unhappy_paths(api: httpx.Client) -> None:
    token = make(api, [READ])
    assert_v4_error(api.put(f"/tokens/{'0' * 32}/value"), 404, 7002)
    assert_v4_error(api.put(f"/tokens/{token['id']}/value", json={"value": "sluice_mine"}), 400, 7001,
                    path=["body", "value"])
    assert_v4_error(api.put(f"/tokens/{token['id']}/value", content=b"[1]"), 400, 7001, path=["body"])
    assert_ok(api.put(f"/tokens/{token['id']}/value", json={}))
    assert_v4_error(api.put(f"/tokens/{'0' * 32}", json={"name": "x", "permissions": [READ]}), 404, 7002)
    assert_v4_error(api.put(f"/tokens/{token['id']}", json={"name": "x", "permissions": [READ],
                                                            "status": "expired"}), 400, 7001,
                    path=["body", "status"])
    assert_v4_error(api.put(f"/tokens/{token['id']}", json={"permissions": [READ]}), 400, 7001,
                    path=["body", "name"])
    assert_v4_error(api.put(f"/tokens/{token['id']}", json={"name": "x", "permissions": [READ],
                                                            "expires_on": "2001-01-01T00:00:00Z"}), 400, 7001,
                    path=["body", "expires_on"])
    assert assert_ok(api.get(f"/tokens/{token['id']}"))["name"] == "t"  # nothing changed


def test_expiry_checks_with_an_injected_now() -> None:
    from sluice.control.schemas import TokenCreate
    from sluice.control.tokens import window
    from sluice.errors import ValidationError

    body = TokenCreate.model_validate({"name": "x", "expires_on": "2026-01-01T01:00:00+01:00"})
    assert window(body, "2025-12-31T23:59:59.999Z") == (None, "2026-01-01T00:00:00.000Z")
    with pytest.raises(ValidationError):
        window(body, "2026-01-01T00:00:00.000Z")
    # a PUT that repeats a token's (now past) expiry is not a new expiry in the past
    assert window(body, "2027-01-01T00:00:00.000Z", current_expiry="2026-01-01T00:00:00.000Z")[1] is not None


def test_a_token_read_back_can_be_put_back(api: httpx.Client) -> None:
    token = make(api, [READ, WRITE], condition={"request_ip": {"not_in": ["192.0.2.0/24"]}},
                 expires_on="2999-01-01T00:00:00Z")
    got = assert_ok(api.get(f"/tokens/{token['id']}"))
    body = {k: got[k] for k in ("name", "policies", "condition", "expires_on", "not_before", "status")}
    put = assert_ok(api.put(f"/tokens/{token['id']}", json=body))
    assert {k: put[k] for k in ("permissions", "condition", "expires_on", "status")} == \
        {k: got[k] for k in ("permissions", "condition", "expires_on", "status")}


def test_management_check_with_an_injected_clock_and_peer() -> None:
    from sluice.control.auth import check_token
    from sluice.errors import AccountForbidden, AuthenticationError

    token = {"status": "active", "not_before": "2030-01-01T00:00:00.000Z",
             "expires_on": "2030-01-02T00:00:00.000Z",
             "condition": '{"request_ip": {"in": ["2001:db8::/32"], "not_in": []}}'}
    start = 1_893_456_000.0  # 2030-01-01T00:00:00Z
    check_token(token, start, "2001:db8::7")
    for moment in (start - 0.001, start + 86_400):
        with pytest.raises(AuthenticationError):
            check_token(token, moment, "2001:db8::7")
    with pytest.raises(AccountForbidden) as caught:
        check_token(token, start, "127.0.0.1")
    assert caught.value.code == 9109
    with pytest.raises(AuthenticationError):
        check_token({**token, "status": "disabled"}, start, "2001:db8::7")


def test_our_permissions_form_takes_cloudflare_ids_too(api: httpx.Client) -> None:
    created = make(api, [GROUP_IDS["AI Gateway Run"], READ])
    assert created["permissions"] == ["AI Gateway Read", "AI Gateway Run"]
    assert {g["id"] for g in created["policies"][0]["permission_groups"]} == {
        GROUP_IDS["AI Gateway Run"], GROUP_IDS[READ]}
