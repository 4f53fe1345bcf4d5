"""What ``gpshub serve`` logs while it runs: connection state changes and first
success, the once-a-minute summary (under MockClock), and JSON lines without secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from hub.blocking import blocking_calls_inline
from hub.clock import TrioClock
from hub.config import Settings
from hub.errors import CannotConnect, InvalidAuth
from hub.fix import PositionFix
from hub.logging_setup import configure_logging
from hub.metrics import parse_listen
from hub.source import Cadence, Cursor, DeviceRef, PollResult
from hub.testing import EPOCH, ScriptedSource, make_hub


@pytest.fixture(autouse=True)
def _inline() -> Iterator[None]:
    with blocking_calls_inline():
        yield


def moving(devices: Sequence[DeviceRef], cursors: dict[str, Cursor]) -> PollResult:
    result = PollResult()
    for d in devices:
        last = cursors[d.upstream_id].last_fix_time
        t = last + timedelta(seconds=1) if last else EPOCH
        result.add(d.upstream_id, PositionFix(t, 14.6, -90.5, speed_kmh=40.0))
    return result


def scripted(script: list[Any], cadence: float = 10.0) -> type[ScriptedSource]:
    attrs = {"script": script, "calls": [], "cadence": Cadence(active=cadence, jitter=0.0)}
    return type("Scripted", (ScriptedSource,), attrs)


def setup(tmp_path: Path, src: type[ScriptedSource], **settings: Any) -> tuple[Any, int, int]:
    hub = make_hub(
        tmp_path, src, clock=TrioClock(EPOCH), use_entry_points=True, **settings
    )  # the entry points bring the sink kinds
    client = hub.store.create_client("acme").id
    conn = hub.store.create_connection(client, "scripted", "Fleet", {})
    for i in range(2):
        hub.store.create_device(
            client, name=f"truck {i}", connection_id=conn.id, upstream_id=f"u{i}"
        )
    return hub, client, conn.id


async def test_state_changes_and_the_first_success_are_logged_once_each(
    tmp_path: Path, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    src = scripted([moving, CannotConnect("refused"), CannotConnect("refused"), moving, moving,
                    InvalidAuth("token revoked")])  # fmt: skip
    hub, _, conn = setup(tmp_path, src)
    caplog.set_level(logging.INFO)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await trio.sleep(600)
        hub.shutdown()
    records = [r for r in caplog.records if getattr(r, "connection_id", None) == conn]
    states = [(r.levelname, r.state, r.previous_state) for r in records]
    assert states == [
        ("INFO", "ok", "new"),
        ("WARNING", "failing", "ok"),
        ("INFO", "ok", "failing"),
        ("WARNING", "needs_reauth", "ok"),
    ]
    messages = [r.getMessage() for r in records]
    assert "'Fleet'" in messages[0] and "first successful poll" in messages[0]
    assert "refused" in messages[1] and "retrying" in messages[1]
    assert "recovered after 2 failed poll(s)" in messages[2]
    assert "token revoked" in messages[3] and "paused" in messages[3]
    assert all(r.kind == "scripted" for r in records)


async def test_a_summary_line_every_minute(
    tmp_path: Path, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    src = scripted([moving], cadence=7.0)  # polls at 0, 7, … 56 s: 9 a minute
    hub, client, _ = setup(tmp_path, src)
    hub.store.sinks.create(  # a paused sink: what it will owe when enabled piles up
        client,
        name="later",
        kind="startrack-relay",
        format="startrack-json1",
        purpose="locations",
        settings={"url": "https://relay.example/json1"},
        enabled=False,
    )
    caplog.set_level(logging.INFO, logger="hub.summary")
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        with hub.live.subscribe(None):
            await trio.sleep(125)
        hub.shutdown()
    lines = [r for r in caplog.records if r.name == "hub.summary"]
    assert len(lines) == 2
    first, second = lines
    assert (first.positions_in, first.positions_in_total) == (18, 18)
    assert (second.positions_in, second.positions_in_total) == (18, 36)
    assert (first.owed, second.owed) == (18, 36)
    assert first.live_clients == 1 and first.delivered == 0
    assert first.connections == {"ok": 1}
    assert first.getMessage() == (
        "summary of the last minute: 18 positions in, 0 delivered; "
        "now 18 owed, 1 live client; connections: 1 ok"
    )


async def test_no_summary_when_turned_off(
    tmp_path: Path, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hub, _, _ = setup(tmp_path, scripted([moving]), log_summary_s=0.0)
    caplog.set_level(logging.INFO, logger="hub.summary")
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await trio.sleep(300)
        hub.shutdown()
    assert not [r for r in caplog.records if r.name == "hub.summary"]


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Leave the root logger as it was (configure_logging replaces its handlers)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {n: logging.getLogger(n).level for n in ("httpx", "httpcore")}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, lvl in levels.items():
            logging.getLogger(name).setLevel(lvl)


def json_lines(monkeypatch: pytest.MonkeyPatch, emit: Any) -> list[dict[str, Any]]:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("DEBUG", "json")
    emit()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_fields_and_no_secret(
    root_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def emit() -> None:
        log = logging.getLogger("hub.runner")
        log.warning(
            "connection %s: polling failed (password=%s)",
            "'Fleet' (#3, wialon)",
            "hunter22",
            extra={"connection_id": 3, "state": "failing"},
        )
        logging.getLogger("httpx").warning(
            "HTTP Request: GET https://hst-api.example/wialon/ajax.html?svc=core/login&params=%7B%22token%22%3A%22abc123secret%22%7D"
        )
        try:
            raise RuntimeError("login with token=abc123secret failed")
        except RuntimeError:
            logging.getLogger("hub.delivery").exception("sink #2: boom", extra={"sink_id": 2})

    lines = json_lines(monkeypatch, emit)
    assert len(lines) == 3
    first, second, third = lines
    assert set(first) == {"time", "level", "logger", "message", "connection_id", "state"}
    assert first["level"] == "WARNING" and first["logger"] == "hub.runner"
    assert first["connection_id"] == 3 and first["state"] == "failing"
    assert first["time"].endswith("Z")
    assert "'Fleet' (#3, wialon)" in first["message"]
    assert third["sink_id"] == 2 and "RuntimeError" in third["exception"]
    text = json.dumps(lines)
    assert "hunter22" not in text and "abc123secret" not in text
    assert "[redacted]" in second["message"]


def test_log_format_setting(tmp_path: Path) -> None:
    assert Settings.load(environ={}, data_dir=str(tmp_path)).log_format == "text"
    env = {"GPSHUB_LOG_FORMAT": "JSON", "GPSHUB_METRICS_LISTEN": "127.0.0.1:9464"}
    settings = Settings.load(environ=env, data_dir=str(tmp_path))
    assert settings.log_format == "json" and settings.metrics_listen == "127.0.0.1:9464"
    (tmp_path / "gpshub.toml").write_text('log_format = "json"\nlog_summary_s = 300\n')
    settings = Settings.load(environ={}, data_dir=str(tmp_path))
    assert settings.log_format == "json" and settings.log_summary_s == 300
    with pytest.raises(ValueError, match="log_format"):
        Settings.load(environ={"GPSHUB_LOG_FORMAT": "xml"}, data_dir=str(tmp_path))


def test_metrics_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("9464", "localhost", "host:port", ":9464", "h:70000"):
        with pytest.raises(ValueError, match="metrics_listen"):
            parse_listen(bad)
