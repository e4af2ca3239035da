"""Management changes take effect on the very next data-plane request (no restart, no delay)."""

from __future__ import annotations

import httpx

from tests.proxy.helpers import add_config, gateway_url, new_key, upstream_requests


def _key_seen(server, gateway, upstream) -> str:  # type: ignore[no-untyped-def]
    upstream.clear()
    response = httpx.get(gateway_url(server, gateway) + "/models")
    assert response.status_code == 200, response.text
    (seen,) = upstream_requests(upstream, "/openai/")
    return seen["headers"]["authorization"]


def test_rotation_applies_to_the_next_request(server, api, gateway, upstream) -> None:
    old, new = new_key(), new_key()
    config = add_config(api, gateway, "openai", secret=old)
    assert _key_seen(server, gateway, upstream) == f"Bearer {old}"
    response = api.put(f"/ai-gateway/gateways/{gateway}/provider_configs/{config['id']}",
                       json={"secret": new})
    assert response.status_code == 200, response.text
    assert _key_seen(server, gateway, upstream) == f"Bearer {new}"


def test_default_change_applies_to_the_next_request(server, api, gateway, upstream) -> None:
    first, second, third = new_key(), new_key(), new_key()
    add_config(api, gateway, "openai", alias="first", secret=first)
    other = add_config(api, gateway, "openai", alias="second", default=False, secret=second)
    assert _key_seen(server, gateway, upstream) == f"Bearer {first}"
    api.put(f"/ai-gateway/gateways/{gateway}/provider_configs/{other['id']}", json={"default_config": True})
    assert _key_seen(server, gateway, upstream) == f"Bearer {second}"
    add_config(api, gateway, "openai", alias="third", default=True,
               secret=third)  # a new default demotes "second"
    assert _key_seen(server, gateway, upstream) == f"Bearer {third}"


def test_alias_default_is_the_fallback(server, api, gateway, upstream) -> None:
    key = new_key()
    add_config(api, gateway, "openai", alias="default", default=False, secret=key)
    assert _key_seen(server, gateway, upstream) == f"Bearer {key}"


def test_delete_applies_to_the_next_request(server, api, gateway, upstream) -> None:
    config = add_config(api, gateway, "openai")
    assert httpx.get(gateway_url(server, gateway) + "/models").status_code == 200
    assert api.delete(f"/ai-gateway/gateways/{gateway}/provider_configs/{config['id']}").status_code == 200
    upstream.clear()
    response = httpx.get(gateway_url(server, gateway) + "/models")
    assert response.status_code == 401 and response.json()["internalCode"] == 2005
    assert upstream_requests(upstream) == []


def test_deleted_gateway_is_404_on_the_next_request(server, api, gateway, upstream) -> None:
    add_config(api, gateway, "openai")
    assert httpx.get(gateway_url(server, gateway) + "/models").status_code == 200
    assert api.delete(f"/ai-gateway/gateways/{gateway}").status_code == 200
    response = httpx.get(gateway_url(server, gateway) + "/models")
    assert response.status_code == 404 and response.json()["internalCode"] == 2001


def test_cli_token_is_picked_up_from_the_change_feed(server, api, gateway, upstream) -> None:
    """A token created by another process (the CLI) works once the poller has seen the change."""
    import json
    import time

    from tests.support.server import sluice_cli

    add_config(api, gateway, "openai")
    created = sluice_cli("tokens", "create", "--account", server.account_id, "--name", "cli-run",
                         "--permission", "AI Gateway Run", "--data-dir", str(server.data_dir), "--json",
                         env=server.env)
    token = json.loads(created.stdout)["value"]
    url = gateway_url(server, gateway) + "/models"
    deadline = time.monotonic() + 20  # the poll interval is 0.5 s; this only bounds a broken poller
    while True:
        status = httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200


def test_master_key_rotation_while_serving(tmp_path, mock_upstream) -> None:  # type: ignore[no-untyped-def]
    """`sluice master-key rotate` on a running server: stored keys keep working, and keys sealed
    after the rotation (under the new KEK) are usable by the data plane on the next request."""
    from sluice.providers.registry import CATALOG_SLUGS
    from tests.support.server import Server, sluice_cli, upstream_env

    srv = Server(tmp_path / "data", env=upstream_env(mock_upstream.url, list(CATALOG_SLUGS))).start()
    try:
        with httpx.Client(base_url=f"{srv.api}/accounts/{srv.account_id}", headers=srv.headers()) as api:
            api.post("/ai-gateway/gateways", json={"id": "rot", "authentication": False})
            before, after = new_key(), new_key()
            config = add_config(api, "rot", "openai", secret=before)
            assert _key_seen(srv, "rot", mock_upstream) == f"Bearer {before}"
            sluice_cli("master-key", "rotate", "--data-dir", str(srv.data_dir), env=srv.env)
            assert _key_seen(srv, "rot", mock_upstream) == f"Bearer {before}"
            response = api.put(f"/ai-gateway/gateways/rot/provider_configs/{config['id']}",
                               json={"secret": after})
            assert response.status_code == 200, response.text
            assert _key_seen(srv, "rot", mock_upstream) == f"Bearer {after}"
        srv.stop()
        srv.start()  # a fresh process decrypts everything under the new key file
        assert _key_seen(srv, "rot", mock_upstream) == f"Bearer {after}"
    finally:
        srv.stop()
