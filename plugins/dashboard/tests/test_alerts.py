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


def rules(hub: HubThread) -> list[dict[str, Any]]:
    return admin_api(hub, "GET", "/api/rules")["rules"]


def test_a_manager_creates_edits_and_deletes_a_rule_through_the_form(
    browser: Any,  # noqa: F811
    site: HubThread,  # noqa: F811
) -> None:
    device = site.device_ids[0]  # type: ignore[attr-defined]
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = page.page
    p.on("dialog", lambda dialog: dialog.accept())
    p.click("#nav a[href='#/rules']")
    p.wait_for_selector("#view[data-ready='1']", timeout=WAIT)
    p.click("#rule-new")
    p.fill("#rule-name", "Too fast")
    p.select_option("#rule-type", "overspeed")
    p.wait_for_selector("#param-limit_kmh")
    p.click("#rule-save")  # the limit is required: the API's error names it
    p.wait_for_selector("#rule-error:not([hidden])", timeout=WAIT)
    assert "limit_kmh" in p.inner_text("#rule-error")
    assert rules(site) == []
    p.fill("#param-limit_kmh", "90")
    p.select_option("#rule-devices", str(device))
    p.click("#rule-save")
    p.wait_for_selector("#rule-list tr", timeout=WAIT)
    (rule,) = rules(site)
    assert rule["name"] == "Too fast" and rule["type"] == "overspeed"
    assert rule["params"]["limit_kmh"] == 90 and rule["device_ids"] == [device]
    assert rule["enabled"] is True and rule["owner_name"] == "ann"

    row = p.locator(f"#rule-list tr[data-id='{rule['id']}']")
    assert "Demo vehicle" in row.inner_text()
    row.locator("input.rule-enabled").uncheck()
    p.wait_for_function(
        "id => fetch('/api/rules/' + id).then(r => r.json()).then(r => !r.enabled)", arg=rule["id"]
    )
    row.locator("button.edit").click()
    assert p.input_value("#param-limit_kmh") == "90"
    p.fill("#rule-name", "Much too fast")
    p.click("#rule-save")
    p.wait_for_selector("#rule-list tr:has-text('Much too fast')", timeout=WAIT)
    (rule,) = rules(site)
    assert rule["name"] == "Much too fast" and rule["params"]["limit_kmh"] == 90
    assert rule["enabled"] is False

    p.locator(f"#rule-list tr[data-id='{rule['id']}'] button.delete").click()
    p.wait_for_selector("#rules-empty:not([hidden])", timeout=WAIT)
    assert rules(site) == []
    refused = [e for e in page.errors if "status of 422" in e]  # the missing limit
    assert len(refused) == 1 and page.errors == refused


def test_a_viewer_sees_no_edit_controls_on_these_pages(
    browser: Any,  # noqa: F811
    site: HubThread,  # noqa: F811
) -> None:
    ignition_rule(site)
    page = Page(browser, site.url)
    page.sign_in("vic")
    p = page.page
    p.click("#nav a[href='#/rules']")
    p.wait_for_selector("#rule-list tr", timeout=WAIT)
    assert "Engine on" in p.inner_text("#rule-list")
    for selector in ("#rule-new", "button.edit", "button.delete", "#rule-list input"):
        assert p.locator(selector).count() == 0, selector
    assert page.errors == []
