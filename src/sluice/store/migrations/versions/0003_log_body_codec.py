"""Request-log bodies may be stored compressed: ``body_codec`` says which (see logs/bodies.py).

Revision ID: 0003_log_body_codec
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_log_body_codec"
down_revision = "0002_request_logs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("request_logs") as batch:
        batch.add_column(sa.Column("body_codec", sa.SmallInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("request_logs") as batch:
        batch.drop_column("body_codec")
