"""The web console in a real headless Chromium (Debian's, through Playwright) against a real server whose
providers point at the mock upstream (docs/console.md).

The journey test walks issue 19's list: sign in, create a gateway, add two keys for one provider, make
the second the default, send traffic, see activity, charts and one log, rotate, delete, sign out — while
a planted provider key must never show up in anything the browser saw. With SLUICE_CONSOLE_SCREENSHOTS=DIR
it also saves the screenshots docs/console.md shows (``make console-screenshots``).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from playwright.sync_api import Browser, Page, expect

from tests.conftest import unique_id
from tests.console.browser import Capture, chromium, off_loop, open_page
from tests.observe.support import exchange
from tests.observe.test_logs_api import write_logs
from tests.support.server import MockUpstream, Server, sluice_cli
from tests.support.stored import execute

SHOTS = os.environ.get("SLUICE_CONSOLE_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture()
def capture(browser: Browser) -> Iterator[Capture]:
    context, cap = open_page(browser)
    yield cap
    context.close()


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def sign_in(page: Page, server: Server, token: str) -> None:
    page.goto(f"{server.url}/console/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Gateways")).to_be_visible()


def field_error(page: Page, field: str) -> Any:
    return page.locator(f".field-error[data-field='{field}']:visible")


def key_row(page: Page, alias: str) -> Any:
    return page.locator(f"tr[data-alias='{alias}']")


def api_configs(server: Server, gateway: str) -> dict[str, dict[str, Any]]:
    url = f"{server.api}/accounts/{server.account_id}/ai-gateway/gateways/{gateway}/provider_configs"
    return {c["alias"]: c for c in httpx.get(url, headers=server.headers()).json()["result"]}


def canary() -> str:
    return f"sk-canary-{secrets.token_hex(16)}"


def test_journey(server: Server, mock_upstream: MockUpstream, capture: Capture) -> None:
    page = capture.page
    planted = [canary(), canary(), canary()]
    gateway = unique_id("console")

    # Sign in: the header shows the token and its permission groups.
    page.goto(f"{server.url}/console/")
    shot(page, "sign-in")
    sign_in(page, server, server.token)
    expect(page.locator("#who")).to_contain_text("Secrets Store Write")
    capture.snapshot_storage()

    # Create a gateway; the API's 400 shows next to the id field first.
    page.get_by_label("Gateway id").fill("Not a valid id!")
    page.get_by_role("button", name="Create gateway").click()
    expect(field_error(page, "id")).to_contain_text("id")
    page.get_by_label("Gateway id").fill(gateway)
    page.get_by_role("button", name="Create gateway").click()
    expect(page.get_by_role("heading", name="Provider keys")).to_be_visible()

    # Two keys for one provider; the secret field is empty again after each submit.
    add = page.locator("form.add-key")
    add.get_by_label("Alias").fill("first")
    add.get_by_label("Provider API key").fill(planted[0])
    add.get_by_label("Default key for this provider").check()
    add.get_by_role("button", name="Add key").click()
    expect(key_row(page, "first")).to_contain_text("default")
    expect(page.locator("form.add-key").get_by_label("Provider API key")).to_have_value("")
    add = page.locator("form.add-key")
    add.get_by_label("Alias").fill("bad alias!")
    add.get_by_label("Provider API key").fill(planted[1])
    add.get_by_role("button", name="Add key").click()
    expect(field_error(page, "alias")).to_contain_text("alias")
    expect(add.get_by_label("Provider API key")).to_have_value("")  # cleared after a refused submit too
    add.get_by_label("Alias").fill("second")
    add.get_by_label("Provider API key").fill(planted[1])
    add.get_by_role("button", name="Add key").click()
    expect(key_row(page, "second")).to_be_visible()
    stored = api_configs(server, gateway)
    expect(key_row(page, "first").locator(".preview")).to_have_text(stored["first"]["secret_preview"])
    expect(key_row(page, "second").locator(".preview")).to_have_text(stored["second"]["secret_preview"])
    expect(key_row(page, "second").locator(".badge.default")).to_have_count(0)

    # Make the second the default: the badge moves.
    page.get_by_role("button", name="Make openai second the default").click()
    expect(key_row(page, "second").locator(".badge.default")).to_have_count(1)
    expect(key_row(page, "first").locator(".badge.default")).to_have_count(0)
    expect(key_row(page, "second").locator(".last-used")).to_have_text("never")
    expect(page.locator(".badge.stale")).to_have_count(0)
    capture.snapshot_storage()

    # Traffic through the gateway (the default key, so "second"), one request failing upstream.
    client = OpenAI(base_url=f"{server.url}/v1/{server.account_id}/{gateway}/openai", api_key=server.token,
                    max_retries=0)
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "hello console"}])
    with pytest.raises(Exception):  # noqa: B017 — the mock's 500, whatever the SDK calls it
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "fail"}],
                                       extra_headers={"x-mock-fault": "status:500"})
    assert mock_upstream.requests()[-1]["headers"]["authorization"] == f"Bearer {planted[1]}"

    # Last used and counts change; the page loads them in one API round trip.
    before = len(capture.api_calls)
    page.context.new_cdp_session(page).send("Network.clearBrowserCache")  # a first visit's load
    page.reload()
    expect(key_row(page, "second").locator(".requests")).to_have_text("3")
    assert len(capture.api_calls) - before == 2, capture.api_calls[before:]  # sign-in check + the page
    assert sum("/provider_configs" in call for call in capture.api_calls[before:]) == 1
    expect(key_row(page, "second").locator(".errors")).to_have_text("1")
    page.get_by_role("link", name="Settings").click()
    expect(page.locator("form.gateway-settings")).to_be_visible()
    before = len(capture.api_calls)
    page.get_by_role("link", name="Provider keys").click()  # within the app: exactly one request
    expect(key_row(page, "second").locator(".requests")).to_have_text("3")
    called = [call.split("?")[0].rsplit("/", 1)[-1] for call in capture.api_calls[before:]]
    assert called == ["provider_configs"]
    expect(key_row(page, "second").locator(".last-used")).not_to_have_text("never")
    expect(key_row(page, "first").locator(".requests")).to_have_text("0")
    # What this page load took over the wire, cache empty: every file and the API answers, compressed.
    loaded = page.evaluate("""() => performance.getEntriesByType('navigation').concat(
        performance.getEntriesByType('resource')).reduce((n, e) => n + e.encodedBodySize, 0)""")
    print(f"provider-keys page load: {loaded} bytes")  # recorded in docs/console.md
    assert 0 < loaded <= 200 * 1024
    shot(page, "provider-keys")

    # The chart shows the requests (logs are written in the background: the page is reloaded until
    # they are there), for the gateway and for the key.
    page.get_by_role("link", name="Charts").click()
    for _ in range(50):
        if page.locator("figure[data-series='requests'] .total").get_attribute("data-total") == "3":
            break
        page.wait_for_timeout(200)
        page.reload()
    expect(page.locator("figure[data-series='requests'] .total")).to_have_attribute("data-total", "3")
    expect(page.locator("figure[data-series='errors'] .total")).to_have_attribute("data-total", "1")
    expect(page.locator("figure canvas")).to_have_count(4)
    shot(page, "charts")
    page.get_by_label("Range").select_option("1h")
    expect(page.locator("figure[data-series='requests'] canvas")).to_be_visible()
    expect(page.locator("figure[data-series='requests'] .total")).to_have_attribute("data-total", "3")
    assert "range=1h" in page.url
    page.get_by_label("Key").select_option(label="openai / first")
    expect(page.get_by_role("heading", name="Charts · openai / first")).to_be_visible()
    expect(page.locator("figure[data-series='requests'] .total")).to_have_attribute("data-total", "0")

    # Logs: filter, then open one and see its request and response.
    page.get_by_role("link", name="Logs").click()
    expect(page.locator("tr[data-log]")).to_have_count(3)
    page.get_by_label("Status").select_option("false")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("tr[data-log]")).to_have_count(1)
    page.get_by_label("Status").select_option("true")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("tr[data-log]")).to_have_count(2)
    shot(page, "logs")
    page.locator("tr[data-log] a").first.click()
    expect(page.locator("pre.request")).to_contain_text("hello console")
    expect(page.locator("pre.response")).to_contain_text("Hello from the Sluice mock upstream.")
    shot(page, "log")

    # Rotate the second key: the preview changes and the gateway sends the new key upstream.
    page.get_by_role("link", name="Provider keys").click()
    page.get_by_role("button", name="Rotate openai second").click()
    page.get_by_role("dialog").get_by_label("New key").fill(planted[2])
    page.get_by_role("dialog").get_by_role("button", name="Rotate key").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    rotated = api_configs(server, gateway)["second"]["secret_preview"]
    assert rotated != stored["second"]["secret_preview"]
    expect(key_row(page, "second").locator(".preview")).to_have_text(rotated)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "again"}])
    assert mock_upstream.requests()[-1]["headers"]["authorization"] == f"Bearer {planted[2]}"

    # Delete the first key, after confirming.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete openai first").click()
    expect(key_row(page, "first")).to_have_count(0)
    assert set(api_configs(server, gateway)) == {"second"}
    capture.snapshot_storage()

    # Delete the gateway, after confirming.
    page.get_by_role("link", name="Gateways").first.click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete gateway {gateway}").click()
    expect(page.locator(f"tr[data-gateway='{gateway}']")).to_have_count(0)
    gone = httpx.get(f"{server.api}/accounts/{server.account_id}/ai-gateway/gateways/{gateway}",
                     headers=server.headers())
    assert gone.status_code == 404

    # Sign out: the credentials leave session storage.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    capture.snapshot_storage()
    assert capture.storage[-1] == "[[],[]]"

    # Canary: no planted key in any response (pages, scripts, API), console, error, storage or the page.
    seen = capture.everything()
    assert len(capture.bodies()) > 20
    for key in planted:
        assert key not in seen
    assert not capture.errors, capture.errors
    refused = [m for m in capture.console if "Content Security Policy" in m or "Refused" in m]
    assert not refused, capture.console


def test_read_only_token_sees_no_write_controls_and_the_api_refuses_writes(
        server: Server, api: httpx.Client, gateway: str, capture: Capture) -> None:
    api.post(f"/ai-gateway/gateways/{gateway}/provider_configs",
             json={"alias": "ro", "provider_slug": "openai", "secret": canary(), "default_config": True})
    # Created long ago and never used: stale (unused for 90 days).
    off_loop(execute, server, "UPDATE provider_configs SET created_at = :old WHERE gateway_id = :g",
             old="2020-01-01T00:00:00.000Z", g=gateway)
    reader = api.post("/tokens", json={"name": "console-reader",
                                       "permissions": ["AI Gateway Read", "Secrets Store Read"]}).json()
    page = capture.page
    sign_in(page, server, reader["result"]["value"])
    expect(page.locator("#who")).to_contain_text("console-reader")
    expect(page.locator("form")).to_have_count(0)  # no create form
    expect(page.get_by_role("link", name="Tokens")).to_be_hidden()
    page.get_by_role("link", name=gateway).click()
    expect(key_row(page, "ro").locator(".badge.stale")).to_be_visible()
    expect(page.locator("main button")).to_have_count(0)  # no make-default, rotate, limit, delete
    expect(page.locator("form")).to_have_count(0)  # no add-key form
    page.get_by_role("link", name="Settings").click()
    expect(page.locator("dl.settings")).to_be_visible()
    expect(page.locator("main form")).to_have_count(0)

    # A write attempted anyway, with the session's own credentials, is refused by the API.
    status = page.evaluate("""async (gateway) => {
        const creds = JSON.parse(sessionStorage.getItem('sluice.console.credentials'));
        const who = await (await fetch('/client/v4/sluice/identity',
            {headers: {authorization: 'Bearer ' + creds.token}})).json();
        const path = `/client/v4/accounts/${who.result.accounts[0]}/ai-gateway/gateways/${gateway}`;
        const headers = {authorization: 'Bearer ' + creds.token};
        const response = await fetch(path, {method: 'DELETE', headers});
        return response.status;
    }""", gateway)
    assert status == 403
    assert api.get(f"/ai-gateway/gateways/{gateway}").status_code == 200


def test_every_form_shows_the_api_error_next_to_its_field(server: Server, api: httpx.Client, gateway: str,
                                                          capture: Capture) -> None:
    api.post(f"/ai-gateway/gateways/{gateway}/provider_configs",
             json={"alias": "k", "provider_slug": "openai", "secret": canary(), "default_config": True})
    page = capture.page
    page.goto(f"{server.url}/console/")
    page.get_by_label("API token").fill("sluice_" + "x" * 40)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(field_error(page, "token")).to_contain_text("not valid")
    sign_in(page, server, server.token)

    page.goto(f"{server.url}/console/#/gateways/{gateway}/settings")
    page.get_by_label("Cache TTL").fill("-5")
    page.get_by_role("button", name="Save settings").click()
    expect(field_error(page, "cache_ttl")).to_contain_text("cache_ttl")
    page.get_by_label("Cache TTL").fill("120")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    assert api.get(f"/ai-gateway/gateways/{gateway}").json()["result"]["cache_ttl"] == 120

    page.get_by_role("link", name="Provider keys").click()
    page.get_by_role("button", name="Change the limit of openai k").click()
    page.get_by_role("dialog").get_by_label("Period (seconds)").fill("0")
    page.get_by_role("dialog").get_by_role("button", name="Save limit").click()
    expect(page.get_by_role("dialog").locator(".field-error[data-field='rate_limit_period']")).to_contain_text(
        "rate_limit_period")
    page.get_by_role("dialog").get_by_label("Rate limit").fill("7")
    page.get_by_role("dialog").get_by_label("Period (seconds)").fill("30")
    page.get_by_role("dialog").get_by_role("button", name="Save limit").click()
    expect(key_row(page, "k").locator(".limit")).to_have_text("7 / 30 s")

    page.locator("form.add-key").get_by_label("Provider", exact=True).fill("no-such-provider")
    page.locator("form.add-key").get_by_label("Alias").fill("x")
    page.locator("form.add-key").get_by_label("Provider API key").fill(canary())
    page.get_by_role("button", name="Add key").click()
    expect(field_error(page, "provider_slug")).to_contain_text("provider_slug")

    page.get_by_role("link", name="Tokens").click()
    page.get_by_label("AI Gateway Read").check()
    page.get_by_role("button", name="Create token").click()
    expect(field_error(page, "name")).to_be_visible()


def test_tokens_create_shows_the_value_once_and_revoke(server: Server, capture: Capture) -> None:
    page = capture.page
    sign_in(page, server, server.token)
    page.get_by_role("link", name="Tokens").click()
    name = unique_id("tok")
    page.get_by_label("Name").fill(name)
    page.get_by_label("AI Gateway Read").check()
    page.get_by_label("Expires (optional)").fill("2030-01-01T10:00")
    page.get_by_role("button", name="Create token").click()
    value = page.locator(".token-value").inner_text()
    assert value.startswith("sluice_")
    who = httpx.get(f"{server.api}/sluice/identity", headers=server.headers(value)).json()["result"]
    assert who["permissions"] == ["AI Gateway Read"]
    assert who["token"]["expires_on"].startswith("2030-01-0")  # local time in the browser, UTC stored
    page.get_by_role("button", name="Done").click()
    expect(page.locator(f"tr[data-token='{name}']")).to_be_visible()
    shot(page, "tokens")
    assert value not in page.content()  # shown once
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Revoke token {name}").click()
    expect(page.locator(f"tr[data-token='{name}']")).to_have_count(0)
    assert httpx.get(f"{server.api}/sluice/identity", headers=server.headers(value)).status_code == 401


def second_account_for_the_user(own: Server) -> str:
    """A second account the init user's global API key reaches (made with the CLI, joined in SQL)."""
    data_dir = ["--data-dir", str(own.data_dir), "--json"]
    account = json.loads(sluice_cli("accounts", "create", "tenant-b", *data_dir, env=own.env).stdout)["id"]
    _, users = execute(own, "SELECT id FROM users WHERE email = :email", email=own.creds["email"])
    execute(own, "INSERT INTO account_members (account_id, user_id) VALUES (:a, :u)",
            a=account, u=users[0][0])
    return account


def test_global_key_picks_an_account_and_a_lost_server_shows_a_banner(tmp_path: Path,
                                                                       capture: Capture) -> None:
    own = off_loop(lambda: Server(tmp_path / "data").start())  # on PostgreSQL it makes a database
    try:
        second = off_loop(second_account_for_the_user, own)
        legacy = {"X-Auth-Email": own.creds["email"], "X-Auth-Key": own.creds["api_key"]}
        httpx.post(f"{own.api}/accounts/{second}/ai-gateway/gateways", headers=legacy,
                   json={"id": "in-tenant-b"}).raise_for_status()
        page = capture.page
        page.goto(f"{own.url}/console/")
        page.get_by_label("Email").fill(own.creds["email"])
        page.get_by_label("Global API key").fill(own.creds["api_key"])
        page.get_by_role("button", name="Sign in with key").click()
        expect(page.locator("#who")).to_contain_text("Global API key")
        expect(page.get_by_role("heading", name="Gateways")).to_be_visible()
        expect(page.get_by_role("link", name="in-tenant-b")).to_have_count(0)
        page.get_by_label("Account").select_option(second)
        expect(page.get_by_role("link", name="in-tenant-b")).to_be_visible()
        page.reload()  # the choice stays for the tab
        expect(page.get_by_role("link", name="in-tenant-b")).to_be_visible()
        expect(page.locator("#banner")).to_be_hidden()
    finally:
        own.stop()
    page.get_by_role("link", name="Tokens").click()
    expect(page.locator("#banner")).to_be_visible()
    expect(page.locator("#banner")).to_contain_text("Lost connection")
    capture.snapshot_storage()
    outside_storage = capture.everything().replace(capture.storage[-1], "")
    assert own.creds["api_key"] not in outside_storage  # the key is in session storage only


def test_logs_filters_and_paging(server: Server, gateway: str, capture: Capture) -> None:
    account, t0 = server.account_id, 1_767_225_600  # 2026-01-01T00:00:00Z
    logs = [
        *[exchange(gateway, account_id=account, started_at=t0 + i, model="gpt-4o") for i in range(22)],
        exchange(gateway, account_id=account, started_at=t0 + 86_400, provider="anthropic", model="claude-x",
                 path="v1/messages"),
        exchange(gateway, account_id=account, started_at=t0 + 50, cached=True, model="gpt-4o"),
    ]
    off_loop(write_logs, server, logs)
    page = capture.page
    sign_in(page, server, server.token)
    page.goto(f"{server.url}/console/#/gateways/{gateway}/logs")
    expect(page.locator("tr[data-log]")).to_have_count(20)
    expect(page.locator(".pager")).to_contain_text("Page 1 of 2 · 24 logs")
    page.get_by_role("link", name="Next").click()
    expect(page.locator("tr[data-log]")).to_have_count(4)
    page.get_by_role("link", name="Previous").click()
    expect(page.locator("tr[data-log]")).to_have_count(20)

    page.get_by_label("Provider").fill("anthropic")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("tr[data-log]")).to_have_count(1)
    expect(page.locator("tr[data-log]")).to_contain_text("claude-x")
    page.get_by_label("Provider").fill("")
    page.get_by_label("Cached").select_option("true")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("tr[data-log]")).to_have_count(1)
    page.get_by_label("Cached").select_option("")
    page.get_by_label("Model").fill("gpt-4o")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(".pager")).to_contain_text("23 logs")
    # The date range: the day after holds the one anthropic log (datetime-local is local time).
    page.get_by_label("Model").fill("")
    page.evaluate("""() => {
        const local = (iso) => {
            const d = new Date(iso);
            d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
            return d.toISOString().slice(0, 16);
        };
        document.getElementById('log-start_date').value = local('2026-01-01T12:00:00Z');
        document.getElementById('log-end_date').value = local('2026-01-03T00:00:00Z');
    }""")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("tr[data-log]")).to_have_count(1)
    expect(page.locator("tr[data-log]")).to_contain_text("anthropic")


def test_key_failover_setting_and_a_refused_key_shown(server: Server, api: httpx.Client, gateway: str,
                                                       capture: Capture) -> None:
    refused, spare = f"sk-refusedkey-{secrets.token_hex(8)}", canary()
    for alias, secret, default in (("main", refused, True), ("spare", spare, False)):
        body = {"alias": alias, "provider_slug": "openai", "secret": secret, "default_config": default}
        api.post(f"/ai-gateway/gateways/{gateway}/provider_configs", json=body).raise_for_status()
    page = capture.page
    sign_in(page, server, server.token)
    page.goto(f"{server.url}/console/#/gateways/{gateway}/settings")
    page.get_by_label("Fail over to the next stored key").check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    assert api.get(f"/ai-gateway/gateways/{gateway}").json()["result"]["key_failover"] is True

    answer = httpx.post(f"{server.url}/v1/{server.account_id}/{gateway}/openai/chat/completions",
                        headers={"x-mock-fault": "key-status:refusedkey=401"},
                        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 200, answer.text  # served by the spare key
    page.get_by_role("link", name="Provider keys").click()
    expect(key_row(page, "main").locator(".key-state")).to_contain_text("failed")
    expect(key_row(page, "spare").locator(".key-state")).to_have_count(0)
    expect(key_row(page, "spare").locator(".requests")).to_have_text("1")
    seen = capture.everything()
    assert refused not in seen and spare not in seen
