"""The change feed records the writing transaction's id (PostgreSQL), so a reader can tell which
rows may still be missing: sequence values are taken at insert but become visible at commit, out of
order (docs/scale-out.md#changes-between-instances). Null on SQLite, whose writers commit in order.

Revision ID: 0005_change_feed_xid
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_change_feed_xid"
down_revision = "0004_token_restrictions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("xid", sa.BigInteger))
    op.create_index("ix_changes_xid", "changes", ["xid"])  # each feed read is a range on it


def downgrade() -> None:
    op.drop_index("ix_changes_xid", "changes")
    with op.batch_alter_table("changes") as batch:
        batch.drop_column("xid")
