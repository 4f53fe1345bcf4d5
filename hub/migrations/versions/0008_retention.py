"""retention: clients' positions and alerts retention; outbox rows found by position

Revision ID: 0008
Revises: 0007
Create Date: 2027-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: kept forever, which is what every existing client had
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("positions_retention_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("alerts_retention_days", sa.Integer(), nullable=True))
    # pruning positions asks "does a waiting message still refer to this one?"
    op.create_index("ix_outbox_ref_id", "outbox", ["ref_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_ref_id", table_name="outbox")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("alerts_retention_days")
        batch_op.drop_column("positions_retention_days")
