"""``gpshub serve`` as an operator runs it: real processes on a temporary data directory.

A port in use is one clear line and a non-zero exit, and the first start that failed
does not take the administrator's token with it.  ``--log-format json`` writes JSON
lines only to standard error (what is for people goes to standard output).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import trio

from hub.secrets import SecretBox
from hub.store import Store


def command(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "hub.cli", "--data-dir", str(data_dir), "serve", *args]


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GPSHUB_")}


async def read_until(stream: Any, pattern: str, seen: list[str]) -> re.Match[str]:
    """Read ``stream`` until ``pattern`` matches all that was read (kept in ``seen``)."""
    while True:
        match = re.search(pattern, "".join(seen), re.S)
        if match:
            return match
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise AssertionError("gpshub exited early:\n" + "".join(seen))
        seen.append(chunk.decode(errors="replace"))


async def read_all(stream: Any, seen: list[str]) -> None:
    while chunk := await stream.receive_some(4096):
        seen.append(chunk.decode(errors="replace"))


async def stop(proc: Any) -> None:
    proc.send_signal(signal.SIGINT)
    with trio.fail_after(60):
        await proc.wait()


def has_users(data_dir: Path) -> bool:
    store = Store.open(f"sqlite:///{data_dir / 'gpshub.db'}", SecretBox.from_env_or_file(data_dir))
    try:
        return not store.is_empty()
    finally:
        store.close()


async def test_a_port_in_use_is_one_line_and_the_token_waits_for_a_good_start(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(  # noqa: ASYNC221 - a whole process run is the point
            command(tmp_path, "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=300,
            env=environment(),
            check=False,
        )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if "cannot listen" in line]
    assert errors == [f"error: cannot listen on 127.0.0.1:{port}: address already in use"]
    assert done.stderr.rstrip().endswith(errors[0])
    assert "gph_" not in done.stdout + done.stderr
    assert not has_users(tmp_path)  # no administrator whose token nobody saw

    proc = await trio.lowlevel.open_process(
        command(tmp_path, "--port", "0"),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=environment(),
    )
    seen: list[str] = []
    try:
        with trio.fail_after(120):
            m = await read_until(proc.stderr, r"listening on (http://\S+).*?(gph_\w{38})", seen)
            url, token = m.group(1), m.group(2)
            async with httpx.AsyncClient(base_url=url, timeout=60) as http:
                me = await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
                assert me.status_code == 200 and me.json()["is_admin"] is True
    finally:
        await stop(proc)


async def test_json_logs_are_json_lines_and_metrics_listen_serves(tmp_path: Path) -> None:
    proc = await trio.lowlevel.open_process(
        command(
            tmp_path,
            "--demo",
            "--port",
            "0",
            "--log-format",
            "json",
            "--metrics-listen",
            "127.0.0.1:0",
        ),
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=environment(),
    )
    out: list[str] = []
    err: list[str] = []
    try:
        with trio.fail_after(120):
            m = await read_until(proc.stdout, r"metrics, no token needed: (http://\S+)", out)
            metrics_url = m.group(1)
            await read_until(proc.stdout, r"gph_\w{38}", out)
            await read_until(proc.stderr, r"first successful poll.*\n", err)
            async with httpx.AsyncClient(timeout=60) as http:
                r = await http.get(metrics_url)
            assert r.status_code == 200
            assert 'gpshub_polls_total{connection_id="1",kind="simulator",outcome="ok"}' in r.text
    finally:
        await stop(proc)
    with trio.fail_after(60):
        await read_all(proc.stderr, err)
    lines = [json.loads(line) for line in "".join(err).splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    first = [line for line in lines if "first successful poll" in line["message"]]
    assert first[0]["connection_id"] == 1 and first[0]["state"] == "ok"
    assert first[0]["level"] == "INFO" and first[0]["logger"] == "hub.runner"
    token = re.search(r"gph_\w{38}", "".join(out))
    assert token is not None and token.group(0) not in "".join(err)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell does for a background job


async def test_a_signal_the_moment_it_serves_stops_it_cleanly(tmp_path: Path) -> None:
    """SIGINT is handled from the start, also where the process began with it ignored (a
    shell's background job): one sent as soon as the hub says it listens, while it still
    makes the administrator's token, stops it gracefully instead of being lost."""
    proc = await trio.lowlevel.open_process(
        command(tmp_path, "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environment(),
        preexec_fn=_ignore_sigint,
    )
    seen: list[str] = []
    try:
        with trio.fail_after(120):
            # the console's line, printed once it serves (the log's "API listening on"
            # comes earlier, while a signal still stops the start-up instead)
            await read_until(proc.stdout, r"gpshub is listening on http://", seen)
            proc.send_signal(signal.SIGINT)
            await read_all(proc.stdout, seen)
            assert await proc.wait() == 0, "".join(seen)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert "SIGINT: finishing the batch in flight, then exiting" in "".join(seen)


async def test_the_demo_opens_on_the_dashboard_with_a_password_shown_once(
    tmp_path: Path,
) -> None:
    proc = await trio.lowlevel.open_process(
        command(tmp_path, "--demo", "--port", "0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,  # what is for people goes there with text logs
        env=environment(),
    )
    seen: list[str] = []
    try:
        with trio.fail_after(120):
            m = await read_until(
                proc.stderr, r"Dashboard:\s+(http://\S+)/\s+sign in as admin, password (\S+) ", seen
            )
            url, password = m.group(1), m.group(2)
            async with httpx.AsyncClient(base_url=url, timeout=60) as http:
                page = await http.get("/")
                assert page.status_code == 200 and "text/html" in page.headers["content-type"]
                r = await http.post("/api/session", json={"name": "admin", "password": password})
                assert r.status_code == 200, r.text
                devices = await http.get("/api/devices")  # the session cookie
                assert [d["name"] for d in devices.json()["devices"]] == ["Demo vehicle"]
    finally:
        await stop(proc)
    # a second start: no new token, no new password
    proc = await trio.lowlevel.open_process(
        command(tmp_path, "--demo", "--port", "0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,  # what is for people goes there with text logs
        env=environment(),
    )
    again: list[str] = []
    try:
        with trio.fail_after(120):
            await read_until(proc.stderr, r"listening on http://\S+", again)
    finally:
        await stop(proc)
    with trio.fail_after(60):
        await read_all(proc.stderr, again)
    assert "password" not in "".join(again)
