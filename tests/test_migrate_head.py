"""``db.migrate`` leaves a database already at the head without Alembic, and hands every
other one to Alembic: one behind is upgraded, the head read from the migration files is
Alembic's own, and files it cannot read plainly make it ask Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from hub import db


def test_the_head_read_from_the_files_is_alembics() -> None:
    scripts = ScriptDirectory.from_config(db.alembic_config(sa.create_engine("sqlite://")))
    assert [db.script_head()] == scripts.get_heads()


@pytest.fixture
def upgrades(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The revisions ``alembic.command.upgrade`` is called with (it still runs)."""
    calls: list[str] = []
    upgrade = command.upgrade

    def spy(config: Any, revision: str, **kw: Any) -> None:
        calls.append(revision)
        upgrade(config, revision, **kw)

    monkeypatch.setattr(command, "upgrade", spy)
    return calls


def test_only_a_database_behind_the_head_is_handed_to_alembic(
    db_url: str, upgrades: list[str]
) -> None:
    engine = db.create_engine(db_url)
    try:
        head = db.script_head()
        db.migrate(engine)  # a new database
        assert upgrades == ["head"] and db.current_revision(engine) == head
        db.migrate(engine)  # at the head: left as it is
        assert upgrades == ["head"]
        command.downgrade(db.alembic_config(engine), "-1")
        db.migrate(engine)  # one behind: upgraded
        assert upgrades == ["head", "head"] and db.current_revision(engine) == head
        db.migrate(engine, "head")
        db.migrate(engine, head or "")  # a named revision always goes to Alembic
        assert upgrades == ["head", "head", head]
    finally:
        engine.dispose()


def test_a_database_stamped_with_another_revision_goes_to_alembic(
    tmp_path: Path, upgrades: list[str]
) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    db.migrate(engine)
    with engine.begin() as conn:  # a revision these files do not have (a newer gpshub's)
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(Exception, match="ffff"):
        db.migrate(engine)  # Alembic says it does not know it, as before
    assert upgrades == ["head", "head"]
    engine.dispose()


def write_versions(folder: Path, *files: str) -> Path:
    versions = folder / "versions"
    versions.mkdir(parents=True)
    for i, text in enumerate(files):
        (versions / f"{i:04}_m.py").write_text(text)
    return folder


@pytest.mark.parametrize(
    ("files", "head"),
    [
        (['revision = "a"\ndown_revision = None\n', 'revision = "b"\ndown_revision = "a"\n'], "b"),
        (  # annotated, single quotes, comments, other assignments
            [
                "revision: str = 'a'  # first\ndown_revision: str | None = None\n"
                "branch_labels = None\ndepends_on = None\n",
                '"""Revision ID: b"""\nrevision: str = "b"\ndown_revision: str | None = "a"\n',
            ],
            "b",
        ),
        (
            ['revision = "a"\ndown_revision = None\n', 'revision = "b"\ndown_revision = None\n'],
            None,
        ),
        (
            [
                'revision = "a"\ndown_revision = None\n',
                'revision = "b"\ndown_revision = "a"\n',
                'revision = "c"\ndown_revision = "a"\n',
                'revision = "d"\ndown_revision = ("b", "c")\n',
            ],
            None,
        ),
        (['revision = "b"\ndown_revision = "a"\n'], None),  # a parent that is not there
        (['revision = "a"\ndown_revision = None\ndepends_on = "x"\n'], None),
        (["revision = make()\ndown_revision = None\n"], None),
        (['revision = "a"\nrevision = "b"\ndown_revision = None\n'], None),
        (["down_revision = None\n"], None),
    ],
)
def test_files_it_cannot_read_plainly_leave_the_head_to_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: list[str], head: str | None
) -> None:
    monkeypatch.setattr(db, "MIGRATIONS_DIR", write_versions(tmp_path, *files))
    db.script_head.cache_clear()
    try:
        assert db.script_head() == head
    finally:
        db.script_head.cache_clear()
