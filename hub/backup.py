"""Online backups of the SQLite database (``gpshub backup FILE``).

The copy is made with SQLite's online backup API in a single step: one read
transaction, so the copy is a consistent snapshot of every committed transaction up to
that moment, while the hub goes on writing (in WAL mode a reader never blocks the
writer).  It is written to a temporary file created with mode 0600 next to ``FILE``,
switched to a single-file journal, checked (``PRAGMA quick_check``) and only then
renamed to ``FILE``, so a failed backup never leaves a partial copy under that name.

The copy holds connection credentials, plugin sessions and sinks' secrets encrypted
with the hub's key, which is *not* in the database (``DATA_DIR/secret.key`` or
``GPSHUB_SECRET_KEY``): ``key_warning`` says so.  PostgreSQL databases are refused:
``pg_dump`` is the tool there (see "Backups" in the README).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from hub.config import Settings
from hub.errors import HubError
from hub.secrets import KEY_ENV, KEY_FILE


class BackupError(HubError):
    """The backup cannot be made; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    size: int  # bytes
    revision: str | None  # the schema's Alembic revision


def sqlite_file(database_url: str) -> Path:
    """The database file of a SQLite URL; ``BackupError`` for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"gpshub backup copies a SQLite database; this hub uses {url.get_backend_name()}. "
            "Back it up with pg_dump instead (see 'Backups' in the README)."
        )
    if not url.database or url.database == ":memory:":
        raise BackupError("the database is in memory: there is no file to back up")
    return Path(url.database)


def backup_database(database_url: str, target: Path, *, overwrite: bool = False) -> BackupResult:
    """Copy the SQLite database of ``database_url`` to ``target`` (see the module)."""
    source = sqlite_file(database_url)
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    target = Path(target).expanduser()
    if target.exists() and target.resolve() == source.resolve():
        raise BackupError("the copy cannot replace the database itself")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists: choose another name, or pass --force to replace it")
    if not target.parent.is_dir():
        raise BackupError(f"no directory {target.parent}")
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        with (
            closing(sqlite3.connect(source, timeout=30)) as src,
            closing(sqlite3.connect(partial)) as dst,
        ):
            src.backup(dst)  # the whole database in one step: one consistent snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"the copy failed its check: {check}")
            revision = _revision(dst)
        _fsync(partial)
        os.replace(partial, target)
        _fsync(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupResult(target, target.stat().st_size, revision)


def key_warning(settings: Settings, environ: dict[str, str] | None = None) -> str:
    """What the operator must keep besides the copy: the key, named where it is."""
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV, "").strip():
        where = f"the value of {KEY_ENV} (every key it lists)"
    else:
        where = f"the key file {settings.data_dir / KEY_FILE}"
    return (
        "the copy holds connection credentials and sink secrets encrypted with the hub's "
        f"key, which is not in it. Back up {where} separately, and keep it apart from "
        "the copy: without it the encrypted credentials in the copy are useless."
    )


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return str(row[0]) if row else None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
