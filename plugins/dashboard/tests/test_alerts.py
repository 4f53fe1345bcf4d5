"""The alerts, rules and webhooks pages in a real browser (see test_browser.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from browser_hub import HubThread
from test_browser import Page, browser, site  # noqa: F401  (fixtures)

pytest.importorskip("playwright.sync_api")

WAIT = 20_000


def admin_api(hub: HubThread, method: str, path: str, **kwargs: Any) -> Any:
    r = httpx.request(
        method, hub.url + path, headers={"Authorization": f"Bearer {hub.admin}"}, **kwargs
    )
    assert r.status_code < 300, r.text
    return r.json() if r.content else None


def client_id(hub: HubThread) -> int:
    return admin_api(hub, "GET", "/api/clients")["clients"][0]["id"]


def ignition_rule(hub: HubThread) -> int:
    body = {"client_id": client_id(hub), "name": "Engine on", "type": "ignitionOn"}
    return admin_api(hub, "POST", "/api/rules", json=body)["id"]


def test_a_new_alert_appears_live_with_the_badge_and_opens_the_map(
    browser: Any,  # noqa: F811
    site: HubThread,  # noqa: F811
) -> None:
    device = site.device_ids[0]  # type: ignore[attr-defined]
    ignition_rule(site)
    site.ingest(device, 14.6, -90.5, ignition=False)
    site.ingest(device, 14.6, -90.5, ignition=True)  # an alert before the page opens
    page = Page(browser, site.url)
    page.sign_in("vic")
    p = page.page
    p.click("#nav a[href='#/alerts']")
    p.wait_for_selector("#alert-list li", timeout=WAIT)
    assert p.locator("#alert-list li").count() == 1
    assert p.locator("#alerts-badge").is_hidden()

    site.ingest(device, 14.62, -90.48, ignition=False)
    site.ingest(device, 14.63, -90.47, ignition=True)  # raised while the list is open
    p.wait_for_selector("#alert-list li:nth-child(2)", timeout=WAIT)
    first = p.locator("#alert-list li").first
    assert "Demo vehicle" in first.inner_text() and "Engine on" in first.inner_text()
    ids = [
        int(x)
        for x in p.eval_on_selector_all("#alert-list li", "els => els.map(e => e.dataset.id)")
    ]
    assert ids == sorted(ids, reverse=True)  # newest first, the new one on top, no reload
    p.wait_for_selector("#alerts-badge[data-count='1']:not([hidden])", timeout=WAIT)

    first.locator("button").click()
    p.wait_for_selector("body[data-map-ready='1']", timeout=WAIT)
    assert "device=" in p.evaluate("location.hash")
    p.wait_for_selector("#panel:not([hidden])", timeout=WAIT)
    assert "Demo vehicle" in p.inner_text("#panel")
    center = p.evaluate(
        "(() => { const c = document.getElementById('view').mapInstance.getCenter(); return [c.lat, c.lng]; })()"
    )
    assert center == pytest.approx([14.63, -90.47], abs=1e-4)
    assert p.locator("#alerts-badge").is_hidden()  # seen on the list

    site.ingest(device, 14.62, -90.48, ignition=False)
    site.ingest(device, 14.63, -90.47, ignition=True)  # counted on any page
    p.wait_for_selector("#alerts-badge[data-count='1']:not([hidden])", timeout=WAIT)
    p.click("#nav a[href='#/alerts']")
    p.wait_for_selector("#alert-list li:nth-child(3)", timeout=WAIT)
    assert p.locator("#alerts-badge").is_hidden()
    assert page.errors == []
