"""Upstream providers: the catalog (data: ``catalog.toml``, ``registry``) and token-usage extraction
(``usage``)."""
