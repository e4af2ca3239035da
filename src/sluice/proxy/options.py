"""Per-request options from ``cf-aig-*`` headers, falling back to the gateway's settings.

Bad values are ignored (the gateway default applies) rather than refused: these headers tune a
request, and Cloudflare documents no error for them.
"""

from __future__ import annotations

from collections.abc import Mapping

from sluice.proxy.retry import NO_RETRY, RetryPolicy
from sluice.proxy.state import GatewayState

BACKOFFS = ("constant", "linear", "exponential")
MAX_ATTEMPTS = 5
MAX_DELAY_MS = 60_000


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def request_timeout_s(control: Mapping[str, str]) -> float | None:
    """``cf-aig-request-timeout`` (milliseconds to the first response byte) in seconds, or None."""
    ms = _int(control.get("cf-aig-request-timeout"))
    return ms / 1000 if ms is not None and ms > 0 else None


def retry_policy(control: Mapping[str, str], gateway: GatewayState) -> RetryPolicy:
    attempts = _int(control.get("cf-aig-max-attempts"))
    delay = _int(control.get("cf-aig-retry-delay"))
    backoff = control.get("cf-aig-backoff", "").strip().lower()
    policy = RetryPolicy(
        attempts=(min(MAX_ATTEMPTS, attempts) if attempts is not None and attempts >= 1
                  else gateway.retry_attempts),
        delay_ms=min(MAX_DELAY_MS, delay) if delay is not None and delay >= 0 else gateway.retry_delay_ms,
        backoff=backoff if backoff in BACKOFFS else gateway.retry_backoff,
    )
    return NO_RETRY if policy == NO_RETRY else policy


def collect_log_payload(control: Mapping[str, str]) -> bool:
    """``cf-aig-collect-log-payload: false``: log the metadata but never the request/response bodies."""
    value = control.get("cf-aig-collect-log-payload")
    return value is None or value.strip().lower() not in ("false", "0", "no")


def collect_log(control: Mapping[str, str], gateway: GatewayState) -> bool:
    value = control.get("cf-aig-collect-log")
    if value is None:
        return gateway.collect_logs
    return value.strip().lower() not in ("false", "0", "no")
