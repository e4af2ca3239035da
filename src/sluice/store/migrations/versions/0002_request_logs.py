"""Request logs and provider-key activity.

Revision ID: 0002_request_logs
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_request_logs"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_logs",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("gateway_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(30), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256)),
        sa.Column("model_type", sa.String(32)),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("duration", sa.Integer, nullable=False),
        sa.Column("tokens_in", sa.Integer),
        sa.Column("tokens_out", sa.Integer),
        sa.Column("cost", sa.Float),
        sa.Column("custom_cost", sa.Boolean, nullable=False),
        sa.Column("metadata", sa.Text),
        sa.Column("request_content_type", sa.String(255)),
        sa.Column("response_content_type", sa.String(255)),
        sa.Column("request_type", sa.String(32)),
        sa.Column("user_agent", sa.Text),
        sa.Column("event_id", sa.String(255)),
        sa.Column("alias", sa.String(64)),
        sa.Column("config_id", sa.String(32)),
        sa.Column("request_size", sa.BigInteger, nullable=False),
        sa.Column("response_size", sa.BigInteger, nullable=False),
        sa.Column("request_body", sa.LargeBinary),
        sa.Column("response_body", sa.LargeBinary),
        sa.Column("feedback", sa.Integer),
        sa.Column("score", sa.Float),
        sa.Column("step", sa.Integer),
        sa.Column("error", sa.Text),
    )
    # Every Logs API query is scoped to one gateway and ordered by time.
    op.create_index("ix_request_logs_gateway_time", "request_logs",
                    ["account_id", "gateway_id", "created_at", "id"])
    op.create_table(
        "provider_config_activity",
        sa.Column("config_id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("gateway_id", sa.String(64), nullable=False),
        sa.Column("last_used_at", sa.String(30)),
        sa.Column("request_count", sa.BigInteger, nullable=False),
        sa.Column("error_count", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_activity_gateway", "provider_config_activity", ["account_id", "gateway_id"])


def downgrade() -> None:
    op.drop_table("provider_config_activity")
    op.drop_table("request_logs")
