"""Initial schema: identity, gateways, secrets store, provider configs, change feed.

Revision ID: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(30), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
        _ts("created_at"),
    )
    op.create_table(
        "account_members",
        sa.Column("account_id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), primary_key=True),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("permissions", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("expires_on", True),
        _ts("last_used_on", True),
        _ts("issued_on"),
        _ts("modified_on"),
    )
    op.create_table(
        "gateways",
        sa.Column("account_id", sa.String(32), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        _ts("created_at"),
        _ts("modified_at"),
    )
    op.create_table(
        "stores",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        _ts("created"),
        _ts("modified"),
        sa.UniqueConstraint("account_id", "name", name="uq_stores_account_name"),
    )
    op.create_table(
        "secrets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("store_id", sa.String(32), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("preview", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(32)),
        sa.Column("kek_id", sa.String(16), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        _ts("created"),
        _ts("modified"),
        sa.UniqueConstraint("store_id", "name", name="uq_secrets_store_name"),
    )
    op.create_table(
        "provider_configs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("gateway_id", sa.String(64), nullable=False),
        sa.Column("provider_slug", sa.String(64), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("default_config", sa.Boolean, nullable=False),
        sa.Column("secret_id", sa.String(32), nullable=False),
        sa.Column("rate_limit", sa.Integer),
        sa.Column("rate_limit_period", sa.Integer, nullable=False),
        _ts("created_at"),
        _ts("modified_at"),
        sa.UniqueConstraint("account_id", "gateway_id", "provider_slug", "alias", name="uq_configs_alias"),
    )
    op.create_index("ix_configs_gateway", "provider_configs", ["account_id", "gateway_id"])
    op.create_table(
        "changes",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        _ts("created_at"),
    )
