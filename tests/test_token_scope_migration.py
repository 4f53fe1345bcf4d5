"""Migration 0010 (tokens' ``scope``) on a filled database, on SQLite and PostgreSQL:
existing tokens keep working with scope "all"; down and up again keeps them."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from hub import db, tokens
from hub.secrets import SecretBox
from hub.store import Store

BEFORE = "0009"  # the revision 0010 follows


def test_existing_tokens_keep_their_powers(db_url: str, secret_box: SecretBox) -> None:
    engine = db.create_engine(db_url)
    db.migrate(engine, BEFORE)
    now = "'2026-01-01 00:00:00.000000'" if engine.dialect.name == "sqlite" else "now()"
    plain = [tokens.new_token() for _ in range(3)]
    with engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO clients (id, name, created_at) VALUES (1, 'c', {now})"))
        conn.execute(
            sa.text(
                "INSERT INTO users (id, name, role, client_id, created_at) VALUES "
                f"(1, 'root', 'admin', NULL, {now}), (2, 'ann', 'manager', 1, {now})"
            )
        )
        for i, token in enumerate(plain, start=1):
            conn.execute(
                sa.text(
                    "INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at)"
                    f" VALUES (:user, 'old', :prefix, :hash, {now})"
                ),
                {
                    "user": 1 if i == 1 else 2,
                    "prefix": tokens.display_prefix(token),
                    "hash": tokens.token_hash(token),
                },
            )
    engine.dispose()

    store = Store.open(db_url, secret_box)  # migrates to the newest schema
    try:
        assert [t.scope for t in store.list_tokens()] == ["all", "all", "all"]
        admin = store.authenticate(plain[0])
        manager = store.authenticate(plain[1])
        assert admin is not None and admin.is_admin and admin.token_scope == "all"
        assert manager is not None and manager.client_id == 1 and manager.token_scope == "all"
        _, metrics = store.create_token(1, "prometheus", "metrics")
        # down: the column goes, and the metrics token with it (without its scope it would
        # be an administrator's token); the others stay
        command.downgrade(db.alembic_config(store.engine), BEFORE)
        with store.engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM api_tokens")).scalar_one()
        assert count == 3
        db.migrate(store.engine)
        assert store.authenticate(plain[2]) is not None
        assert store.authenticate(metrics) is None
    finally:
        store.close()
