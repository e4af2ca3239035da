"""When to use the cache and for how long (pure functions for the data plane to apply).

* TTL: ``cf-aig-cache-ttl`` (or the deprecated ``cf-cache-ttl``), else the gateway's ``cache_ttl``.
  Bounds are 60 s .. 1 month (30 days): a value outside is clamped into them. A header that is not
  a whole number is ignored; a header ``<= 0`` turns caching off for the request; a gateway
  ``cache_ttl`` of null/0 means the gateway does not cache. With ``cf-aig-cache-key`` on a gateway
  that does not cache, the response is cached for 5 minutes (Cloudflare's rule).
* ``cf-aig-skip-cache: true`` (or ``cf-skip-cache``): no lookup and no store.
* Only 2xx responses are stored, and a streamed one only when it completed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

MIN_TTL = 60
MAX_TTL = 30 * 24 * 3600
DEFAULT_CUSTOM_KEY_TTL = 300
MAX_CACHEABLE_REQUEST = 25 * 1024 * 1024
CACHEABLE_METHODS = ("GET", "POST")

# Per-response or per-connection headers that must not be replayed from the cache.
_NOT_STORED = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade", "content-length", "date", "set-cookie", "age", "server",
})


def _clamp(seconds: int) -> int:
    return min(MAX_TTL, max(MIN_TTL, seconds))


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        if name in headers:
            return headers[name]
    return None


def effective_ttl(gateway_cache_ttl: int | None, headers: Mapping[str, str]) -> int | None:
    """Seconds to cache this request's response, or None for "do not use the cache".

    ``headers`` are the request headers with lower-case names.
    """
    raw = _header(headers, "cf-aig-cache-ttl", "cf-cache-ttl")
    if raw is not None:
        try:
            seconds = int(raw.strip())
        except ValueError:
            seconds = None  # malformed: ignored, the gateway setting applies
        if seconds is not None:
            return _clamp(seconds) if seconds > 0 else None
    if gateway_cache_ttl:
        return _clamp(gateway_cache_ttl)
    if _header(headers, "cf-aig-cache-key"):
        return DEFAULT_CUSTOM_KEY_TTL
    return None


def skip_cache(headers: Mapping[str, str]) -> bool:
    raw = _header(headers, "cf-aig-skip-cache", "cf-skip-cache")
    return raw is not None and raw.strip().lower() in ("true", "1")


def cacheable_request(method: str, body_size: int) -> bool:
    return method.upper() in CACHEABLE_METHODS and body_size <= MAX_CACHEABLE_REQUEST


def cacheable_response(status: int, *, complete: bool = True) -> bool:
    """Successful (2xx) and, for a stream, delivered to the end (not cut by a disconnect/error)."""
    return 200 <= status < 300 and complete


def storable_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in headers
                 if k.lower() not in _NOT_STORED and not k.lower().startswith("cf-aig-"))
