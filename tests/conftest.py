"""Shared fixtures: a store on SQLite and on PostgreSQL.

PostgreSQL tests use ``GPSHUB_TEST_POSTGRES_URL`` (default: the local server, database
``test``), each in a schema of its own.  Without a reachable server they are skipped
with the reason shown; with ``GPSHUB_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) they fail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.hub_driver import postgres_schema
from hub.secrets import SecretBox
from hub.store import Store

# the tests' shared helpers (test_processes: real gpshub processes) import by name
sys.path.insert(0, str(Path(__file__).parent))

PG_URL = os.environ.get(
    "GPSHUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_PG = os.environ.get("GPSHUB_REQUIRE_POSTGRES") == "1"
_pg_reason: list[str | None] = []


def _pg_unavailable() -> str | None:
    if not _pg_reason:
        try:
            engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            engine.dispose()
            _pg_reason.append(None)
        except Exception as exc:
            _pg_reason.append(f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}")
    return _pg_reason[0]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema."""
    reason = _pg_unavailable()
    if reason:
        if REQUIRE_PG:
            pytest.fail(reason + " (GPSHUB_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    with postgres_schema(PG_URL) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def secret_box() -> SecretBox:
    return SecretBox([SecretBox.generate_key().encode()])


@pytest.fixture
def store(db_url: str, secret_box: SecretBox) -> Iterator[Store]:
    s = Store.open(db_url, secret_box)
    try:
        yield s
    finally:
        s.close()
