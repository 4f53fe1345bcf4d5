"""The dashboard's figures, in Debian's chromium: time to first render of the map page
with 1,000 devices (Performance API: navigation start to the map's markers drawn), the
page's transferred size, and the live latency from ingest to marker move.

Needs chromium and the session API.  Usage: python bench/dashboard.py [--devices 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins/dashboard/tests"))

from browser_hub import PASSWORD, HubThread, chromium
from playwright.sync_api import sync_playwright

TRANSFERRED = (
    "performance.getEntriesByType('navigation').concat("
    "performance.getEntriesByType('resource'))"
    ".reduce((s, e) => s + (e.transferSize || 0), 0)"
)
"""Bytes over the wire for the page and everything it fetched (0 for what came from the
browser's cache)."""
TRANSFERRED_BY_KIND = (
    "performance.getEntriesByType('navigation').concat("
    "performance.getEntriesByType('resource')).reduce((m, e) => {"
    " const p = new URL(e.name).pathname;"
    " const k = p.startsWith('/api/') ? 'api' : p.includes('/vendor/') ? 'libraries'"
    "   : p.startsWith('/assets/') ? 'our assets' : 'page';"
    " m[k] = (m[k] || 0) + (e.transferSize || 0); return m; }, {})"
)

FILES = (
    "performance.getEntriesByType('navigation').concat("
    "performance.getEntriesByType('resource')).map((e) => [new URL(e.name).pathname"
    ".replace(/^\\/assets\\/[^/]+\\//, ''), e.transferSize || 0, e.encodedBodySize || 0,"
    " e.decodedBodySize || 0])"
)
"""Each file fetched: its path (without the asset prefix) and its sizes."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument(
        "--files", action="store_true", help="also list what the cold load fetched, by size"
    )
    args = parser.parse_args()
    path = chromium()
    if path is None:
        sys.exit("no chromium found")
    with tempfile.TemporaryDirectory() as tmp:
        # no tile layer: nothing to fetch from outside, and no request routing, which
        # would turn the browser's cache off (Playwright does so while a route is set)
        hub = HubThread(Path(tmp), map_tile_url="").start()
        try:
            ids = hub.populate(args.devices)
            if not hub.session_api():
                sys.exit("this hub has no session API (POST /api/session)")
            hub.set_passwords()
            hub.ingest_many(
                [(d, 14.5 + (i % 40) * 0.01, -90.6 + (i // 40) * 0.01) for i, d in enumerate(ids)]
            )
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                page.goto(hub.url + "/")
                page.fill("#signin-name", "ann")
                page.fill("#signin-password", PASSWORD)
                page.click("form.signin button[type=submit]")
                page.wait_for_selector("body[data-map-ready='1']", timeout=60_000)
                # a cold load of the map page, signed in: a new browser context (an empty
                # cache) with the session's cookie
                signed_in = context.storage_state()
                context.close()
                context = browser.new_context(
                    viewport={"width": 1280, "height": 800}, storage_state=signed_in
                )
                page = context.new_page()
                page.goto(hub.url + "/#/map")
                page.wait_for_selector("body[data-map-ready='1']", timeout=60_000)
                ready = page.evaluate(
                    "performance.getEntriesByName('gpshub:map-ready')[0].startTime"
                )
                size = page.evaluate(TRANSFERRED)
                by_kind = page.evaluate(TRANSFERRED_BY_KIND)
                files = page.evaluate(FILES)
                page.goto("about:blank")  # the same with the browser's cache warm
                page.goto(hub.url + "/#/map")
                page.wait_for_selector("body[data-map-ready='1']", timeout=60_000)
                warm = page.evaluate(
                    "performance.getEntriesByName('gpshub:map-ready')[0].startTime"
                )
                warm_size = page.evaluate(TRANSFERRED)
                page.wait_for_timeout(1500)  # the live feed's snapshot has come
                # select the device: the map zooms in until its marker is out of its cluster
                page.click(f"#device-list li[data-id='{ids[0]}']")
                page.wait_for_timeout(1500)
                lat = []
                for k in range(5):
                    started = time.time()
                    lat_k = round(14.5 + 0.0002 * (k + 1), 6)  # JS and Python print it alike
                    hub.ingest(ids[0], lat_k, -90.6, speed_kmh=10.0)  # on screen
                    page.wait_for_selector(
                        f".marker[data-device-id='{ids[0]}'][data-lat='{lat_k}']",
                        timeout=20_000,
                    )
                    moved = int(
                        page.get_attribute(f".marker[data-device-id='{ids[0]}']", "data-moved-at")
                        or 0
                    )
                    lat.append(moved / 1000 - started)
                    page.wait_for_timeout(1100)  # mode latest: one position a second
                browser.close()
        finally:
            hub.stop()
    print(f"devices: {args.devices}")
    print(
        f"first render of the map page (navigation to markers drawn): {ready:.0f} ms cold, "
        f"{warm:.0f} ms with a warm cache"
    )
    print(f"transferred: {size / 1024:.0f} KiB cold, {warm_size / 1024:.0f} KiB warm")
    print(
        "  cold, by kind: "
        + ", ".join(f"{kind} {n / 1024:.0f} KiB" for kind, n in sorted(by_kind.items()))
    )
    if args.files:
        print("  cold, by file (transferred, body as sent, body decoded):")
        for name, sent, body, decoded in sorted(files, key=lambda f: -f[1]):
            print(f"    {sent / 1024:6.1f} {body / 1024:6.1f} {decoded / 1024:6.1f} KiB  {name}")
    lat.sort()
    print(
        f"live latency, ingest to marker move: median {lat[len(lat) // 2] * 1000:.0f} ms, "
        f"max {lat[-1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
