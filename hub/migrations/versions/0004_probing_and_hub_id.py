"""delivery: a sink's probing state survives restarts; the hub's id

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sinks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("probe_at", hub.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("probe_interval_s", sa.Float(), nullable=True))

    meta = op.create_table(
        "hub_meta",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_hub_meta")),
    )
    # made once, here: every webhook-id carries it (see hub.models.HubMeta)
    op.bulk_insert(meta, [{"key": "hub_id", "value": hub.models.new_hub_id()}])


def downgrade() -> None:
    op.drop_table("hub_meta")
    with op.batch_alter_table("sinks", schema=None) as batch_op:
        batch_op.drop_column("probe_interval_s")
        batch_op.drop_column("probe_at")
