"""Prometheus metrics in their own registry. Labels are gateway and provider (and a fixed set of
kinds: status, reason, state) — never an alias, key, token or account-chosen free text beyond the
gateway id.

Under ``sluice serve --workers N`` prometheus-client runs in multiprocess mode (``observe/multiproc.py``):
every update also lands in a memory-mapped file of the worker, and a scrape, answered by any one
worker, sums the files of all of them, so a counter never goes backwards between scrapes. One process
keeps plain in-memory values (an update there costs about half as much; docs/scale-out.md)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from sluice.exchange import Exchange
from sluice.keyhealth import KeyHealth
from sluice.ratelimit.base import BackendHealth

UNROUTED = "-"
# How a gauge's values from several workers combine in one scrape (prometheus-client's names).
GaugeMode = Literal["all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent",
                    "livemostrecent"]
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


_STATUS_CLASSES = {status: f"{status // 100}xx" for status in range(100, 600)}  # not formatted per request


def status_class(status: int) -> str:
    return _STATUS_CLASSES.get(status, "error")


class Metrics:
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
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
        self.failovers = Counter("sluice_key_failovers", "Requests retried with another stored key of the "
                                 "pool after the provider refused the first (key pools).",
                                 ("gateway", "provider", "reason"), registry=r)
        self.log_drops = Counter("sluice_request_logs_dropped", "Request logs not stored.", ("reason",),
                                 registry=r)
        self._children: dict[tuple, object] = {}
        self._synced: list[Callable[[], None]] = []
        # One process: a request adds to plain tallies, folded into the metrics when they are read
        # (``render``); prometheus-client's inc/observe take a lock and a Python call chain each
        # (measured: ~9 µs of a logged chat request's event-loop time for the three). Under workers
        # every update goes to the worker's files at once, so another worker's scrape sees it.
        self._tally: dict[tuple[MetricWrapperBase, tuple[str, ...]], int] = {}
        self._durations: dict[tuple[str, str], list[float]] = {}  # bucket counts, then the sum
        if multiprocess_dir is not None:
            self._count = self._count_now  # type: ignore[method-assign]
            self._observe = self._observe_now  # type: ignore[method-assign]

    def _count(self, metric: MetricWrapperBase, *labels: str) -> None:
        key = (metric, labels)
        tally = self._tally
        tally[key] = tally.get(key, 0) + 1

    def _observe(self, gateway: str, provider: str, seconds: float) -> None:
        found = self._durations.get((gateway, provider))
        if found is None:
            found = self._durations[(gateway, provider)] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        found[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # le is inclusive: a bound's own value is in
        found[-1] += seconds

    def _count_now(self, metric: MetricWrapperBase, *labels: str) -> None:
        self._child(metric, *labels).inc()

    def _observe_now(self, gateway: str, provider: str, seconds: float) -> None:
        self._child(self.latency, gateway, provider).observe(seconds)

    def fold(self) -> None:
        """Add the tallies to the metrics (prometheus-client's histogram keeps one count per bucket,
        not cumulative, and a sum: the same fields ``observe`` adds to)."""
        tally, self._tally = self._tally, {}
        for (metric, labels), count in tally.items():
            self._child(metric, *labels).inc(count)
        durations, self._durations = self._durations, {}
        for labels, found in durations.items():
            child = self._child(self.latency, *labels)
            for bucket, times in zip(child._buckets, found[:-1], strict=True):
                if times:
                    bucket.inc(times)
            child._sum.inc(found[-1])

    def record(self, exchange: Exchange) -> None:
        # Unrouted requests (unknown gateway/provider) carry caller-typed ids: one fixed label,
        # "-" (never a valid gateway id), so callers cannot grow the series without bound.
        routed = exchange.provider
        gateway, provider = (exchange.gateway_id, routed) if routed else (UNROUTED, UNROUTED)
        status = exchange.status_code
        if exchange.failover:  # a refused attempt of a pooled request, not an answer to a client
            self._count(self.failovers, gateway, provider, exchange.failover)
            self._count(self.upstream, gateway, provider, str(status))
            return
        self._count(self.requests, gateway, provider, status_class(status))
        self._observe(gateway, provider, max(0, exchange.duration_ms) / 1000)
        if exchange.rejected_by:
            self._count(self.rejections, gateway, provider, exchange.rejected_by)
        elif exchange.cached:
            self._count(self.cache, gateway, provider, "hit")
        elif exchange.error is None and status:
            self._count(self.upstream, gateway, provider, str(status))
        if exchange.cache_status == "MISS":
            self._count(self.cache, gateway, provider, "miss")

    def _child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """``metric.labels(...)`` takes a lock and validates every call (measured on the hot path);
        the labelled child for a label tuple never changes, so it is looked up once."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def watch_rate_limit_store(self, health: BackendHealth) -> None:
        """The shared rate-limit store's state (the hot path counts nothing extra). One process reads
        it at scrape time; under workers each worker copies its view into the summed files every
        ``SYNC_S`` (``sync``), so a counter never goes backwards between scrapes answered by
        different workers, and ``up`` is 0 while any live worker finds it down."""
        if self.multiprocess_dir is None:
            self.registry.register(RateLimitStoreCollector(health))
        else:
            self._synced.append(StoreSeries(health, self.registry).sync)

    def watch_key_health(self, health: KeyHealth) -> None:
        """Stored keys out of service (key pools), read at scrape time from this process's memory;
        under workers copied every ``SYNC_S``, a scrape showing the most any live worker has out."""
        if self.multiprocess_dir is None:
            self.registry.register(KeyHealthCollector(health))
        else:
            self._synced.append(KeyHealthSeries(health, self.registry).sync)

    def sync(self) -> None:
        """Under workers: copy this process's state into its multiprocess files."""
        for sync in self._synced:
            sync()

    def log_dropped(self, reason: str, count: int) -> None:
        self.log_drops.labels(reason).inc(count)

    def gauge(self, name: str, documentation: str, labels: tuple[str, ...] = (),
              multiprocess_mode: GaugeMode = "livemax") -> Gauge:
        """A gauge for this registry. Under workers a scrape combines the live workers' values by
        ``multiprocess_mode`` ("livemax": 1 if any worker says 1; "livesum" for amounts)."""
        return Gauge(name, documentation, labels, registry=self.registry, multiprocess_mode=multiprocess_mode)

    def render(self) -> tuple[bytes, str]:
        if self.multiprocess_dir is None:
            self.fold()
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess

        # Built per scrape, as prometheus-client prescribes: it reads every worker's files afresh.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def process_exited(self, pid: int) -> None:
        """A worker is stopping: its live gauges stop counting (its counters keep their totals)."""
        if self.multiprocess_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, path=str(self.multiprocess_dir))


SYNC_S = 1.0
UP_HELP = "1 while the shared rate-limit store answers."
OUTAGES_HELP = "Times the rate-limit store was found unreachable."
UNCHECKED_HELP = ("Requests with a rate limit decided by SLUICE_RATE_LIMIT_ON_REDIS_ERROR because the store "
                  "could not be asked.")


class StoreSeries:
    """The rate-limit store's series under workers: real multiprocess metrics fed by deltas."""

    def __init__(self, health: BackendHealth, registry: CollectorRegistry) -> None:
        self.health = health
        self.up = Gauge("sluice_ratelimit_store_up", UP_HELP, ("store",), registry=registry,
                        multiprocess_mode="livemin").labels(health.name)
        self.outages = Counter("sluice_ratelimit_outages", OUTAGES_HELP, ("store",),
                               registry=registry).labels(health.name)
        self.unchecked = Counter("sluice_ratelimit_unchecked", UNCHECKED_HELP, ("store", "policy"),
                                 registry=registry).labels(health.name, health.on_error)
        self._outages = self._unchecked = 0
        self.sync()

    def sync(self) -> None:
        h = self.health
        self.up.set(1.0 if h.up else 0.0)
        if h.outages > self._outages:
            self.outages.inc(h.outages - self._outages)
            self._outages = h.outages
        if h.decided_without_backend > self._unchecked:
            self.unchecked.inc(h.decided_without_backend - self._unchecked)
            self._unchecked = h.decided_without_backend


class RateLimitStoreCollector(Collector):
    def __init__(self, health: BackendHealth) -> None:
        self.health = health

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        h = self.health
        up = GaugeMetricFamily("sluice_ratelimit_store_up", UP_HELP, labels=("store",))
        up.add_metric((h.name,), 1.0 if h.up else 0.0)
        yield up
        outages = CounterMetricFamily("sluice_ratelimit_outages", OUTAGES_HELP, labels=("store",))
        outages.add_metric((h.name,), h.outages)
        yield outages
        decided = CounterMetricFamily("sluice_ratelimit_unchecked", UNCHECKED_HELP,
                                      labels=("store", "policy"))
        decided.add_metric((h.name, h.on_error), h.decided_without_backend)
        yield decided


KEYS_OUT_HELP = ("Stored keys a key pool is passing over in this process: cooling (429, quota) or failed "
                 "(401/403, until rotated).")


class KeyHealthSeries:
    def __init__(self, health: KeyHealth, registry: CollectorRegistry) -> None:
        self.health = health
        self.gauge = Gauge("sluice_stored_keys_out", KEYS_OUT_HELP, ("provider", "state"), registry=registry,
                           multiprocess_mode="livemax")
        self._shown: set[tuple[str, str]] = set()

    def sync(self) -> None:
        counts = self.health.counts()
        for labels in self._shown - counts.keys():
            self.gauge.labels(*labels).set(0)
        for labels, count in counts.items():
            self.gauge.labels(*labels).set(count)
        self._shown |= counts.keys()


class KeyHealthCollector(Collector):
    """Labels are the provider and the state only: never a key, an alias or a config id."""

    def __init__(self, health: KeyHealth) -> None:
        self.health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        out = GaugeMetricFamily("sluice_stored_keys_out", KEYS_OUT_HELP, labels=("provider", "state"))
        for (provider, state), count in sorted(self.health.counts().items()):
            out.add_metric((provider, state), count)
        yield out
