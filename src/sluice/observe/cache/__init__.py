"""Response cache: key derivation and rules (pure) and a store behind a small async interface."""

from sluice.observe.cache.base import CachedResponse, ResponseCache
from sluice.observe.cache.keys import cache_key, gateway_prefix
from sluice.observe.cache.memory import MemoryCache
from sluice.observe.cache.rules import (
    DEFAULT_CUSTOM_KEY_TTL,
    MAX_TTL,
    MIN_TTL,
    cacheable_request,
    cacheable_response,
    effective_ttl,
    skip_cache,
    storable_headers,
)

__all__ = ["CachedResponse", "ResponseCache", "MemoryCache", "cache_key", "gateway_prefix", "effective_ttl",
           "skip_cache", "cacheable_request", "cacheable_response", "storable_headers", "MIN_TTL", "MAX_TTL",
           "DEFAULT_CUSTOM_KEY_TTL"]
