"""Data plane: /v1/{account_id}/{gateway_id}/{provider_slug}/{path...} → the provider's upstream."""

from sluice.proxy.dataplane import DataPlane

__all__ = ["DataPlane"]
