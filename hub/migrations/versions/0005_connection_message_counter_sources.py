"""connection state message; devices' odometer and hour-meter sources

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state_message", sa.Text(), nullable=True))
    # connections waiting for new credentials or an edit are not polled: no next poll
    op.execute(
        "UPDATE connections SET next_poll_at = NULL"
        " WHERE state IN ('needs_reauth', 'bad_config', 'disabled')"
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("odometer_source", sa.String(length=20), server_default="hub", nullable=False)
        )
        batch_op.add_column(
            sa.Column("hours_source", sa.String(length=20), server_default="hub", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("hours_source")
        batch_op.drop_column("odometer_source")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_column("state_message")
