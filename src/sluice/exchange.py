"""The per-request record: the seam between the data plane and observability (request logs,
metrics, key activity). Foundation layer: it imports nothing of Sluice.

The data plane fills one ``Exchange`` per request and hands it to the ``Observer`` when the response
is complete. ``record`` must never block or raise: implementations queue and return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sluice.keymatch import KeyMatcher


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage and model as read from a provider's response (``providers/usage.py``)."""

    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None


@dataclass(slots=True)
class Exchange:
    log_id: str  # ULID; also the cf-aig-log-id response header
    account_id: str
    gateway_id: str
    provider: str
    method: str
    path: str  # the provider path after /{provider_slug}/, e.g. "chat/completions"
    started_at: float  # time.time() when the request arrived
    duration_ms: int = 0
    status_code: int = 0
    success: bool = False
    cached: bool = False
    cache_status: str | None = None  # "HIT" | "MISS" when the cache was consulted, else None
    stream: bool = False
    alias: str | None = None  # the stored key's alias when one was used
    config_id: str | None = None
    collect_log: bool = True  # gateway collect_logs, flipped by cf-aig-collect-log
    # False with cf-aig-collect-log-payload: false: the log keeps metadata, never the bodies (the
    # request body is held until the log row is built, only to read the model from it).
    collect_payload: bool = True
    # Selected request headers (never credentials): cf-aig-metadata, cf-aig-custom-cost,
    # cf-aig-event-id, content-type, user-agent.
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: bytes = b""  # capped at settings.log_body_max_bytes
    request_size: int = 0
    response_body: bytes = b""  # capped likewise
    response_size: int = 0
    response_content_type: str | None = None
    model: str | None = None
    usage: Usage | None = None
    error: str | None = None  # the gateway's own error message (e.g. 429, 502), never a secret
    rejected_by: str | None = None  # "gateway_rate_limit" | "key_rate_limit" | "auth" | ... for metrics
    # Key pools: set on the record of an upstream attempt whose stored key the provider refused and
    # that was retried with the next key ("rate_limited" | "quota" | "auth"). Such a record is one
    # upstream use of that key, not a client's answer: the answer has a record of its own.
    failover: str | None = None
    # The account's stored key values, compiled (never the values themselves): what the log writer
    # masks in bodies. None when the account holds no stored key.
    key_matcher: KeyMatcher | None = None
    # A model call of a dynamic route (docs/routing.md): the route's name, its deployed version and
    # the element ids the walk took, as the response headers report them.
    route: str | None = None
    route_version: str | None = None
    route_path: str | None = None


class Observer(Protocol):
    def record(self, exchange: Exchange) -> None: ...


class NullObserver:
    def record(self, exchange: Exchange) -> None:
        return None
