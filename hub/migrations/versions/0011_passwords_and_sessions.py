"""Users' passwords and browser sessions

Revision ID: 0011
Revises: 0010
Create Date: 2027-03-01

Existing users have no password (``NULL``): they keep using their API tokens until a
password is set for them.  ``browser_sessions`` keeps signed-in browsers, by the
SHA-256 of their cookie.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("password_hash", sa.String(length=300), nullable=True))
    op.create_table(
        "browser_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_browser_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_browser_sessions")),
        sa.UniqueConstraint("session_hash", name=op.f("uq_browser_sessions_session_hash")),
        sqlite_autoincrement=True,  # ids never reused, like every table's (0006)
    )
    op.create_index(
        op.f("ix_browser_sessions_user_id"), "browser_sessions", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_browser_sessions_user_id"), table_name="browser_sessions")
    op.drop_table("browser_sessions")
    # rebuilt on SQLite: keep AUTOINCREMENT (ids never reused), which reflection misses
    with op.batch_alter_table(
        "users", schema=None, table_kwargs=hub.models.IDS_NEVER_REUSED
    ) as batch_op:
        batch_op.drop_column("password_hash")
