"""Table definitions used by the queries: the one ``metadata`` (``log_tables.py`` adds its tables to
it). Migrations (``migrations/versions``) create them; they are written out there on purpose,
because a migration must not change when this file does. tests/store/test_schema_matches_migrations.py
checks that the two agree, constraints and indexes included."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("created_at", String(30), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("api_key_hash", String(64), nullable=False, unique=True),
    Column("created_at", String(30), nullable=False),
)

account_members = Table(
    "account_members",
    metadata,
    Column("account_id", String(32), primary_key=True),
    Column("user_id", String(32), primary_key=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("value_hash", String(64), nullable=False, unique=True),
    Column("permissions", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires_on", String(30)),
    Column("last_used_on", String(30)),
    Column("issued_on", String(30), nullable=False),
    Column("modified_on", String(30), nullable=False),
    Column("not_before", String(30)),
    Column("condition", Text),  # {"request_ip": {"in": [...], "not_in": [...]}} as JSON, or NULL
    Column("policies", Text),  # the policies as granted (JSON), or NULL for tokens made before them
)

gateways = Table(
    "gateways",
    metadata,
    Column("account_id", String(32), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("body", Text, nullable=False),
    Column("created_at", String(30), nullable=False),
    Column("modified_at", String(30), nullable=False),
)

stores = Table(
    "stores",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("created", String(30), nullable=False),
    Column("modified", String(30), nullable=False),
    UniqueConstraint("account_id", "name", name="uq_stores_account_name"),  # 409 on a duplicate store name
)

secrets = Table(
    "secrets",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), nullable=False),
    Column("store_id", String(32), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("comment", Text),
    Column("status", String(16), nullable=False),
    Column("preview", String(32), nullable=False),
    Column("created_by", String(32)),
    Column("kek_id", String(16), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("created", String(30), nullable=False),
    Column("modified", String(30), nullable=False),
    UniqueConstraint("store_id", "name", name="uq_secrets_store_name"),  # 409 on a duplicate secret name
)

provider_configs = Table(
    "provider_configs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), nullable=False),
    Column("gateway_id", String(64), nullable=False),
    Column("provider_slug", String(64), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("default_config", Boolean, nullable=False),
    Column("secret_id", String(32), nullable=False),
    Column("rate_limit", Integer),
    Column("rate_limit_period", Integer, nullable=False),
    Column("created_at", String(30), nullable=False),
    Column("modified_at", String(30), nullable=False),
    # 409 on a duplicate alias for one provider on one gateway
    UniqueConstraint("account_id", "gateway_id", "provider_slug", "alias", name="uq_configs_alias"),
    Index("ix_configs_gateway", "account_id", "gateway_id"),
)

custom_providers = Table(
    "custom_providers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), nullable=False),
    Column("slug", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("base_url", Text, nullable=False),
    Column("enable", Boolean, nullable=False),
    Column("beta", Boolean, nullable=False),
    Column("position", Integer, nullable=False),
    Column("description", Text),
    Column("curl_example", Text),
    Column("js_example", Text),
    Column("link", Text),
    Column("auth_header", String(64), nullable=False),
    Column("auth_scheme", String(64), nullable=False),
    Column("header_names", Text),  # JSON list of the extra headers' names; their values are a secret
    Column("headers_secret_id", String(32)),  # the sealed extra headers (secrets table), or NULL
    Column("created_at", String(30), nullable=False),
    Column("modified_at", String(30), nullable=False),
    UniqueConstraint("account_id", "slug", name="uq_custom_providers_slug"),  # 409 on a duplicate slug
)

changes = Table(
    "changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("created_at", String(30), nullable=False),
    # PostgreSQL: the writing transaction's id (pg_current_xact_id); the feed reader uses it to know
    # which rows may still commit below what it has read. Null on SQLite (writers commit in order).
    Column("xid", BigInteger),
    Index("ix_changes_xid", "xid"),  # each feed read is a range on it
)

# -- dynamic routes: a route, its immutable versions (the elements as sent) and its deployments ------

dynamic_routes = Table(
    "dynamic_routes",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), nullable=False),
    Column("gateway_id", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("deployed_version_id", String(32), nullable=False),  # the live version (a route has one)
    Column("created_at", String(30), nullable=False),
    Column("modified_at", String(30), nullable=False),
    # 409 on a duplicate name on one gateway: "dynamic/{name}" must name one route
    UniqueConstraint("account_id", "gateway_id", "name", name="uq_routes_name"),
)

dynamic_route_versions = Table(
    "dynamic_route_versions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("route_id", String(32), nullable=False),
    Column("seq", Integer, nullable=False),  # 1, 2, …: the order of the history
    Column("elements", Text, nullable=False),  # JSON, as validated and stored; never changed
    Column("created_at", String(30), nullable=False),
    UniqueConstraint("route_id", "seq", name="uq_route_versions_seq"),
)

dynamic_route_deployments = Table(
    "dynamic_route_deployments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("route_id", String(32), nullable=False),
    Column("version_id", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("created_at", String(30), nullable=False),
    UniqueConstraint("route_id", "seq", name="uq_route_deployments_seq"),
)
