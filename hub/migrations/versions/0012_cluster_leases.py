"""the cluster: hub processes sharing one PostgreSQL, and the leases they hold

Revision ID: 0012
Revises: 0011
Create Date: 2027-03-10

``cluster_nodes`` has a row per running process (its heartbeat), ``leases`` says which
process runs a connection, a sink or the maintenance until when (``hub.cluster``).
Only PostgreSQL uses them; on SQLite they stay empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.models

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_nodes",
        sa.Column("node_id", sa.String(length=40), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_cluster_nodes")),
    )
    op.create_table(
        "leases",
        sa.Column("resource", sa.String(length=100), nullable=False),
        sa.Column("owner", sa.String(length=40), nullable=False),
        sa.Column("acquired_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resource", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("cluster_nodes")
