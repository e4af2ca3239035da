"""Sluice: a self-hosted AI gateway wire-compatible with Cloudflare AI Gateway."""

__version__ = "0.1.0"
