"""A gateway setting cleared with null (issue 15, item 14) is cleared on the data plane too: a gateway whose
rate limit was set and then sent as null stops limiting, as one that never had a limit."""

from __future__ import annotations

import httpx

from tests.proxy.helpers import add_config, gateway_url, set_gateway, upstream_requests
from tests.support.server import MockUpstream, Server

PERIOD = 3600  # one window for the whole test: the second request is refused only by the limit


def test_rate_limit_cleared_with_null_stops_limiting(server: Server, api: httpx.Client, gateway: str,
                                                     upstream: MockUpstream) -> None:
    add_config(api, gateway, "openai")
    url = gateway_url(server, gateway) + "/models"
    set_gateway(api, gateway, rate_limiting_limit=1, rate_limiting_interval=PERIOD,
                rate_limiting_technique="sliding")
    assert [httpx.get(url).status_code for _ in range(2)] == [200, 429]
    set_gateway(api, gateway, rate_limiting_limit=None, rate_limiting_interval=None)
    assert [httpx.get(url).status_code for _ in range(3)] == [200, 200, 200]
    assert len(upstream_requests(upstream, "/openai/")) == 4


def test_every_cleared_setting_acts_as_its_default() -> None:
    """Pure: a stored gateway whose nullable settings are all null is served as one with the defaults."""
    from sluice.control.schemas import GATEWAY_DEFAULTS, NULLABLE_GATEWAY_FIELDS
    from sluice.proxy.state import gateway_state

    base = {"account_id": "a" * 32, "id": "gw"}
    cleared = gateway_state({**base, **GATEWAY_DEFAULTS, **dict.fromkeys(NULLABLE_GATEWAY_FIELDS)}, {})
    assert cleared == gateway_state({**base, **GATEWAY_DEFAULTS}, {})
