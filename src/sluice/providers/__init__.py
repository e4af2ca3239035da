"""Upstream providers: the catalog (data), URL building, and token-usage extraction."""

from sluice.providers.registry import CATALOG_SLUGS, Provider, load_catalog, override_env_name
from sluice.providers.usage import SSEUsage, Usage, model_from_request, usage_from_json

__all__ = [
    "CATALOG_SLUGS",
    "Provider",
    "SSEUsage",
    "Usage",
    "load_catalog",
    "model_from_request",
    "override_env_name",
    "usage_from_json",
]
