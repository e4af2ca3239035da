"""Prometheus metrics in their own registry. Labels are gateway and provider only — never an
alias, key, token or account-chosen free text beyond the gateway id."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from sluice.exchange import Exchange

UNROUTED = "-"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "error"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("sluice_requests", "Data-plane requests answered.",
                                ("gateway", "provider", "status_class"), registry=r)
        self.latency = Histogram("sluice_request_duration_seconds", "Data-plane request duration.",
                                 ("gateway", "provider"), buckets=LATENCY_BUCKETS, registry=r)
        self.upstream = Counter("sluice_upstream_responses", "Responses received from upstream providers.",
                                ("gateway", "provider", "code"), registry=r)
        self.rejections = Counter("sluice_rejections", "Requests refused by the gateway before forwarding.",
                                  ("gateway", "provider", "kind"), registry=r)
        self.cache = Counter("sluice_cache_lookups", "Response cache lookups.",
                             ("gateway", "provider", "result"), registry=r)
        self.log_drops = Counter("sluice_request_logs_dropped", "Request logs not stored.", ("reason",),
                                 registry=r)
        self._children: dict[tuple, object] = {}

    def record(self, exchange: Exchange) -> None:
        # Unrouted requests (unknown gateway/provider) carry caller-typed ids: one fixed label,
        # "-" (never a valid gateway id), so callers cannot grow the series without bound.
        routed = exchange.provider
        gateway, provider = (exchange.gateway_id, routed) if routed else (UNROUTED, UNROUTED)
        status = exchange.status_code
        self._child(self.requests, gateway, provider, status_class(status)).inc()
        self._child(self.latency, gateway, provider).observe(max(0, exchange.duration_ms) / 1000)
        if exchange.rejected_by:
            self._child(self.rejections, gateway, provider, exchange.rejected_by).inc()
        elif exchange.cached:
            self._child(self.cache, gateway, provider, "hit").inc()
        elif exchange.error is None and status:
            self._child(self.upstream, gateway, provider, str(status)).inc()
        if exchange.cache_status == "MISS":
            self._child(self.cache, gateway, provider, "miss").inc()

    def _child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """``metric.labels(...)`` takes a lock and validates every call (measured on the hot path);
        the labelled child for a label tuple never changes, so it is looked up once."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def log_dropped(self, reason: str, count: int) -> None:
        self.log_drops.labels(reason).inc(count)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
