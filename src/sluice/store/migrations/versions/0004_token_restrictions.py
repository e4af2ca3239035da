"""Token restrictions: ``not_before``, ``condition`` (client-IP rule, JSON) and ``policies`` (JSON, as sent).

Revision ID: 0004_token_restrictions
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_token_restrictions"
down_revision = "0003_log_body_codec"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("not_before", sa.String(30)))
        batch.add_column(sa.Column("condition", sa.Text))
        batch.add_column(sa.Column("policies", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("policies")
        batch.drop_column("condition")
        batch.drop_column("not_before")
