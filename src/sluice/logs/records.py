"""One Exchange → one ``request_logs`` row: cost, metadata, model type, redaction.

Pure (no I/O). ``LogSink.record`` runs it once the request's response has been sent.
"""

from __future__ import annotations

from typing import Any

from sluice.clock import rfc3339_ts
from sluice.exchange import Exchange
from sluice.logs import bodies, custom, redact
from sluice.logs.pricing import PriceTable, default_table
from sluice.providers.usage import model_from_request

_MODEL_TYPES = (  # first match on the provider path wins
    ("embed", "embedding"),
    ("chat/completions", "chat"),
    ("messages", "chat"),
    ("responses", "chat"),
    ("generatecontent", "chat"),
    ("streamgeneratecontent", "chat"),
    ("completions", "completion"),
    ("images", "image"),
    ("audio/speech", "text-to-speech"),
    ("text-to-speech", "text-to-speech"),
    ("audio/transcriptions", "speech-to-text"),
    ("audio", "audio"),
    ("moderations", "moderation"),
    ("rerank", "rerank"),
)


# Text a caller or a provider controls: searched for the account's stored key values.
TEXT_FIELDS = ("model", "path", "metadata", "request_content_type", "response_content_type", "user_agent",
               "event_id", "error")


BODIES = ("request_body", "response_body")


def model_type(path: str) -> str | None:
    lowered = path.lower()
    for marker, kind in _MODEL_TYPES:
        if marker in lowered:
            return kind
    return None


def _text(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


def _cost(exchange: Exchange, model: str | None, custom_cost: custom.CustomCost | None,
          prices: PriceTable | None) -> float | None:
    usage = exchange.usage
    tokens_in = usage.tokens_in if usage else None
    tokens_out = usage.tokens_out if usage else None
    if exchange.cached:
        return 0.0  # a cache hit was not billed by the provider
    if custom_cost is not None:
        return custom_cost.cost(tokens_in, tokens_out)
    price = (prices or default_table()).price(exchange.provider, model)
    counted = tokens_in is not None or tokens_out is not None
    return price.cost(tokens_in, tokens_out) if price and counted else None


def exchange_cost(exchange: Exchange, prices: PriceTable | None = None) -> float:
    """The cost the request log records for ``exchange`` (0 when unknown): what budgets count."""
    headers = {k.lower(): v for k, v in exchange.request_headers.items()}
    model = exchange.model or (exchange.usage.model if exchange.usage else None)
    return _cost(exchange, model, custom.parse_custom_cost(headers.get("cf-aig-custom-cost")), prices) or 0.0


def log_row(exchange: Exchange, prices: PriceTable | None = None) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in exchange.request_headers.items()}
    matcher = exchange.key_matcher
    usage = exchange.usage
    tokens_in = usage.tokens_in if usage else None
    tokens_out = usage.tokens_out if usage else None
    model = exchange.model or (usage.model if usage else None)
    if model is None and exchange.request_body and len(exchange.request_body) >= exchange.request_size:
        model = model_from_request(bytes(exchange.request_body))  # parsed here, off the request path
    custom_cost = custom.parse_custom_cost(headers.get("cf-aig-custom-cost"))
    cost = _cost(exchange, model, custom_cost, prices)
    row = {
        "id": exchange.log_id,
        "account_id": exchange.account_id,
        "gateway_id": exchange.gateway_id,
        "created_at": rfc3339_ts(exchange.started_at),
        "provider": exchange.provider,
        "model": _text(model, 256),
        "model_type": model_type(exchange.path),
        "path": redact.clean_path(exchange.path),
        "method": exchange.method.upper()[:16],
        "status_code": exchange.status_code or None,
        "success": bool(exchange.success),
        "cached": bool(exchange.cached),
        "stream": bool(exchange.stream),
        "duration": max(0, int(exchange.duration_ms)),
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost": cost,
        "custom_cost": custom_cost is not None and not exchange.cached,
        "metadata": custom.metadata_text(custom.parse_metadata(headers.get("cf-aig-metadata"))),
        "request_content_type": _text(headers.get("content-type"), 255),
        "response_content_type": _text(exchange.response_content_type, 255),
        "request_type": "stream" if exchange.stream else "sync",
        "user_agent": _text(headers.get("user-agent"), 1024),
        "event_id": _text(headers.get("cf-aig-event-id"), 255),
        "alias": exchange.alias,
        "config_id": exchange.config_id,
        "request_size": max(exchange.request_size, len(exchange.request_body)),
        "response_size": max(exchange.response_size, len(exchange.response_body)),
        "request_body": bytes(exchange.request_body),  # redacted below, with the text fields
        "response_body": bytes(exchange.response_body),
        "body_codec": 0,
        "feedback": None,
        "score": None,
        "step": None,
        "route": _text(exchange.route, 64),
        "route_version": _text(exchange.route_version, 32),
        "route_path": _text(exchange.route_path, 4096),
        "error": _text(exchange.error, 1024),
    }
    if not exchange.collect_payload:  # cf-aig-collect-log-payload: false — metadata only
        row.update(request_body=None, response_body=None, body_codec=bodies.OMITTED)
    for column in _CLIENT_TEXT:
        value = row[column]
        if isinstance(value, str) and "\x00" in value:  # PostgreSQL text cannot hold U+0000: it failed
            # the whole batch
            row[column] = value.replace("\x00", "\ufffd")
    redact.redact_row(row, BODIES if exchange.collect_payload else (), TEXT_FIELDS, matcher)
    return row


# Text columns whose value a client or a provider chooses (the rest are Sluice's own or validated).
_CLIENT_TEXT = ("model", "path", "request_content_type", "response_content_type", "user_agent", "event_id",
                "error", "metadata")
