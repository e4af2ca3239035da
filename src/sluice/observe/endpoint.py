"""``GET /metrics``: Prometheus text, open by default, behind a bearer token when one is set."""

from __future__ import annotations

import hmac
from typing import Any

from sluice.observe.metrics import Metrics


def _bearer(scope: dict[str, Any]) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].strip()
    return None


async def serve_metrics(scope: dict[str, Any], send: Any, metrics: Metrics, token: str | None) -> None:
    if scope.get("method") not in ("GET", "HEAD"):
        status, body, media = 405, b"method not allowed\n", "text/plain; charset=utf-8"
    elif token is not None and not hmac.compare_digest(_bearer(scope) or b"", token.encode()):
        status, body, media = 401, b"metrics require Authorization: Bearer <SLUICE_METRICS_TOKEN>\n", \
            "text/plain; charset=utf-8"
    else:
        status = 200
        body, media = metrics.render()
    headers = [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body if scope.get("method") != "HEAD" else b""})
