"""API tokens' scope: "all", or "metrics" (may only read /metrics)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # existing tokens keep what they could do: everything their user's role allows
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scope", sa.String(length=20), server_default="all", nullable=False)
        )


def downgrade() -> None:
    # a metrics token without its scope would be a full administrator token: drop it
    op.execute("DELETE FROM api_tokens WHERE scope <> 'all'")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("scope")
