"""Failed-authentication throttle, measured on a real ``gpshub serve`` process.

The script makes a data directory with an administrator token (``gpshub token
create``), starts ``gpshub serve`` on a free loopback port, and then, like the probe
that found the hole, sends wrong tokens as fast as one client can (1,500 by default).
It prints how many were answered 401 before the first 429, the ``Retry-After`` given,
how many of the rest were 429, whether a valid token used from the address before kept
working meanwhile (and what a valid token new to it got), and how the address recovers: one attempt after ``Retry-After``, then the whole budget after a
quiet minute (``--no-wait`` skips that minute).  Figures are printed, never asserted.

    uv run python bench/auth_throttle.py
    uv run python bench/auth_throttle.py --attempts 3000 --per-minute 20
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from hub import tokens


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gpshub(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "hub.cli", "--data-dir", str(data_dir), *args]


def wait_ready(http: httpx.Client, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gpshub serve exited with {proc.returncode}")
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("gpshub serve did not answer within 60 s")


def burst(http: httpx.Client, count: int, good: str, fresh: str) -> None:
    wrong = tokens.new_token()
    http.get("/api/me", headers={"Authorization": f"Bearer {good}"})  # a dashboard, before
    statuses: list[int] = []
    retry_after = None
    good_ok = 0
    start = time.perf_counter()
    for i in range(count):
        r = http.get("/api/devices", headers={"Authorization": f"Bearer {wrong}"})
        statuses.append(r.status_code)
        if r.status_code == 429 and retry_after is None:
            retry_after = r.headers.get("retry-after")
        if i % 100 == 99:  # the real token, now and then, meanwhile
            good_ok += http.get("/api/me", headers={"Authorization": f"Bearer {good}"}).is_success
    elapsed = time.perf_counter() - start
    first = statuses.index(429) if 429 in statuses else None
    counts = Counter(statuses)
    print(f"{count} wrong tokens in {elapsed:.1f} s: {dict(sorted(counts.items()))}")
    print(f"  answered 401 before the first 429: {first if first is not None else count}")
    print(f"  Retry-After on the first 429: {retry_after} s")
    print(f"  a token in use from this address meanwhile: {good_ok} of {count // 100} succeeded")
    r = http.get("/api/me", headers={"Authorization": f"Bearer {fresh}"})
    print(f"  a valid token new to this address meanwhile: {r.status_code}")


def recovery(http: httpx.Client, wait_minute: bool) -> None:
    wrong = tokens.new_token()
    headers = {"Authorization": f"Bearer {wrong}"}
    r = http.get("/api/devices", headers=headers)
    wait = int(r.headers.get("retry-after", "0"))
    print(f"right after the burst: {r.status_code}, Retry-After {wait} s")
    time.sleep(wait)
    after = [http.get("/api/devices", headers=headers).status_code for _ in range(2)]
    print(f"after waiting {wait} s: {after} (one attempt back)")
    if wait_minute:
        time.sleep(61)
        statuses = []
        while True:
            status = http.get("/api/devices", headers=headers).status_code
            statuses.append(status)
            if status == 429 or len(statuses) > 1000:
                break
        print(f"after a quiet minute: {len(statuses) - 1} attempts answered 401, then 429")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1500)
    parser.add_argument("--per-minute", type=int, default=10, help="auth_failures_per_minute")
    parser.add_argument("--no-wait", action="store_true", help="skip the quiet minute")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        env = {
            **os.environ,
            "GPSHUB_AUTH_FAILURES_PER_MINUTE": str(args.per_minute),
            "GPSHUB_LOG_LEVEL": "ERROR",
        }
        env.pop("GPSHUB_SECRET_KEY", None)
        made = [
            subprocess.run(
                gpshub(data_dir, "token", "create"), env=env, capture_output=True, text=True
            ).stdout
            for _ in range(2)
        ]
        good, fresh = (re.findall(r"gph_\w+", text)[0] for text in made)
        port = free_port()
        proc = subprocess.Popen(
            gpshub(data_dir, "serve", "--port", str(port)),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                wait_ready(http, proc)
                print(f"auth_failures_per_minute = {args.per_minute}")
                burst(http, args.attempts, good, fresh)
                recovery(http, not args.no_wait)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
