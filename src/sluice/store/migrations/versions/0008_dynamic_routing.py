"""``dynamic_routes``, ``dynamic_route_versions``, ``dynamic_route_deployments``: Cloudflare's dynamic
routes, each change of elements an immutable version, each deployment a row of the history.

Revision ID: 0008_dynamic_routing
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_dynamic_routing"
down_revision = "0007_custom_providers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dynamic_routes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("gateway_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("deployed_version_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.String(30), nullable=False),
        sa.Column("modified_at", sa.String(30), nullable=False),
        sa.UniqueConstraint("account_id", "gateway_id", "name", name="uq_routes_name"),
    )
    op.create_table(
        "dynamic_route_versions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("route_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("elements", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(30), nullable=False),
        sa.UniqueConstraint("route_id", "seq", name="uq_route_versions_seq"),
    )
    op.create_table(
        "dynamic_route_deployments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("route_id", sa.String(32), nullable=False),
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(30), nullable=False),
        sa.UniqueConstraint("route_id", "seq", name="uq_route_deployments_seq"),
    )


    # a request log of a route's model call names the route, its version and the path taken
    op.add_column("request_logs", sa.Column("route", sa.String(64)))
    op.add_column("request_logs", sa.Column("route_version", sa.String(32)))
    op.add_column("request_logs", sa.Column("route_path", sa.Text))


def downgrade() -> None:
    for column in ("route_path", "route_version", "route"):
        op.drop_column("request_logs", column)
    op.drop_table("dynamic_route_deployments")
    op.drop_table("dynamic_route_versions")
    op.drop_table("dynamic_routes")
