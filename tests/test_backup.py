"""``gpshub backup``: a consistent copy while a writer writes, restored into a running hub."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

from hub.cli import main
from hub.config import Settings
from hub.core import Hub
from hub.fix import PositionFix
from hub.positions import CursorUpdate, IngestItem
from hub.secrets import SecretBox, SecretError
from hub.source import Cursor
from hub.store import Store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
BATCH = 50
CREDENTIALS = {"waypoints": "14.6,-90.5\n14.7,-90.6", "speed_kmh": "50"}


def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GPSHUB_")}


class Writer(threading.Thread):
    """Commits batches of positions (and the connection's counter, in the same
    transaction) until stopped."""

    def __init__(self, store: Store, connection_id: int, device_id: int) -> None:
        super().__init__(daemon=True)
        self.store, self.connection_id, self.device_id = store, connection_id, device_id
        self.batches = 0
        self.stop = threading.Event()
        self.started_writing = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            n = self.batches * BATCH
            fixes = [
                IngestItem(
                    self.device_id,
                    self.connection_id,
                    PositionFix(T0 + timedelta(seconds=n + i), 14.6, -90.5, speed_kmh=40.0),
                )
                for i in range(BATCH)
            ]
            last = T0 + timedelta(seconds=n + BATCH - 1)
            cursor = CursorUpdate(self.device_id, self.connection_id, Cursor(last, {}))
            self.store.positions.write_batch(fixes, [cursor])
            self.batches += 1
            if self.batches >= 5:
                self.started_writing.set()


def test_a_backup_while_writing_is_consistent_and_a_restored_copy_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    settings = Settings.load(environ={}, data_dir=data)
    store = Store.open(settings.db_url, SecretBox.from_env_or_file(data, environ={}))
    client = store.create_client("ACME").id or 0
    conn = store.create_connection(client, "simulator", "van", CREDENTIALS, enabled=False)
    device = store.create_device(client, name="van", connection_id=conn.id, upstream_id="v1")
    writer = Writer(store, conn.id or 0, device.id or 0)
    writer.start()
    try:
        assert writer.started_writing.wait(60)
        copy = tmp_path / "backups" / "gpshub-copy.db"
        copy.parent.mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "hub.cli", "--data-dir", str(data), "backup", str(copy)],
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        during = writer.batches
        assert done.returncode == 0, done.stderr
        while writer.batches < during + 3:  # the writer went on meanwhile
            assert writer.is_alive()
            time.sleep(0.01)
    finally:
        writer.stop.set()
        writer.join()
    assert str(copy) in done.stdout.replace("\n", "")
    warning = " ".join(done.stderr.split())
    assert "warning" in warning and str(data / "secret.key") in warning
    assert "without it the encrypted credentials in the copy are useless" in warning
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert sorted(p.name for p in copy.parent.iterdir()) == ["gpshub-copy.db"]

    with closing(sqlite3.connect(copy)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        (count,) = db.execute("SELECT count(*) FROM positions").fetchone()
        (received,) = db.execute("SELECT positions_received FROM connections").fetchone()
    total = store.positions.count()
    store.close()
    # whole transactions only: every batch with its counter, and not the later ones
    assert count > 0 and count % BATCH == 0 and received == count and count < total

    # restore: stop, put the copy in place of the database, keep the key
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(copy, restored / "gpshub.db")
    shutil.copy(data / "secret.key", restored / "secret.key")
    hub = Hub.open(Settings.load(environ={}, data_dir=restored))

    async def run_briefly() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            assert hub.running
            hub.shutdown()

    trio.run(run_briefly)
    assert hub.store.positions.count() == count
    (conn_row,) = hub.store.list_connections()
    assert hub.store.connection_credentials(conn_row) == CREDENTIALS
    hub.store.close()

    # without the key, the copy's credentials are lost: what the warning says
    keyless = tmp_path / "keyless"
    keyless.mkdir()
    shutil.copy(copy, keyless / "gpshub.db")
    other = Hub.open(Settings.load(environ={}, data_dir=keyless))
    with pytest.raises(SecretError):
        other.store.connection_credentials(other.store.list_connections()[0])
    other.store.close()


def test_backup_refuses_what_it_cannot_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GPSHUB_SECRET_KEY", raising=False)
    target = tmp_path / "copy.db"
    pg = "postgresql+psycopg://hub:secret@db.example/gpshub"
    assert main(["--database-url", pg, "backup", str(target)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "pg_dump" in err and "README" in err and "secret" not in err
    assert not target.exists()

    assert main(["--data-dir", str(tmp_path / "none"), "backup", str(target)]) == 2
    assert "no database at" in capsys.readouterr().err

    data = tmp_path / "data"
    Store.open(Settings.load(environ={}, data_dir=data).db_url, SecretBox.from_env_or_file(data))
    target.write_text("keep me")
    assert main(["--data-dir", str(data), "backup", str(target)]) == 2
    assert "--force" in capsys.readouterr().err and target.read_text() == "keep me"
    assert main(["--data-dir", str(data), "backup", "--force", str(target)]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with closing(sqlite3.connect(target)) as db:
        assert db.execute("SELECT count(*) FROM clients").fetchone() == (0,)
    monkeypatch.setenv("GPSHUB_SECRET_KEY", SecretBox.generate_key())
    assert main(["--data-dir", str(data), "backup", "--force", str(target)]) == 0
    assert "the value of GPSHUB_SECRET_KEY" in " ".join(capsys.readouterr().err.split())
