"""The history page in a real browser: a track with a stop, its polyline and stop marker,
playback, the speed chart and the downloads (see test_browser.py for how these run)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from browser_hub import HubThread
from test_browser import Page

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect


def ingest_track_with_a_stop(site: HubThread, device: int) -> datetime:
    """Two hours ago: 20 min driving east, 15 min parked, 10 min driving north, a fix a
    minute; the time of the first fix."""
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    lat, lon = 14.60, -90.55
    minute = 0
    for _ in range(20):
        site.ingest(
            device,
            lat,
            lon,
            fix_time=start + timedelta(minutes=minute),
            speed_kmh=40.0,
            course_deg=90.0,
            ignition=True,
        )
        lon += 0.006  # about 650 m a minute
        minute += 1
    for _ in range(15):
        site.ingest(
            device,
            lat,
            lon,
            fix_time=start + timedelta(minutes=minute),
            speed_kmh=0.0,
            ignition=False,
        )
        minute += 1
    for _ in range(10):
        lat += 0.006
        site.ingest(
            device,
            lat,
            lon,
            fix_time=start + timedelta(minutes=minute),
            speed_kmh=45.0,
            course_deg=0.0,
            ignition=True,
        )
        minute += 1
    return start


def test_a_history_is_played_back(browser: Any, site: HubThread, tmp_path: Path) -> None:
    device = site.device_ids[0]  # type: ignore[attr-defined]
    ingest_track_with_a_stop(site, device)
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = page.page
    # from the map panel's History link
    p.click(f"#device-list li[data-id='{device}']")
    p.click("#panel a:has-text('History')")
    p.wait_for_selector("body[data-history-ready='1']", timeout=20_000)
    assert p.input_value("#history-device") == str(device)
    assert p.input_value("#history-period") == "24h"
    assert "45 positions" in p.inner_text("#history-status")

    assert p.locator("#history-map path.track-line").count() == 1
    assert p.locator(".stop-marker").count() == 1
    trips = p.inner_text("#history-trips")
    assert "2 trips" in trips and "1 stops" in trips and "Stop 1" in trips, trips
    p.locator("#speed-chart .uplot canvas").wait_for(timeout=20_000)

    marker = p.locator("#playback-marker")
    first = (marker.get_attribute("data-lat"), marker.get_attribute("data-lon"))
    assert first == ("14.600000", "-90.550000")
    p.select_option("#play-speed", "60")
    p.click("#play")
    expect(p.locator("#slider")).not_to_have_value("0", timeout=20_000)  # (no eval: the CSP)
    p.click("#play")  # pause
    p.screenshot(path=str(tmp_path / "history.png"))  # kept as a CI artefact
    assert p.inner_text("#play") == "Play"
    moved = (marker.get_attribute("data-lat"), marker.get_attribute("data-lon"))
    assert moved != first
    # scrubbing: the slider's end is the track's last fix
    p.locator("#slider").fill(p.get_attribute("#slider", "max") or "")
    p.wait_for_selector("#playback-marker[data-lat='14.660000']", timeout=20_000)
    # hovering the chart near its start moves the player there
    end = p.get_attribute("#slider", "max") or ""
    p.hover("#speed-chart .u-over", position={"x": 3, "y": 20})
    expect(p.locator("#slider")).not_to_have_value(end, timeout=20_000)
    assert int(p.input_value("#slider")) < int(end) / 4

    links = {
        fmt: p.get_attribute(f"#history-downloads a[data-format='{fmt}']", "href") or ""
        for fmt in ("csv", "geojson", "gpx")
    }
    for fmt, href in links.items():
        url = urlsplit(href)
        assert url.path == f"/api/devices/{device}/positions", href
        asked = parse_qs(url.query)
        assert asked["format"] == [fmt] and asked["from"] and asked["to"], href
        assert p.get_attribute(f"#history-downloads a[data-format='{fmt}']", "download") == ""
    gpx = page.context.request.get(site.url + links["gpx"])  # the session cookie only
    assert gpx.status == 200
    assert gpx.headers["content-type"].startswith("application/gpx+xml")
    assert gpx.text().count("<trkpt") == 45
    assert page.errors == []
    p.set_viewport_size({"width": 390, "height": 844})  # a phone
    p.screenshot(path=str(tmp_path / "history-phone.png"), full_page=True)


def test_a_period_with_no_position_says_so(browser: Any, site: HubThread) -> None:
    device = site.device_ids[0]  # type: ignore[attr-defined]
    ingest_track_with_a_stop(site, device)  # two hours ago: not yesterday
    page = Page(browser, site.url)
    page.sign_in("vic")
    p = page.page
    p.goto(f"{site.url}/#/history?device={device}&period=yesterday")
    p.wait_for_selector("body[data-history-ready='1']", timeout=20_000)
    assert "no position" in p.inner_text("#history-status")
    assert p.locator("#history-downloads a").count() == 3  # a viewer may download too
    assert page.errors == []


def test_a_custom_period_is_the_clients_wall_clock(browser: Any, site: HubThread) -> None:
    """Custom from/to are wall-clock times in the client's zone (here UTC-6)."""
    device = site.device_ids[0]  # type: ignore[attr-defined]
    start = ingest_track_with_a_stop(site, device)
    admin = {"Authorization": f"Bearer {site.admin}"}
    (client,) = httpx.get(f"{site.url}/api/clients", headers=admin).json()["clients"]
    r = httpx.patch(
        f"{site.url}/api/clients/{client['id']}",
        json={"timezone": "America/Guatemala"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    # the track's first 20 minutes: from 10 min before it to 10 min after its start
    wall = start - timedelta(hours=6)
    since, until = wall - timedelta(minutes=10), wall + timedelta(minutes=10)
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = page.page
    fmt = "%Y-%m-%dT%H:%M"
    p.goto(
        f"{site.url}/#/history?device={device}&period=custom"
        f"&from={since.strftime(fmt)}&to={until.strftime(fmt)}"
    )
    p.wait_for_selector("body[data-history-ready='1']", timeout=20_000)
    assert p.input_value("#history-from") == since.strftime(fmt)
    href = p.get_attribute("#history-downloads a[data-format='csv']", "href") or ""
    asked = parse_qs(urlsplit(href).query)
    utc = (start - timedelta(minutes=10)).replace(second=0)
    assert asked["from"] == [utc.strftime("%Y-%m-%dT%H:%M:%SZ")], href
    assert "10 positions" in p.inner_text("#history-status")  # minutes 0..9 (start's seconds)
    # longer than the stops API takes (31 days): the track without stops, saying why
    p.goto(
        f"{site.url}/#/history?device={device}&period=custom"
        f"&from={(since - timedelta(days=40)).strftime(fmt)}&to={until.strftime(fmt)}"
    )
    p.wait_for_selector("#history-trips:has-text('up to 31 days')", timeout=20_000)
    assert "10 positions" in p.inner_text("#history-status")
    assert p.locator("#history-map path.track-line").count() == 1
    assert page.errors == []


def test_a_long_history_is_read_page_by_page_up_to_a_cap(browser: Any, site: HubThread) -> None:
    """The page follows ``next_cursor`` and stops at 50,000 points, saying so (the
    positions API is answered here with endless synthetic pages of 10,000)."""
    device = site.device_ids[0]  # type: ignore[attr-defined]
    asked: list[dict[str, list[str]]] = []
    start = datetime.now(UTC) - timedelta(hours=20)

    def positions(route: Any) -> None:
        query = parse_qs(urlsplit(route.request.url).query)
        asked.append(query)
        n = len(asked) - 1
        limit = int(query["limit"][0])
        rows = [
            {
                "fix_time": (start + timedelta(seconds=n * limit + i)).isoformat(),
                "lat": 14.6 + (n * limit + i) * 1e-6,
                "lon": -90.5,
                "speed_kmh": 30.0,
                "course_deg": 0.0,
                "valid": True,
            }
            for i in range(limit)
        ]
        body = {"positions": rows, "next_cursor": f"page-{n + 1}"}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page = Page(browser, site.url)
    page.sign_in("ann")
    p = page.page
    page.context.route(f"**/api/devices/{device}/positions?*", positions)
    p.goto(f"{site.url}/#/history?device={device}&period=24h")
    p.wait_for_selector("body[data-history-ready='1']", timeout=60_000)
    status = p.inner_text("#history-status")
    assert re.search(r"50\D?000 positions, .*; only the first 50\D?000 are shown", status), status
    assert [q["limit"] for q in asked] == [["10000"]] * 5
    assert [q.get("cursor") for q in asked] == [
        None,
        ["page-1"],
        ["page-2"],
        ["page-3"],
        ["page-4"],
    ]
    assert p.locator("#history-map path.track-line").count() == 1
    assert page.errors == []
