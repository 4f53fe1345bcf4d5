"""The ``gpshub`` command line, run in-process on a temporary data directory."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import Iterator
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


# -- issue 12, item 9: the objects of a client, tables, pipes, the API's CSV -------------
T0 = datetime(2026, 1, 1, tzinfo=UTC)
FEATURES = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [-90.5123451, 14.6123456]},
            "properties": {"name": "Depot", "radius_m": 150, "contact": "Ana"},
        },
        {
            "type": "Feature",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[-90.5, 14.6], [-90.49, 14.6], [-90.49, 14.61], [-90.5, 14.6]]],
            },
            "properties": {"name": "Yard"},
        },
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[-90.5, 14.6], [-90.4, 14.7]]},
            "properties": {"name": "Road", "width_m": 50},
        },
    ],
}


def error_line(output: str) -> str:
    """The one error line a refused command prints."""
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


@contextlib.contextmanager
def open_hub(data_dir: Path) -> Iterator[Hub]:
    """The hub of a data directory, as another process would open it."""
    hub = Hub.open(Settings(data_dir=data_dir))
    try:
        yield hub
    finally:
        hub.store.close()


def fixes(hub: Hub, device_id: int, count: int, *, step_s: float = 60.0, **fields: object) -> None:
    hub.store.positions.write_batch(
        [
            IngestItem(
                device_id,
                None,
                PositionFix(
                    T0 + timedelta(seconds=step_s * i),
                    14.6123456 + i * 1e-6,
                    -90.5123451,
                    speed_kmh=42.25,
                    **fields,  # type: ignore[arg-type]
                ),
            )
            for i in range(count)
        ]
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"gpshub {version('gpshub')}"


def test_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for cmd in (
        ["device", "add"],
        ["device", "list"],
        ["device", "edit"],
        ["device", "remove"],
        ["geofence", "import"],
        ["geofence", "list"],
        ["rule", "add"],
        ["rule", "list"],
        ["sink", "add"],
        ["sink", "list"],
        ["sink", "test"],
        ["alert", "list"],
    ):
        with pytest.raises(SystemExit):
            parser.parse_args([*cmd, "--help"])
        assert f"usage: gpshub {' '.join(cmd)}" in capsys.readouterr().out


def test_devices_from_the_command_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("client", "add", "ACME")
    out = cli("device", "add", "Van 1", "--license-plate", "P-1", "--remote-id", "van-1",
              "--tag", "cold", "--tag", "north", "--offline-timeout-s", "900")  # fmt: skip
    assert "device 1: Van 1" in out
    (row,) = json.loads(cli("device", "list", "--json"))
    assert row["license_plate"] == "P-1" and row["tags"] == ["cold", "north"]
    assert row["offline_timeout_s"] == 900 and row["latest"] is None

    # refused as the API refuses, one line naming the field (and the flag), exit 2
    for argv, field in [
        (["Van 2", "--remote-id", "van 2"], "--remote-id (remote_id)"),
        (["Van 2", "--remote-id", "van-1"], "--remote-id (remote_id)"),  # taken
        (["Van 2", "--offline-timeout-s", "5"], "--offline-timeout-s (offline_timeout_s)"),
        (["Van 2", "--offline-timeout-s", "soon"], "--offline-timeout-s (offline_timeout_s)"),
        (["Van 2", "--odometer-source", "moon"], "--odometer-source (odometer_source)"),
        (["Van 2", "--connection-id", "7", "--upstream-id", "u"], "--connection-id"),
        (["x" * 201], "NAME (name)"),
        (["Van 2", "--tag", ""], "--tag (tags.0)"),
    ]:
        line = error_line(cli("device", "add", *argv, code=2))
        assert line.startswith(f"error: {field}"), line
    assert len(json.loads(cli("device", "list", "--json"))) == 1  # nothing half-stored

    cli("device", "edit", "1", "--name", "Van One", "--clear", "license_plate", "--tag", "x")
    (row,) = json.loads(cli("device", "list", "--json"))
    assert (row["name"], row["license_plate"], row["tags"]) == ("Van One", None, ["x"])
    assert "--clear" in error_line(cli("device", "edit", "1", "--clear", "name", code=2))
    assert "nothing to change" in cli("device", "edit", "1", code=2)

    cli("client", "add", "Other")
    assert "--client" in error_line(cli("device", "add", "Van 3", code=2))  # which client?
    cli("device", "add", "Van 3", "--client", "Other")
    assert "device 1 not found" in cli("device", "remove", "1", "--client", "Other", code=2)
    with open_hub(tmp_path) as hub:
        fixes(hub, 1, 3)
    assert "removed, with its 3 position(s)" in cli("device", "remove", "1", "--client", "ACME")
    assert [r["name"] for r in json.loads(cli("devices", "--json"))] == ["Van 3"]
    assert "device 1 not found" in cli("device", "remove", "1", code=2)


def test_tables_fit_the_terminal_and_keep_coordinates(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    cli("client", "add", "ACME Logistics International")
    cli("device", "add", "Refrigerated van with a very long name indeed, north route",
        "--license-plate", "P-123-ABC", "--remote-id", "van-refrigerated-0001")  # fmt: skip
    with open_hub(tmp_path) as hub:
        fixes(hub, 1, 2)
    for width in (40, 60, 80, 100, 200):
        monkeypatch.setenv("COLUMNS", str(width))
        out = cli("device", "list")
        assert max(len(line) for line in out.splitlines()) <= width, out
        assert "14.612347" in out and "-90.512345" in out  # six decimals, never rounded
        assert "42.2" in out and "2026-01-01T00:01:00Z" in out
    assert "ACME Logistics International" in out  # wide enough: nothing left out
    monkeypatch.setenv("COLUMNS", "80")
    narrow = cli("device", "list").splitlines()
    assert narrow[0].split()[:2] == ["id", "name"] and "…" in narrow[2]


def test_geofences_import_and_list(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    cli("client", "add", "ACME")
    path = tmp_path / "pois.geojson"
    path.write_text(json.dumps(FEATURES))
    assert "3 geofence(s) imported for client 1: 1, 2, 3" in cli("geofence", "import", str(path))
    one = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-90.6, 14.7]},
           "properties": {"name": "Gate", "radius_m": 30}}  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(one)))
    assert "1 geofence(s) imported" in cli("geofence", "import", "-")

    bad = json.loads(json.dumps(FEATURES))
    bad["features"][2]["properties"]["width_m"] = -5
    path.write_text(json.dumps(bad))
    line = error_line(cli("geofence", "import", str(path), code=2))
    assert line.startswith("error: features.2.properties.width_m:"), line
    path.write_text(json.dumps({**FEATURES, "client_id": 9}))
    assert "client_id" in error_line(cli("geofence", "import", str(path), code=2))
    path.write_text("{not json")
    assert "not valid JSON" in error_line(cli("geofence", "import", str(path), code=2))

    listed = json.loads(cli("geofence", "list", "--json"))
    assert [f["properties"]["name"] for f in listed["features"]] == [
        "Depot",
        "Yard",
        "Road",
        "Gate",
    ]
    table = cli("geofence", "list")
    assert "14.612346,-90.512345" in table and "3 vertices" in table and "corridor" in table

    # what list --json prints imports again, into another client
    cli("client", "add", "Copy")
    path.write_text(json.dumps(listed))
    assert "4 geofence(s) imported for client 2" in cli(
        "geofence", "import", str(path), "--client", "Copy"
    )
    copied = json.loads(cli("geofence", "list", "--client", "Copy", "--json"))["features"]
    assert [f["geometry"] for f in copied] == [f["geometry"] for f in listed["features"]]


def test_rules_from_json(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    cli("client", "add", "ACME")
    cli("device", "add", "Van")
    body = {"name": "Speeding", "type": "overspeed", "params": {"limit_kmh": 90}, "device_ids": [1]}
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(body))
    assert "--owner" in error_line(cli("rule", "add", str(path), code=2))  # no administrator yet
    cli("token", "create")  # makes the administrator
    assert "rule 1: Speeding (overspeed, client 1, owner admin)" in cli("rule", "add", str(path))
    monkeypatch.setattr(
        "sys.stdin", io.StringIO(json.dumps({"name": "Off", "type": "ignitionOff"}))
    )
    cli("rule", "add", "-")
    cli("token", "create", "--client", "ACME", "--user", "vera", "--role", "viewer")
    assert "may not own" in error_line(cli("rule", "add", str(path), "--owner", "vera", code=2))

    rules = json.loads(cli("rule", "list", "--json"))
    assert [(r["id"], r["type"], r["device_ids"], r["owner_name"]) for r in rules] == [
        (1, "overspeed", [1], "admin"),
        (2, "ignitionOff", None, "admin"),
    ]
    monkeypatch.setenv("COLUMNS", "160")
    table = cli("rule", "list")
    assert "Speeding" in table and '{"limit_kmh":90' in table


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    """``gpshub history export 1 | head -1``: no BrokenPipeError traceback."""
    import os
    import subprocess
    import sys

    with open_hub(tmp_path) as hub:
        client = hub.store.create_client("ACME")
        device = hub.store.create_device(client.id or 0, name="van")
        fixes(hub, device.id or 0, 3000, step_s=1.0)  # ~400 kB of CSV: more than a pipe holds
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPSHUB_")}
    for argv in (["history", "export", "1"], ["history", "export", "1", "--format", "geojson"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "--data-dir", str(tmp_path), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(100)
        proc.stdout.close()  # the reader goes away, as head does
        stderr = proc.stderr.read().decode()
        code = proc.wait(timeout=120)
        assert code in (0, 141), stderr
        assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "error" not in stderr


class Receiver:
    """A webhook receiver on loopback, in a thread: records each request and answers
    with the status its path names (``/200``, ``/500``, ``/400``), echoing the request's
    headers as JSON (as some receivers do)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.requests.append((self.path, dict(self.headers), body))
                answer = json.dumps({"echo": dict(self.headers)}).encode()
                self.send_response(int(self.path.strip("/")))
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GPSHUB_OUTBOUND_ALLOW_NETWORKS", "127.0.0.0/8")
    r = Receiver()
    yield r
    r.close()


def test_sinks_add_list_and_test(cli, receiver: Receiver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from gpshub_startrack_relay.testing import validate_alert, validate_json1
    from hub.signing import verify

    cli("client", "add", "ACME")
    cli("device", "add", "Van")  # no IMEI: the relay warns
    out = cli("sink", "add", "--name", "relay", "--kind", "startrack-relay",
              "--url", f"{receiver.url}/200", "--header", "Authorization=Bearer s3cr3t-value",
              "--signing")  # fmt: skip
    assert "sink 1: relay (startrack-relay, format startrack-json1, locations, client 1)" in out
    assert "warning: device 1 (Van): no IMEI" in out
    (secret,) = re.findall(r"whsec_\S+", out)
    (tmp_path / "alerts.json").write_text(
        json.dumps(
            {
                "name": "alerts",
                "kind": "startrack-alerts",
                "settings": {"url": f"{receiver.url}/200"},
            }
        )
    )
    assert "sink 2: alerts" in cli("sink", "add", "--file", str(tmp_path / "alerts.json"))

    # refused as POST /api/sinks refuses, naming the field
    for argv, field in [
        (["--name", "x", "--kind", "nope"], "--kind (kind)"),
        (["--name", "x", "--kind", "webhook", "--format", "gpshub-alert", "--url", "ftp://x"], "--url (settings.url)"),
        (["--name", "x", "--kind", "webhook", "--format", "gpshub-alert", "--url", "http://10.1.1.1/"], "--url (settings.url)"),
        (["--name", "x", "--kind", "webhook", "--format", "gpshub-alert", "--url", f"{receiver.url}/200", "--setting", "timeout_s=0.1"], "settings.timeout_s"),
        (["--name", "x", "--kind", "webhook", "--format", "gpshub-alert", "--url", f"{receiver.url}/200", "--header", "Content-Type=x"], "headers.Content-Type"),
        (["--name", "x", "--kind", "startrack-alerts", "--url", f"{receiver.url}/200"], "--kind (kind)"),  # a second alerts webhook
        (["--kind", "webhook"], "--name (name)"),
    ]:  # fmt: skip
        line = error_line(cli("sink", "add", *argv, code=2))
        assert line.startswith(f"error: {field}"), line
    listed = json.loads(cli("sink", "list", "--json"))
    assert [(s["id"], s["purpose"], s["headers"], s["signing"]) for s in listed] == [
        (1, "locations", ["Authorization"], True),
        (2, "alerts", [], False),
    ]
    assert "s3cr3t" not in cli("sink", "list", "--json") + cli("sink", "list")

    # a sample in the sink's format, with its headers and signature
    out = cli("sink", "test", "1")
    assert "accepted: HTTP 200" in out
    path, headers, body = receiver.requests[-1]
    assert path == "/200" and headers["Authorization"] == "Bearer s3cr3t-value"
    assert headers["webhook-id"].startswith("test_")
    verify(secret, headers, body)
    assert validate_json1(json.loads(body)) == []
    assert "accepted: HTTP 200" in cli("sink", "test", "2")
    assert validate_alert(json.loads(receiver.requests[-1][2])) == []

    # what a failing or refusing receiver answers, its secrets masked; exit status 1
    with open_hub(tmp_path) as hub:
        hub.store.sinks.update(1, settings={"url": f"{receiver.url}/500"})
        assert "failed: HTTP 500" in cli("sink", "test", "1", code=1)
        hub.store.sinks.update(1, settings={"url": f"{receiver.url}/400"})
        out = cli("sink", "test", "1", code=1)
        assert "refused: HTTP 400" in out and "dead letter" in out and "Authorization" in out
        assert "s3cr3t" not in out and "[redacted]" in out
        assert "sink 3 not found" in cli("sink", "test", "3", code=2)
        assert not hub.store.sinks.stats(hub.store.sinks.get(1))["delivered"]  # nothing counted


def test_alerts_listed(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from hub.web.api_rules import alert_out

    cli("client", "add", "ACME")
    cli("device", "add", "Van")
    cli("token", "create")
    (tmp_path / "rule.json").write_text(json.dumps({"name": "Key", "type": "ignitionOn"}))
    cli("rule", "add", str(tmp_path / "rule.json"))
    with open_hub(tmp_path) as hub:
        for minute in range(6):  # the ignition goes on three times
            hub.store.positions.write_batch(
                [IngestItem(1, None, PositionFix(T0 + timedelta(minutes=minute), 14.6123456,
                                                 -90.5123451, ignition=minute % 2 == 1))]
            )  # fmt: skip
        stored = [alert_out(a) for a in hub.store.rules.alerts()]
    alerts = json.loads(cli("alert", "list", "--json"))
    assert alerts == stored
    assert [a["message_id"] for a in alerts] == ["ignitionOn"] * 3
    table = cli("alert", "list", "--limit", "2")
    assert "14.612346" in table and "-90.512345" in table and "more: --after-id 2" in table
    assert len(json.loads(cli("alert", "list", "--after-id", "2", "--json"))) == 1
    assert len(json.loads(cli("alert", "list", "--from", "2026-01-01T00:02:00Z", "--json"))) == 2
    # a date alone is midnight in the client's zone, as in the API (ACME is on UTC)
    assert len(json.loads(cli("alert", "list", "--from", "2026-01-01", "--json"))) == 3
    assert not json.loads(cli("alert", "list", "--from", "2026-01-02", "--json"))
    line = error_line(cli("alert", "list", "--from", "yesterday", code=2))
    assert line.startswith("error: --from (from)"), line
    assert "--limit (limit)" in error_line(cli("alert", "list", "--limit", "0", code=2))


async def test_the_command_line_exports_and_refuses_as_the_api_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same CSV and GeoJSON as ``GET /api/devices/{id}/positions``, and the same
    refusals as the API, naming the same field, for the same input."""
    import functools

    import httpx
    import trio

    from hub.models import Role
    from hub.web import serve

    monkeypatch.delenv("GPSHUB_SECRET_KEY", raising=False)
    hub = Hub.open(Settings(data_dir=tmp_path))
    client = hub.store.create_client("ACME").id or 0
    admin = hub.store.create_user("admin", Role.ADMIN, None)
    token = hub.store.create_token(admin.id or 0)[1]
    device = hub.store.create_device(client, name='=Van "one"', remote_id="van-1").id or 0
    fixes(hub, device, 30, sensors={"note": "=cmd", "temp": -3.5}, ignition=True, altitude_m=12.5)

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["--data-dir", str(tmp_path), *argv])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    async def cli(*argv: str) -> tuple[int, str]:
        return await trio.to_thread.run_sync(functools.partial(run, *argv))

    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            functools.partial(hub.run, serve=functools.partial(serve, hub, "127.0.0.1", 0))
        )
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
            span = {"from": "2026-01-01T00:03:00Z", "to": "2026-01-01T00:20:00Z"}
            for fmt in ("csv", "geojson"):
                r = await http.get(
                    f"/api/devices/{device}/positions", params={**span, "format": fmt}
                )
                assert r.status_code == 200, r.text
                out = tmp_path / f"export.{fmt}"
                code, _ = await cli("history", "export", str(device), "--from", span["from"],
                                    "--to", span["to"], "--format", fmt, "-o", str(out))  # fmt: skip
                assert code == 0
                with out.open(newline="") as f:
                    mine = f.read()
                if fmt == "csv":
                    assert mine == r.text  # the same columns, the same cells
                    assert mine.splitlines()[0].split(",")[:4] == [
                        "id",
                        "device_id",
                        "device_name",
                        "fix_time",
                    ]
                else:
                    assert json.loads(mine) == r.json()

            rule_file = tmp_path / "rule.json"
            poi_file = tmp_path / "pois.json"
            bad_pois = json.loads(json.dumps(FEATURES))
            bad_pois["features"][1]["geometry"]["coordinates"][0][2] = [200, 14.61]
            cases: list[tuple[tuple[str, ...], str, dict[str, object]]] = [
                (("rule", "add", str(rule_file)), "/api/rules",
                 {"name": "x", "type": "overspeed", "params": {"limit_kmh": -1}}),
                (("rule", "add", str(rule_file)), "/api/rules",
                 {"name": "x", "type": "stopped", "device_id": [1]}),
                (("rule", "add", str(rule_file)), "/api/rules",
                 {"name": "x", "type": "enteredPoi", "params": {"poi_ids": [77]}}),
                (("rule", "add", str(rule_file)), "/api/rules",
                 {"name": "x", "type": "stopped", "schedule": {"windows": [{"days": [9]}]}}),
                (("geofence", "import", str(poi_file)), "/api/geofences/import", bad_pois),
                (("geofence", "import", str(poi_file)), "/api/geofences",
                 {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]},
                  "properties": {"name": "no radius"}}),
            ]  # fmt: skip
            for argv, path, body in cases:
                rule_file.write_text(json.dumps(body))
                poi_file.write_text(json.dumps(body))
                r = await http.post(path, json={**body, "client_id": client})
                assert r.status_code == 422, r.text
                field = r.json()["error"]["field"]
                code, out = await cli(*argv)
                assert code == 2, out
                assert error_line(out).startswith(f"error: {field}: "), (field, out)

            r = await http.post(
                "/api/devices", json={"client_id": client, "name": "x", "remote_id": "a b"}
            )
            code, out = await cli("device", "add", "x", "--remote-id", "a b")
            assert f"({r.json()['error']['field']}): {r.json()['error']['message']}" in out
            r = await http.post("/api/sinks", json={"client_id": client, "name": "x", "kind": "webhook",
                                                    "format": "gpshub-alert", "settings": {"url": "http://10.0.0.1/"}})  # fmt: skip
            code, out = await cli("sink", "add", "--name", "x", "--kind", "webhook", "--format",
                                  "gpshub-alert", "--url", "http://10.0.0.1/")  # fmt: skip
            assert f"({r.json()['error']['field']}): {r.json()['error']['message']}" in out
            r = await http.get("/api/alerts", params={"from": "2026-01-01T00:00"})  # no offset
            code, out = await cli("alert", "list", "--from", "2026-01-01T00:00")
            assert r.status_code == 400 and code == 2
            assert f"({r.json()['error']['field']}): {r.json()['error']['message']}" in out
            # nothing of it was stored
            assert (await http.get("/api/rules")).json()["rules"] == []
            assert (await http.get("/api/geofences")).json()["features"] == []
            assert len((await http.get("/api/devices")).json()["devices"]) == 1
        hub.shutdown()
    hub.store.close()
