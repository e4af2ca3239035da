"""The console's API extensions (docs/api.md, "Sluice extensions"): time series and identity."""

from __future__ import annotations

import httpx
import pytest

from tests.control.assertions import assert_v4_error
from tests.observe.support import exchange
from tests.observe.test_logs_api import write_logs
from tests.support.server import Server

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def test_buckets_count_requests_errors_tokens_and_cost(server: Server, gateway: str,
                                                       api: httpx.Client) -> None:
    account = server.account_id
    write_logs(server, [
        exchange(gateway, account_id=account, started_at=T0 + 5, tokens=(10, 5), alias="a", model="gpt-4o"),
        exchange(gateway, account_id=account, started_at=T0 + 30, tokens=(1, 1), alias="b",
                 success=False, status_code=500),
        exchange(gateway, account_id=account, started_at=T0 + 125, tokens=(100, 0), alias="a",
                 model="gpt-4o"),
    ])
    window = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:03:00Z"}
    body = api.get(f"/ai-gateway/gateways/{gateway}/timeseries", params=window).json()
    assert body["success"], body
    result = body["result"]
    assert result["interval"] == "minute"  # the finest interval within the point cap
    points = result["points"]
    assert [p["t"] for p in points] == [f"2026-01-01T00:0{m}:00.000Z" for m in range(4)]
    assert [(p["requests"], p["errors"], p["tokens"]) for p in points] == [(2, 1, 17), (0, 0, 0), (1, 0, 100),
                                                                          (0, 0, 0)]
    logs = api.get(f"/ai-gateway/gateways/{gateway}/logs", params={"per_page": 50}).json()["result"]
    first_minute = [log["cost"] or 0 for log in logs if log["created_at"] < "2026-01-01T00:01"]
    assert len(first_minute) == 2 and points[0]["cost"] > 0
    assert points[0]["cost"] == pytest.approx(sum(first_minute))

    one_key = api.get(f"/ai-gateway/gateways/{gateway}/timeseries",
                      params={**window, "provider": "openai", "alias": "b", "interval": "hour"}).json()
    assert [(p["t"], p["requests"], p["errors"]) for p in one_key["result"]["points"]] == [
        ("2026-01-01T00:00:00.000Z", 1, 1)]


@pytest.mark.parametrize(("params", "field"), [
    ({"interval": "week"}, "interval"),
    ({"start": "yesterday"}, "start"),
    ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
    ({"start": "2025-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z", "interval": "minute"}, "interval"),
    ({"start": "0204-09-23T14:56:29Z", "interval": "day"}, "interval"),
    ({"end": "0001-01-01T00:00:00Z"}, "end"),
    ({"end": "0001-01-01T00:00:00+01:00"}, "end"),
])
def test_bad_query_is_400_naming_the_field(api: httpx.Client, gateway: str, params: dict[str, str],
                                           field: str) -> None:
    response = api.get(f"/ai-gateway/gateways/{gateway}/timeseries", params=params)
    assert_v4_error(response, 400, 7001)
    assert response.json()["errors"][0]["path"] == ["query", field]


@pytest.mark.parametrize(("start", "end"), [("0204-01-01T00:00:00Z", "0204-01-01T00:02:00Z"),
                                            ("9999-12-31T23:58:00Z", "9999-12-31T23:59:59.999Z")])
def test_far_dates_answer_in_rfc3339(api: httpx.Client, gateway: str, start: str, end: str) -> None:
    body = api.get(f"/ai-gateway/gateways/{gateway}/timeseries", params={"start": start, "end": end}).json()
    points = body["result"]["points"]
    assert points[0]["t"] == start.replace(":00Z", ":00.000Z") and len(points) in (2, 3)
    assert all(p["requests"] == 0 for p in points)


def test_unknown_gateway_is_404(api: httpx.Client) -> None:
    assert_v4_error(api.get("/ai-gateway/gateways/no-such-gateway/timeseries"), 404, 7002)


def test_identity_names_accounts_and_permissions(server: Server, api: httpx.Client) -> None:
    created = api.post("/tokens", json={"name": "console-read", "permissions": ["AI Gateway Read"]}).json()
    reader = created["result"]["value"]
    body = httpx.get(f"{server.api}/sluice/identity", headers=server.headers(reader)).json()
    assert body["result"] == {"accounts": [server.account_id], "permissions": ["AI Gateway Read"],
                              "credential": "api_token",
                              "token": {"id": created["result"]["id"], "name": "console-read",
                                        "expires_on": None}}
    admin = httpx.get(f"{server.api}/sluice/identity", headers=server.headers()).json()["result"]
    assert len(admin["permissions"]) == 7
    legacy = {"X-Auth-Email": server.creds["email"], "X-Auth-Key": server.creds["api_key"]}
    user = httpx.get(f"{server.api}/sluice/identity", headers=legacy).json()["result"]
    assert (user["credential"], user["token"], server.account_id in user["accounts"]) == (
        "global_api_key", None, True)


BAD_CREDENTIALS = [{}, {"Authorization": "Bearer sluice_nope"}, {"Authorization": "Basic x"}]


@pytest.mark.parametrize("headers", BAD_CREDENTIALS)
def test_identity_without_valid_credentials_is_401(server: Server, headers: dict[str, str]) -> None:
    assert_v4_error(httpx.get(f"{server.api}/sluice/identity", headers=headers), 401, 10000)
