"""The ``gpshub`` command line, run in-process on a temporary data directory."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.cli import build_parser, main
from hub.config import Settings
from hub.core import Hub
from hub.fix import PositionFix
from hub.positions import IngestItem

ROUTE = "# depot\n14.60,-90.50,wait=5,ignition=false\n14.61,-90.51,speed=60,ignition=true\n"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("GPSHUB_SECRET_KEY", raising=False)

    def run(*argv: str, code: int = 0) -> str:
        capsys.readouterr()
        assert main(["--data-dir", str(tmp_path), *argv]) == code
        captured = capsys.readouterr()
        return captured.out + captured.err

    return run


def test_help_explains_each_command(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for cmd in (
        ["serve"],
        ["plugins"],
        ["token", "create"],
        ["connection", "add"],
        ["history", "export"],
    ):
        with pytest.raises(SystemExit):
            parser.parse_args([*cmd, "--help"])
        assert "usage: gpshub" in capsys.readouterr().out


def test_a_whole_session(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert "simulator" in cli("plugins")
    cli("client", "add", "ACME")
    assert json.loads(cli("client", "list", "--json")) == [{"id": 1, "name": "ACME"}]
    import re

    admin = re.findall(r"gph_\w+", cli("token", "create"))
    assert len(admin) == 1 and len(admin[0]) == 42
    viewer = cli("token", "create", "--client", "ACME", "--user", "ana", "--role", "viewer")
    assert "viewer" in viewer

    (tmp_path / "route.txt").write_text(ROUTE)
    out = cli(
        "connection",
        "add",
        "--kind",
        "simulator",
        "--label",
        "van",
        "-c",
        f"waypoints=@{tmp_path / 'route.txt'}",
        "-c",
        "speed_kmh=60",
    )
    assert "2 waypoints" in out and "connection 1: van" in out
    bad = cli(
        "connection",
        "add",
        "--kind",
        "simulator",
        "--label",
        "bad",
        "-c",
        "waypoints=91,0\n1,1",
        code=2,
    )
    assert "credentials.waypoints" in bad and "line 1" in bad
    private = cli(
        "connection", "add", "--kind", "traccar", "--label", "internal", "--no-test",
        "-c", "server_url=http://10.0.0.7:8082", "-c", "username=u", "-c", "password=p",
        code=2,
    )  # fmt: skip
    assert "credentials.server_url" in private and "private address" in private
    assert "unknown source kind 'nope'" in cli(
        "connection", "add", "--kind", "nope", "--label", "x", code=2
    )
    rows = json.loads(cli("connection", "list", "--json"))
    assert [(r["id"], r["kind"], r["state"]) for r in rows] == [(1, "simulator", "new")]
    assert "loop on" in cli("connection", "test", "1")
    assert "no remote device list" in cli("connection", "import", "1", code=2)

    hub = Hub.open(Settings(data_dir=tmp_path))
    dev = hub.store.create_device(
        1, name="van 1", remote_id="van-1", connection_id=1, upstream_id="van-1"
    )
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    hub.store.positions.write_batch(
        [
            IngestItem(
                dev.id,
                1,
                PositionFix(
                    t0 + timedelta(minutes=m), 14.6, -90.5, speed_kmh=m, sensors={"note": "=cmd"}
                ),
            )
            for m in range(3)
        ]
    )
    devices = json.loads(cli("devices", "--json"))
    assert devices[0]["remote_id"] == "van-1" and devices[0]["latest"]["speed_kmh"] == 2

    out_csv = tmp_path / "van.csv"
    cli("history", "export", str(dev.id), "--from", "2026-01-01T00:01Z", "-o", str(out_csv))
    table = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert [r["fix_time"] for r in table] == ["2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"]
    assert table[0]["sensors"].startswith('{"note"')
    out_geo = tmp_path / "van.geojson"
    cli("history", "export", str(dev.id), "--format", "geojson", "-o", str(out_geo))
    geo = json.loads(out_geo.read_text())
    assert len(geo["features"]) == 3 and geo["features"][0]["geometry"]["coordinates"] == [
        -90.5,
        14.6,
    ]
    assert "--from" in cli("history", "export", str(dev.id), "--from", "yesterday", code=2)
    assert "re-encrypted 1" in cli("secrets", "rotate")


def test_plugins_add_commands() -> None:
    import types

    from hub.hookspecs import hookimpl
    from hub.plugins import load_plugins

    mod = types.ModuleType("cmds")

    @hookimpl
    def register_commands(subparsers, hub_factory):  # type: ignore[no-untyped-def]
        p = subparsers.add_parser("hello", help="say hello")
        p.set_defaults(func=lambda args: print("hello", hub_factory.__name__))

    mod.register_commands = register_commands  # type: ignore[attr-defined]
    pm, _ = load_plugins(extra=[("cmds", mod)], use_entry_points=False)
    args = build_parser(pm).parse_args(["hello"])
    assert args.command == "hello" and callable(args.func)
