"""``gpshub serve --demo`` as a user runs it: a real process, a real socket, real clients.

Soon after start the demo device has positions in history and on the live feed, moving
from the first, and the start-up banner names it as the API does; SIGINT ends the
process cleanly.  (How soon is a timing, so it is not asserted: the deadline
only keeps a hung process from holding up the suite.  On a busy two-core machine the
imports alone take seconds, and the simulator reports every 5 s.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import trio
from trio_websocket import open_websocket_url


async def read_until(
    stream: trio.abc.ReceiveStream, pattern: str, seen: list[str]
) -> re.Match[str]:
    buf = ""
    while True:
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise AssertionError("gpshub exited early:\n" + "".join(seen) + buf)
        buf += chunk.decode(errors="replace")
        match = re.search(pattern, buf, re.S)
        if match:
            seen.append(buf)
            return match


async def test_demo_shows_a_moving_vehicle(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPSHUB_")}
    cmd = [
        sys.executable,
        "-m",
        "hub.cli",
        "--data-dir",
        str(tmp_path),
        "serve",
        "--demo",
        "--port",
        "0",
    ]
    proc = await trio.lowlevel.open_process(
        cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env
    )
    seen: list[str] = []
    try:
        with trio.fail_after(120):  # a hang guard: a busy machine starts Python slowly
            m = await read_until(proc.stderr, r"listening on (http://\S+).*?(gph_\w{38})", seen)
            url, token = m.group(1), m.group(2)
            banner = re.search(r"Demo: .*?device #(\d+) '([^']*)'", seen[0])
            assert banner, seen[0]
            headers = {"Authorization": f"Bearer {token}"}
            # a connection idle for hypercorn's keep-alive timeout (5 s: about the wait for
            # a live position below) may be closed by the server as it is reused; drop
            # idle ones sooner, as a browser retries such a request
            limits = httpx.Limits(keepalive_expiry=2.0)
            async with httpx.AsyncClient(
                base_url=url, headers=headers, timeout=60, limits=limits
            ) as http:
                devices = (await http.get("/api/devices")).json()["devices"]
                assert [d["remote_id"] for d in devices] == ["demo-1"]
                device_id = devices[0]["id"]
                # the banner names the device as the API does
                assert (int(banner.group(1)), banner.group(2)) == (device_id, devices[0]["name"])
                ws_url = url.replace("http://", "ws://") + "/api/live"
                async with open_websocket_url(
                    ws_url, extra_headers=[("Authorization", f"Bearer {token}")]
                ) as ws:
                    live = None  # the snapshot of latest positions comes first
                    while live is None:
                        for msg in json.loads(await ws.get_message()):  # a frame: an array
                            if msg["type"] == "position" and not msg.get("snapshot"):
                                live = msg
                                break
                    assert live["device_id"] == device_id
                    assert live["data"]["sensors"]["simulated"] is True
                    # moving from the start, not parked at the depot for minutes
                    assert live["data"]["speed_kmh"] > 0 and live["data"]["ignition"] is True
                r = await http.get(f"/api/devices/{device_id}/positions")
                assert live["data"] in r.json()["positions"]  # read back through history
    finally:
        proc.send_signal(signal.SIGINT)
        with trio.fail_after(60):  # a hang guard, not a timing
            code = await proc.wait()
    rest = await proc.stderr.receive_some(65536)
    text = "".join(seen) + rest.decode(errors="replace")
    assert code == 0, text
    assert "finishing the batch in flight" in text
    assert text.count(token) == 2  # the token line and the curl example, nothing else
