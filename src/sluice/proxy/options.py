"""Per-request options from ``cf-aig-*`` headers, falling back to the gateway's settings.

A documented option with a value Sluice cannot honour is refused (400 / 2002 naming the header and
saying what it takes, ``check``) before a key is chosen, never ignored: a caller who sent
``cf-aig-request-timeout: 5s`` must not silently get no timeout. Cloudflare documents no error for
these, so the ranges are ours (docs/gateway.md#request-options).
"""

from __future__ import annotations

from collections.abc import Mapping

from sluice.errors import UnforwardableRequest
from sluice.proxy.retry import NO_RETRY, RetryPolicy
from sluice.proxy.state import GatewayState

BACKOFFS = ("constant", "linear", "exponential")
MAX_ATTEMPTS = 5
MAX_DELAY_MS = 60_000
MAX_TIMEOUT_MS = 15 * 60 * 1000  # a step or request waits at most 15 minutes for its first byte
MAX_CACHE_TTL_S = 2**31 - 1
BOOLEANS = ("true", "false", "1", "0")
# header -> (lowest, highest) for integer options; the rest take one of a few words
INTEGER_OPTIONS = {
    "cf-aig-request-timeout": (0, MAX_TIMEOUT_MS), "cf-aig-max-attempts": (1, MAX_ATTEMPTS),
    "cf-aig-retry-delay": (0, MAX_DELAY_MS), "cf-aig-cache-ttl": (0, MAX_CACHE_TTL_S),
    "cf-cache-ttl": (0, MAX_CACHE_TTL_S),
}
WORD_OPTIONS = {
    "cf-aig-backoff": BACKOFFS, "cf-aig-skip-cache": BOOLEANS, "cf-skip-cache": BOOLEANS,
    "cf-aig-collect-log": BOOLEANS, "cf-aig-collect-log-payload": BOOLEANS,
}


def check(control: Mapping[str, str]) -> None:
    """Refuse a request option whose value cannot be honoured (``UnforwardableRequest`` naming it).
    The value is not quoted: a caller may have pasted anything into it."""
    for name, (low, high) in INTEGER_OPTIONS.items():
        value = control.get(name)
        if value is not None:
            number = _int(value)
            if number is None or not low <= number <= high:
                raise UnforwardableRequest(f"{name}: must be an integer from {low} to {high}")
    for name, words in WORD_OPTIONS.items():
        value = control.get(name)
        if value is not None and value.strip().lower() not in words:
            raise UnforwardableRequest(f"{name}: must be one of {', '.join(words)}")


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
    return value is None or value.strip().lower() not in ("false", "0")


def collect_log(control: Mapping[str, str], gateway: GatewayState) -> bool:
    value = control.get("cf-aig-collect-log")
    if value is None:
        return gateway.collect_logs
    return value.strip().lower() not in ("false", "0")
