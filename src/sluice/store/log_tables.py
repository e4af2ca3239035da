"""Request-log and key-activity tables, on the one ``schema.metadata``. Migrations 0002, 0003 and 0006
create them (written out there on purpose: a migration must not change when this file does)."""

from __future__ import annotations

from sqlalchemy import (
                        BigInteger,
                        Boolean,
                        Column,
                        Float,
                        Index,
                        Integer,
                        LargeBinary,
                        SmallInteger,
                        String,
                        Table,
                        Text,
)

from sluice.store.schema import metadata

request_logs = Table(
    "request_logs",
    metadata,
    Column("id", String(26), primary_key=True),  # ULID, also the cf-aig-log-id header
    Column("account_id", String(32), nullable=False),
    Column("gateway_id", String(64), nullable=False),
    Column("created_at", String(30), nullable=False),  # RFC 3339 ms Z: sorts as text
    Column("provider", String(64), nullable=False),
    Column("model", String(256)),
    Column("model_type", String(32)),
    Column("path", Text, nullable=False),
    Column("method", String(16), nullable=False),
    Column("status_code", Integer),
    Column("success", Boolean, nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("duration", Integer, nullable=False),
    Column("tokens_in", Integer),
    Column("tokens_out", Integer),
    Column("cost", Float),
    Column("custom_cost", Boolean, nullable=False),
    Column("metadata", Text),  # canonical JSON object text (sorted keys, no spaces)
    Column("request_content_type", String(255)),
    Column("response_content_type", String(255)),
    Column("request_type", String(32)),
    Column("user_agent", Text),
    Column("event_id", String(255)),
    Column("alias", String(64)),
    Column("config_id", String(32)),
    Column("request_size", BigInteger, nullable=False),
    Column("response_size", BigInteger, nullable=False),
    Column("request_body", LargeBinary),
    Column("response_body", LargeBinary),
    Column("feedback", Integer),
    Column("score", Float),
    Column("step", Integer),
    Column("route", String(64)),  # a dynamic route's model call: its name, version, path (0008)
    Column("route_version", String(32)),
    Column("route_path", Text),
    Column("error", Text),
    Column("body_codec", SmallInteger, nullable=False, server_default="0"),  # logs/bodies.py (0003)
    # Every Logs API query is scoped to one gateway and ordered by time.
    Index("ix_request_logs_gateway_time", "account_id", "gateway_id", "created_at", "id"),
)

provider_config_activity = Table(
    "provider_config_activity",
    metadata,
    Column("config_id", String(32), primary_key=True),
    Column("account_id", String(32), nullable=False),
    Column("gateway_id", String(64), nullable=False),
    Column("last_used_at", String(30)),
    Column("request_count", BigInteger, nullable=False),
    Column("error_count", BigInteger, nullable=False),
    Index("ix_activity_gateway", "account_id", "gateway_id"),
)

# Per gateway, never less than its stored logs: the log writer adds what it inserts and takes off what
# it deletes, under a per-gateway lock; other deletes (Logs API) leave it high, and the writer counts
# exactly whenever the bound says a batch might pass the gateway's log_management limit.
log_counts = Table(
    "log_counts",
    metadata,
    Column("account_id", String(32), primary_key=True),
    Column("gateway_id", String(64), primary_key=True),
    Column("stored", BigInteger, nullable=False),
)
