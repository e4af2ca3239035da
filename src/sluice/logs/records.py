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


def model_type(path: str) -> str | None:
    lowered = path.lower()
    for marker, kind in _MODEL_TYPES:
        if marker in lowered:
            return kind
    return None


def _text(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


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
    if exchange.cached:
        cost: float | None = 0.0  # a cache hit was not billed by the provider
    elif custom_cost is not None:
        cost = custom_cost.cost(tokens_in, tokens_out)
    else:
        price = (prices or default_table()).price(exchange.provider, model)
        counted = tokens_in is not None or tokens_out is not None
        cost = price.cost(tokens_in, tokens_out) if price and counted else None
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
        "request_body": redact.redact_body(bytes(exchange.request_body), matcher),
        "response_body": redact.redact_body(bytes(exchange.response_body), matcher),
        "body_codec": 0,
        "feedback": None,
        "score": None,
        "step": None,
        "error": _text(exchange.error, 1024),
    }
    if not exchange.collect_payload:  # cf-aig-collect-log-payload: false — metadata only
        row.update(request_body=None, response_body=None, body_codec=bodies.OMITTED)
    for column in _CLIENT_TEXT:
        value = row[column]
        if isinstance(value, str) and "\x00" in value:  # PostgreSQL text cannot hold U+0000: it failed
            # the whole batch
            row[column] = value.replace("\x00", "\ufffd")
    if matcher is not None:
        redact.redact_fields(row, TEXT_FIELDS, matcher)
    return row


# Text columns whose value a client or a provider chooses (the rest are Sluice's own or validated).
_CLIENT_TEXT = ("model", "path", "request_content_type", "response_content_type", "user_agent", "event_id",
                "error", "metadata")
