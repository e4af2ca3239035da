"""``log_counts``: an upper bound of each gateway's stored request logs, shared by every process, so
the ``log_management`` cap is checked exactly without counting the logs on every batch.

Revision ID: 0006_log_counts
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_log_counts"
down_revision = "0005_change_feed_xid"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_counts",
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("gateway_id", sa.String(64), nullable=False),
        sa.Column("stored", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "gateway_id"),
    )


def downgrade() -> None:
    op.drop_table("log_counts")
