"""``custom_providers``: an account's own upstreams, reached as ``custom-{slug}``; their extra headers
are sealed in ``secrets`` (``headers_secret_id``).

Revision ID: 0007_custom_providers
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_custom_providers"
down_revision = "0006_log_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "custom_providers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("base_url", sa.Text, nullable=False),
        sa.Column("enable", sa.Boolean, nullable=False),
        sa.Column("beta", sa.Boolean, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("curl_example", sa.Text),
        sa.Column("js_example", sa.Text),
        sa.Column("link", sa.Text),
        sa.Column("auth_header", sa.String(64), nullable=False),
        sa.Column("auth_scheme", sa.String(64), nullable=False),
        sa.Column("header_names", sa.Text),
        sa.Column("headers_secret_id", sa.String(32)),
        sa.Column("created_at", sa.String(30), nullable=False),
        sa.Column("modified_at", sa.String(30), nullable=False),
        sa.UniqueConstraint("account_id", "slug", name="uq_custom_providers_slug"),
    )


def downgrade() -> None:
    op.drop_table("custom_providers")
