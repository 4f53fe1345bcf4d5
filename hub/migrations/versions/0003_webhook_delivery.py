"""webhook delivery: sinks, pending, dead letters

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sinks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("format", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "format_options",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("failing_after_s", sa.Integer(), nullable=True),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("inflight_upto", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failing_since", hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.Column("failed_attempts", sa.BigInteger(), nullable=False),
        sa.Column("created_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_sinks_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sinks")),
    )
    with op.batch_alter_table("sinks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sinks_client_id"), ["client_id"], unique=False)

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sink_id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.String(length=100), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("created_at", hub.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sink_id"],
            ["sinks.id"],
            name=op.f("fk_dead_letters_sink_id_sinks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index("ix_dead_letters_sink_id_id", ["sink_id", "id"], unique=False)

    op.create_table(
        "sink_pending",
        sa.Column("sink_id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_failed_at", hub.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivery_id", sa.String(length=100), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sink_id"],
            ["sinks.id"],
            name=op.f("fk_sink_pending_sink_id_sinks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sink_id", "outbox_id", name=op.f("pk_sink_pending")),
    )
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("webhook", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    # SQLite: AUTOINCREMENT, so an id is never given out again once its row is pruned
    # (sinks read the outbox by id); the table is rebuilt for it.
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "outbox",
        schema=None,
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch_op:
        batch_op.add_column(sa.Column("sink_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_sink_id_sinks"), "sinks", ["sink_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_outbox_sink_id_sinks"), type_="foreignkey")
        batch_op.drop_column("sink_id")

    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.drop_column("webhook")

    op.drop_table("sink_pending")
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index("ix_dead_letters_sink_id_id")

    op.drop_table("dead_letters")
    with op.batch_alter_table("sinks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sinks_client_id"))

    op.drop_table("sinks")
