"""Alembic environment: the engine is handed in by ``hub.db.migrate``."""

from __future__ import annotations

from alembic import context

from hub import models
from hub.db import WRITE

target_metadata = models.metadata
engine = context.config.attributes["engine"]

with engine.connect() as connection:
    connection = connection.execution_options(**WRITE)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
