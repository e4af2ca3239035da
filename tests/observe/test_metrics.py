"""Prometheus metrics: the right series, and no key, token or alias in the output."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from sluice.observe.metrics import Metrics
from tests.observe.support import exchange

SECRET = "sk-live-" + "S3cr3t" * 6


def samples(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    text = metrics.render()[0].decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_requests_latency_upstream_rejections_cache() -> None:
    metrics = Metrics()
    metrics.record(exchange("gw1", duration_ms=30))
    metrics.record(exchange("gw1", status_code=429, success=False, rejected_by="key_rate_limit",
                            error="limited"))
    metrics.record(exchange("gw1", status_code=502, success=False, error="upstream unreachable"))
    metrics.record(exchange("gw1", status_code=500, success=False))
    metrics.record(exchange("gw1", cached=True))
    metrics.log_dropped("buffer_full", 3)
    got = samples(metrics)
    gw = (("gateway", "gw1"), ("provider", "openai"))
    assert got[("sluice_requests_total", tuple(sorted((*gw, ("status_class", "2xx")))))] == 2
    assert got[("sluice_requests_total", tuple(sorted((*gw, ("status_class", "5xx")))))] == 2
    duration = "sluice_request_duration_seconds"
    assert got[(duration + "_count", gw)] == 5
    assert got[(duration + "_bucket", tuple(sorted((*gw, ("le", "0.05")))))] == 5
    assert got[("sluice_rejections_total", tuple(sorted((*gw, ("kind", "key_rate_limit")))))] == 1
    assert got[("sluice_upstream_responses_total", tuple(sorted((*gw, ("code", "200")))))] == 1
    assert got[("sluice_upstream_responses_total", tuple(sorted((*gw, ("code", "500")))))] == 1
    # the gateway's own 502 is no upstream response
    assert ("sluice_upstream_responses_total", tuple(sorted((*gw, ("code", "502"))))) not in got
    assert got[("sluice_cache_lookups_total", tuple(sorted((*gw, ("result", "hit")))))] == 1
    assert got[("sluice_request_logs_dropped_total", (("reason", "buffer_full"),))] == 3


def test_no_secret_or_alias_in_metrics() -> None:
    metrics = Metrics()
    metrics.record(exchange("gw1", alias="prod-key-alias", config_id="c" * 32, request_body=SECRET.encode(),
                            headers={"cf-aig-metadata": f'{{"k":"{SECRET}"}}'}, error=None))
    text = metrics.render()[0].decode()
    assert "gw1" in text  # the test can see labels at all
    for forbidden in (SECRET, "prod-key-alias", "c" * 32, "a" * 32):
        assert forbidden not in text


def test_registry_is_private() -> None:
    from prometheus_client import REGISTRY

    Metrics().record(exchange("private-gw"))
    assert b"private-gw" not in __import__("prometheus_client").generate_latest(REGISTRY)


def test_unrouted_requests_share_one_series() -> None:
    metrics = Metrics()
    for junk in ("x" * 200, "another-made-up-gateway"):
        metrics.record(exchange(junk, provider="", status_code=404, success=False, error="gateway not found"))
    text = metrics.render()[0].decode()
    assert "made-up" not in text and "x" * 50 not in text
    assert samples(metrics)[("sluice_requests_total", (("gateway", "-"), ("provider", "-"),
                                                        ("status_class", "4xx")))] == 2


def test_no_series_name_looks_like_an_api_token() -> None:
    """Tokens are ``sluice_`` + 43 url-safe characters, a shape leak scanners search for: a series
    name of that length would set them off on every scrape, log and doc that names it."""
    from sluice.ratelimit.base import BackendHealth

    metrics = Metrics()
    metrics.watch_rate_limit_store(BackendHealth("redis", "allow"))
    names = {s.name for family in text_string_to_metric_families(metrics.render()[0].decode())
             for s in family.samples}
    assert "sluice_ratelimit_unchecked_total" in names  # the store's series are in the scrape
    assert [n for n in names if n.startswith("sluice_") and len(n) - len("sluice_") >= 30] == []


def test_tallies_fold_into_the_same_series_as_direct_updates(tmp_path) -> None:
    """One process tallies and folds at scrape time; under workers every update goes out at once.
    Both give the same scrape, bucket bounds (inclusive) and the overflow bucket included."""
    durations_ms = (0, 5, 7, 50, 51, 300_000, 400_000)
    tallied, direct = Metrics(), Metrics(tmp_path)
    for metrics in (tallied, direct):
        for ms in durations_ms:
            metrics.record(exchange("gw1", duration_ms=ms))
        metrics.record(exchange("gw1", failover="quota", status_code=429, success=False))
    direct.fold()  # nothing to fold under workers: the updates went out already
    assert not direct._tally and not direct._durations
    got = samples(tallied)
    assert not tallied._tally and not tallied._durations  # folded by the scrape
    gw = (("gateway", "gw1"), ("provider", "openai"))
    duration = "sluice_request_duration_seconds"
    buckets = {le: got[(duration + "_bucket", tuple(sorted((*gw, ("le", le)))))]
               for le in ("0.005", "0.01", "0.05", "0.1", "300.0", "+Inf")}
    assert buckets == {"0.005": 2, "0.01": 3, "0.05": 4, "0.1": 5, "300.0": 6, "+Inf": 7}
    assert got[(duration + "_count", gw)] == 7
    assert abs(got[(duration + "_sum", gw)] - sum(durations_ms) / 1000) < 1e-9
    assert got[("sluice_key_failovers_total", tuple(sorted((*gw, ("reason", "quota")))))] == 1
    # a second scrape adds only what came since
    tallied.record(exchange("gw1", duration_ms=1))
    assert samples(tallied)[(duration + "_count", gw)] == 8
    # the direct (workers) instance counted the same into its own child values
    child = direct._child(direct.latency, "gw1", "openai")
    assert [b.get() for b in child._buckets][:3] == [2, 1, 0] and child._sum.get() == sum(durations_ms) / 1000
