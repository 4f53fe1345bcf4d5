"""The dashboard in a real browser: Debian's chromium driven by Playwright's sync API,
in plain (not trio) tests, against a real hub served from a thread.

Without chromium these skip, saying why; with ``GPSHUB_REQUIRE_BROWSER=1`` (``.ci/run``)
they fail instead.  They also need the session API (``POST /api/session``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from browser_hub import PASSWORD, HubThread, skip_browser_test

playwright_api = pytest.importorskip("playwright.sync_api")


class Page:
    """A page with its console errors collected and tiles answered offline."""

    def __init__(self, browser: Any, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 800})
        self.context.route("https://tile.openstreetmap.org/**", lambda r: r.fulfill(status=204))
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.url = url
        self.response = self.page.goto(url + "/")

    def _console(self, message: Any) -> None:
        where = message.location.get("url", "")
        if message.type == "error" and not where.endswith("/api/session"):  # 401 signed out
            self.errors.append(f"{message.text} ({where})")

    def sign_in(self, name: str, password: str = PASSWORD) -> None:
        p = self.page
        p.fill("#signin-name", name)
        p.fill("#signin-password", password)
        p.click("form.signin button[type=submit]")
        p.wait_for_selector("body[data-map-ready='1']", timeout=20_000)


def test_sign_in_and_out(browser: Any, site: HubThread) -> None:
    page = Page(browser, site.url)
    p = page.page
    p.wait_for_selector("#signin-name")
    p.fill("#signin-name", "ann")
    p.fill("#signin-password", "wrong password!")
    p.click("form.signin button[type=submit]")
    p.wait_for_selector("#signin-error:not([hidden])")
    assert "Wrong user name or password" in p.inner_text("#signin-error")
    page.errors.clear()  # the refused sign-in's 401 is expected
    page.sign_in("ann")
    assert "ann (manager)" in p.inner_text("#who")
    p.click("#signout")
    p.wait_for_selector("#signin-name")
    p.reload()  # the session ended on the server: a reload stays signed out
    p.wait_for_selector("#signin-name")
    assert page.errors == []


def test_the_marker_appears_and_moves_live(browser: Any, site: HubThread, tmp_path: Path) -> None:
    device = site.device_ids[0]  # type: ignore[attr-defined]
    site.ingest(device, 14.6, -90.5, speed_kmh=30.0, course_deg=90.0, ignition=True)
    page = Page(browser, site.url)
    csp = page.response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    page.sign_in("ann")
    p = page.page
    marker = p.locator(f".marker[data-device-id='{device}']")
    marker.wait_for()
    assert marker.get_attribute("data-status") == "moving"
    p.screenshot(path=str(tmp_path / "map.png"))  # kept as a CI artefact
    started = time.time()
    site.ingest(device, 14.61, -90.49, speed_kmh=0.0, ignition=False)
    p.wait_for_selector(f".marker[data-device-id='{device}'][data-lat='14.61']", timeout=20_000)
    moved_at = int(marker.get_attribute("data-moved-at") or 0) / 1000
    print(f"live latency, ingest to marker move: {(moved_at - started) * 1000:.0f} ms")
    assert marker.get_attribute("data-status") == "ignition_off"
    p.click(f".marker[data-device-id='{device}']")
    p.wait_for_selector("#panel:not([hidden])")
    text = p.inner_text("#panel")
    assert "Demo vehicle" in text and "Ignition" in text and "s ago" in text
    assert p.locator("#edit-device").count() == 1  # a manager may rename
    off = p.inner_text("#status-counts button[data-status='ignition_off']")
    assert off.endswith(" 1"), off  # the counts follow the live status
    assert page.errors == []


def test_a_viewer_sees_no_edit_control(browser: Any, site: HubThread) -> None:
    device = site.device_ids[0]  # type: ignore[attr-defined]
    site.ingest(device, 14.6, -90.5, speed_kmh=0.0)
    page = Page(browser, site.url)
    page.sign_in("vic")
    p = page.page
    assert "vic (viewer)" in p.inner_text("#who")
    p.click(f"#device-list li[data-id='{device}']")
    p.wait_for_selector("#panel:not([hidden])")
    assert p.locator("#edit-device").count() == 0
    assert p.locator("button.edit, .edit").count() == 0
    assert page.errors == []


WRITE = """async ([token, name]) => {
  const headers = {"Content-Type": "application/json"};
  if (token) headers["X-CSRF-Token"] = token;
  const r = await fetch("/api/geofence-groups", {method: "POST", headers, body: JSON.stringify({name})});
  return {status: r.status, body: await r.json()};
}"""


def test_csrf_a_write_without_the_token_is_refused(browser: Any, site: HubThread) -> None:
    """The signed-in page's cookie alone does not make a write: without the session's
    X-CSRF-Token (or with another one) the hub refuses it and stores nothing."""
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = page.page
    for token in (None, "not-the-token"):
        answer = p.evaluate(WRITE, [token, "forged"])
        assert answer["status"] == 403, answer
        assert answer["body"]["error"]["code"] == "csrf"
        assert answer["body"]["error"]["field"] == "X-CSRF-Token"
    token = p.evaluate("async () => (await (await fetch('/api/session')).json()).csrf_token")
    answer = p.evaluate(WRITE, [token, "made by the page"])
    assert answer["status"] == 201, answer
    groups = site.admin_api("GET", "/api/geofence-groups")["groups"]
    assert [g["name"] for g in groups] == ["made by the page"]
    page.errors.clear()  # the refused writes are logged by the browser
    page.context.close()


@pytest.mark.parametrize("tiles", ["unreachable", "none configured"])
def test_the_map_works_without_tiles(browser: Any, tmp_path: Path, tiles: str) -> None:
    """No internet (tile requests fail) or no tile source at all (``map_tile_url`` empty):
    the map still draws the markers on a blank background."""
    settings = {"map_tile_url": ""} if tiles == "none configured" else {}
    hub = HubThread(tmp_path, **settings).start()
    try:
        (device,) = hub.populate()
        if not hub.session_api():
            skip_browser_test("this hub has no session API yet (POST /api/session is a 404)")
        hub.set_passwords()
        hub.ingest(device, 14.6, -90.5, speed_kmh=0.0, ignition=False)
        page = Page(browser, hub.url)
        tile_requests: list[str] = []

        def offline(route: Any) -> None:
            tile_requests.append(route.request.url)
            route.abort("internetdisconnected")

        page.context.unroute("https://tile.openstreetmap.org/**")
        page.context.route("https://tile.openstreetmap.org/**", offline)
        page.sign_in("ann")
        page.page.locator(f".marker[data-device-id='{device}']").wait_for()
        assert not [e for e in page.errors if "page error" in e]
        assert bool(tile_requests) == (tiles == "unreachable")
    finally:
        hub.stop()
