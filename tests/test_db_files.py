"""The SQLite database and its WAL and shared-memory files are private (0600), like the
key file, whatever the umask; an older database that others could read is narrowed."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.secrets import SecretBox
from hub.store import Store


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what most systems have: files 0644 unless asked otherwise
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_something(path: Path, name: str = "Client A") -> Store:
    store = Store.open(f"sqlite:///{path}", SecretBox([SecretBox.generate_key().encode()]))
    store.create_client(name)
    return store


@pytest.mark.usefixtures("loose_umask")
def test_a_new_database_and_its_wal_are_0600(tmp_path: Path) -> None:
    db = tmp_path / "gpshub.db"
    store = write_something(db)
    try:
        files = [db, db.with_name("gpshub.db-wal"), db.with_name("gpshub.db-shm")]
        for file in files:
            assert file.exists(), file
            assert mode(file) == 0o600, (file, oct(mode(file)))
    finally:
        store.close()


@pytest.mark.usefixtures("loose_umask")
def test_an_existing_readable_database_is_narrowed(tmp_path: Path) -> None:
    db = tmp_path / "gpshub.db"
    write_something(db).close()
    db.chmod(0o644)
    wal = db.with_name("gpshub.db-wal")
    wal.touch()
    wal.chmod(0o644)
    store = write_something(db, "Client B")
    try:
        assert mode(db) == 0o600 and mode(wal) == 0o600
    finally:
        store.close()
