"""API tokens may expire

Revision ID: 0007
Revises: 0006
Create Date: 2027-02-01

Existing tokens keep working: their ``expires_at`` is empty (never).  A plain
``ALTER TABLE … ADD COLUMN`` on both databases: the table is not rebuilt, so whatever
the table was created with (its rows, ``AUTOINCREMENT`` on SQLite) stays.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "api_tokens",
        sa.Column("expires_at", hub.models.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
