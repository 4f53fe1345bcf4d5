"""``gpshub token create|list|revoke``, in-process on a temporary data directory."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.cli import build_parser, main
from hub.config import Settings
from hub.core import Hub


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("GPSHUB_SECRET_KEY", raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*argv: str, code: int = 0) -> str:
        capsys.readouterr()
        assert main(["--data-dir", str(tmp_path), *argv]) == code
        captured = capsys.readouterr()
        return captured.out + captured.err

    return run


def authenticate(tmp_path: Path, token: str) -> bool:
    hub = Hub.open(Settings.load(data_dir=tmp_path))
    try:
        return hub.store.authenticate(token) is not None
    finally:
        hub.store.close()


def test_create_list_and_revoke(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("client", "add", "ACME")
    before = datetime.now(UTC)
    out = cli("token", "create", "--name", "ci", "--expires-in", "30d")
    (admin,) = re.findall(r"gph_\w+", out)
    assert "expires " in out and authenticate(tmp_path, admin)
    out = cli(
        "token", "create", "--client", "ACME", "--user", "ana", "--role", "viewer",
        "--expires-at", "2099-01-01T00:00Z",
    )  # fmt: skip
    (viewer,) = re.findall(r"gph_\w+", out)
    cli("token", "create", "--client", "ACME", "--user", "ana", "--name", "forever")

    listed = json.loads(cli("token", "list", "--json"))
    assert [(t["id"], t["user"], t["name"]) for t in listed] == [
        (1, "admin", "ci"),
        (2, "ana", "created with gpshub token create"),
        (3, "ana", "forever"),
    ]
    expires = datetime.fromisoformat(listed[0]["expires_at"])
    assert timedelta(days=30) <= expires - before <= timedelta(days=30, minutes=5)
    assert listed[1]["expires_at"] == "2099-01-01T00:00:00Z" and listed[2]["expires_at"] is None
    assert listed[0]["prefix"] == admin[:10] and not listed[0]["expired"]
    assert admin not in cli("token", "list") and viewer not in cli("token", "list", "--json")
    table = cli("token", "list", "--client", "ACME")
    assert "ana" in table and "admin" not in table and "2099-01-01 00:00 UTC" in table
    assert [t["id"] for t in json.loads(cli("token", "list", "--user", "ana", "--json"))] == [2, 3]

    assert "revoked token 2" in cli("token", "revoke", "2")
    assert not authenticate(tmp_path, viewer) and authenticate(tmp_path, admin)
    assert "no token 2" in cli("token", "revoke", "2", code=2)
    assert [t["id"] for t in json.loads(cli("token", "list", "--json"))] == [1, 3]


def test_bad_expiries_are_explained(cli) -> None:  # type: ignore[no-untyped-def]
    for args, words in (
        (["--expires-in", "30"], "with its unit"),
        (["--expires-in=-3d"], "positive duration"),
        (["--expires-in", "soon"], "e.g. 30d"),
        (["--expires-at", "2099-01-01"], "time zone"),
        (["--expires-at", "2001-01-01T00:00Z"], "in the future"),
    ):
        assert words in cli("token", "create", *args, code=2), args
    with pytest.raises(SystemExit):
        build_parser().parse_args(["token", "create", "--expires-in", "1d", "--expires-at", "x"])
    assert json.loads(cli("token", "list", "--json")) == []
