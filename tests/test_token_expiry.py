"""API tokens that expire, in the store, on SQLite and PostgreSQL, and the migration
that adds ``expires_at`` to a filled database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from hub import db, tokens
from hub.models import ApiToken, Role
from hub.secrets import SecretBox
from hub.store import Invalid, Store


def expire(store: Store, token_id: int, when: datetime) -> None:
    """Move a token's expiry (to the past: the store itself only takes future ones)."""
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(ApiToken).where(ApiToken.id == token_id).values(expires_at=when)  # type: ignore[arg-type]
        )


def test_a_token_stops_working_when_it_expires(store: Store) -> None:
    user = store.create_user("ann", Role.ADMIN, None)
    soon = datetime.now(UTC) + timedelta(hours=1)
    row, plain = store.create_token(user.id or 0, "ci", expires_at=soon)
    assert row.expires_at == soon
    (listed,) = store.list_tokens([user.id or 0])
    assert listed.expires_at == soon
    assert store.authenticate(plain) is not None

    expire(store, row.id or 0, datetime.now(UTC) - timedelta(seconds=1))
    assert store.authenticate(plain) is None
    assert store.check_token(plain).reason == "expired token"
    assert store.check_token(tokens.new_token()).reason == "unknown or revoked token"
    assert store.check_token("gph_nope").reason == "malformed token"

    _, forever = store.create_token(user.id or 0)
    assert store.authenticate(forever) is not None


def test_an_expiry_must_be_in_the_future_with_a_time_zone(store: Store) -> None:
    user = store.create_user("ann", Role.ADMIN, None)
    for when, reason in (
        (datetime.now(UTC) - timedelta(minutes=1), "in the future"),
        (datetime(2030, 1, 1), "time zone"),
    ):
        with pytest.raises(Invalid) as exc:
            store.create_token(user.id or 0, expires_at=when)
        assert exc.value.field == "expires_at" and reason in exc.value.reason
    assert store.list_tokens() == []


def test_the_migration_keeps_tokens_and_they_never_expire(
    db_url: str, secret_box: SecretBox
) -> None:
    engine = db.create_engine(db_url)
    db.migrate(engine, "0005")  # the revision before (the integrator may chain others)
    plain = tokens.new_token()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (id, name, role, created_at) VALUES (7, 'ops', 'admin', :t)"
            ),
            {"t": datetime(2026, 1, 1, tzinfo=UTC).isoformat(" ")},
        )
        conn.execute(
            sa.text(
                "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, created_at)"
                " VALUES (3, 7, 'old', :prefix, :hash, :t)"
            ),
            {
                "prefix": tokens.display_prefix(plain),
                "hash": tokens.token_hash(plain),
                "t": datetime(2026, 1, 2, tzinfo=UTC).isoformat(" "),
            },
        )
    engine.dispose()
    store = Store.open(db_url, secret_box)  # migrates to the newest schema
    try:
        (token,) = store.list_tokens()
        assert (token.id, token.name, token.expires_at) == (3, "old", None)
        principal = store.authenticate(plain)
        assert principal is not None and principal.user_id == 7
        later = datetime.now(UTC) + timedelta(days=30)
        row, _ = store.create_token(7, "new", expires_at=later)
        assert row.expires_at == later
    finally:
        store.close()
