"""The dashboard's tests: ``browser_hub`` (a hub served from a thread) is importable, and
the browser tests' fixtures: ``browser`` (Debian's chromium driven by Playwright) and
``site`` (a hub with users ``ann`` and ``vic`` and one device)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # browser_hub.py

from collections.abc import Iterator
from typing import Any

import pytest
from browser_hub import HubThread, chromium, skip_browser_test


@pytest.fixture
def browser() -> Iterator[Any]:
    path = chromium()
    if path is None:
        skip_browser_test("no chromium found (apt-get install chromium, or set GPSHUB_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[HubThread]:
    hub = HubThread(tmp_path).start()
    try:
        hub.device_ids = hub.populate()  # type: ignore[attr-defined]
        if not hub.session_api():
            skip_browser_test("this hub has no session API yet (POST /api/session is a 404)")
        hub.set_passwords()
        yield hub
    finally:
        hub.stop()
