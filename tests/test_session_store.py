"""Passwords and browser sessions in the store (``hub.session_store``), SQLite and
PostgreSQL; and ``gpshub user passwd``."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.cli import main
from hub.config import Settings
from hub.core import Hub
from hub.models import Role
from hub.passwords import hash_password, needs_rehash, verify_password
from hub.store import Store

T = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
IDLE = timedelta(minutes=30)
DAY = timedelta(hours=12)


def test_password_hashes() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$n=16384,r=8,p=2$") and not needs_rehash(stored)
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert hash_password("correct horse battery") != stored  # salted
    # NFC: the same password typed with a combining accent
    assert verify_password("caf\u0065\u0301 au lait!", hash_password("caf\u00e9 au lait!"))
    for broken in (None, "", "scrypt$n=3,r=8,p=1$AA$AA", "md5$x", "scrypt$n=16384$a$b"):
        assert not verify_password("correct horse battery", broken)


def test_sessions(store: Store) -> None:
    client = store.create_client("ACME").id or 0
    user = store.create_user("ann", Role.VIEWER, client).id or 0
    other = store.create_user("ann", Role.VIEWER, store.create_client("Other").id).id or 0
    sessions = store.sessions
    assert sessions.sign_in_candidates("ann", None) == []  # no password: no sign-in
    sessions.set_password(user, hash_password("correct horse battery"))
    sessions.set_password(other, hash_password("correct horse battery"))
    assert [u.id for u in sessions.sign_in_candidates("ann", None)] == [user, other]
    assert [u.id for u in sessions.sign_in_candidates("ann", "ACME")] == [user]
    assert [u.id for u in sessions.sign_in_candidates("ann", str(client))] == [user]
    assert sessions.sign_in_candidates("ann", "nobody") == []

    one, plain = sessions.create(user, T, DAY, user_agent="Firefox", address="192.0.2.1")
    assert plain not in (one.session_hash, one.csrf_token) and len(plain) >= 43
    check = sessions.check(plain, T + timedelta(minutes=10), IDLE)
    assert check.user is not None and check.user.id == user and check.session is not None
    assert check.session.last_seen_at == T + timedelta(minutes=10)
    assert sessions.check(plain + "x", T, IDLE).reason == "unknown or ended session"
    assert sessions.check(plain, T + timedelta(minutes=41), IDLE).reason == "session idle too long"
    assert sessions.check(plain, T + timedelta(minutes=42), IDLE).reason.startswith("unknown")

    _, plain2 = sessions.create(user, T, DAY)
    three, plain3 = sessions.create(user, T, DAY)
    assert sessions.check(plain2, T + DAY, IDLE).reason == "session expired"
    sessions.set_password(user, hash_password("another good one"), keep_session=three.id)
    assert sessions.check(plain3, T, IDLE).session is not None
    assert sessions.end(plain3) is not None and sessions.end(plain3) is None
    assert sessions.check(plain3, T, IDLE).session is None

    _, plain4 = sessions.create(user, T, DAY)
    store.delete_user(user)
    assert sessions.check(plain4, T, IDLE).session is None
    _, plain5 = sessions.create(other, T, DAY)
    assert sessions.prune(T + timedelta(hours=1), IDLE) >= 1
    assert sessions.list(other) == []
    assert sessions.check(plain5, T, IDLE).session is None


def test_cli_passwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GPSHUB_SECRET_KEY", raising=False)

    def run(*argv: str, code: int = 0) -> str:
        capsys.readouterr()
        assert main(["--data-dir", str(tmp_path), *argv]) == code
        captured = capsys.readouterr()
        return captured.out + captured.err

    run("client", "add", "ACME")
    run("token", "create", "--client", "ACME", "--user", "ann")
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    out = run("user", "passwd", "ann", "--client", "ACME", "--stdin")
    assert "correct horse" not in out and "password of 'ann' set" in out
    prompts = iter(["first password!", "second password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(prompts))
    assert "differ" in run("user", "passwd", "ann", "--client", "ACME", code=2)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "short")
    assert "at least 10" in run("user", "passwd", "ann", "--client", "ACME", code=2)
    assert "no user 'ann'" in run("user", "passwd", "ann", code=2)  # not an administrator

    hub = Hub.open(Settings.load(data_dir=tmp_path))
    try:
        users = [u for u in hub.store.list_users() if u.name == "ann"]
        assert verify_password("correct horse battery", users[0].password_hash)
    finally:
        hub.store.close()
