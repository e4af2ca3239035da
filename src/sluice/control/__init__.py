"""Management API, wire-compatible with Cloudflare's v4 API (``/client/v4/...``)."""
