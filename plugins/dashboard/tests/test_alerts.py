"""The alerts, rules and webhooks pages in a real browser (see test_browser.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from browser_hub import HubThread
from test_browser import Page

from hub.models import dead_t, outbox_t, sinks_t

pytest.importorskip("playwright.sync_api")

WAIT = 20_000


def client_id(hub: HubThread) -> int:
    return hub.admin_api("GET", "/api/clients")["clients"][0]["id"]


def ignition_rule(hub: HubThread) -> int:
    body = {"client_id": client_id(hub), "name": "Engine on", "type": "ignitionOn"}
    return hub.admin_api("POST", "/api/rules", json=body)["id"]


def test_a_new_alert_appears_live_with_the_badge_and_opens_the_map(
    browser: Any,
    site: HubThread,
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
    return hub.admin_api("GET", "/api/rules")["rules"]


def test_a_manager_creates_edits_and_deletes_a_rule_through_the_form(
    browser: Any,
    site: HubThread,
) -> None:
    device = site.device_ids[0]  # type: ignore[attr-defined]
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = page.page
    p.on("dialog", lambda dialog: dialog.accept())
    p.click("#nav a[href='#/rules']")
    p.wait_for_selector("#view[data-ready='1']", timeout=WAIT)
    p.click("#rule-new")
    assert p.is_disabled("#rule-webhook")  # the client has no alerts webhook yet
    p.fill("#rule-name", "Too fast")
    p.select_option("#rule-type", "overspeed")
    p.wait_for_selector("#params-limit_kmh")
    p.click("#rule-save")  # the limit is required: the API's error names it
    p.wait_for_selector("#rule-error:not([hidden])", timeout=WAIT)
    assert "limit_kmh" in p.inner_text("#rule-error")
    assert rules(site) == []
    p.fill("#params-limit_kmh", "90")
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
    assert p.input_value("#params-limit_kmh") == "90"
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
    browser: Any,
    site: HubThread,
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


def alerts_sink(hub: HubThread) -> int:
    """A disabled alerts webhook (it sends nothing: resent dead letters wait)."""
    body = {
        "client_id": client_id(hub),
        "name": "ACME alerts",
        "kind": "webhook",
        "format": "gpshub-alert",
        "settings": {"url": "https://alerts.example.com/hook"},
        "enabled": False,
    }
    return hub.admin_api("POST", "/api/sinks", json=body)["id"]


def put_dead_letters(hub: HubThread, sink_id: int, count: int) -> list[int]:
    """``count`` dead letters, written straight to the database as a worker leaves them."""
    ids = []
    now = datetime.now(UTC)
    with hub.hub.store.engine.begin() as conn:
        for i in range(count):
            values = {"client_id": client_id(hub), "kind": "alert", "created_at": now}
            outbox_id = conn.execute(
                sa.insert(outbox_t)
                .values(payload={"eventId": 1000 + i}, **values)
                .returning(outbox_t.c.id)
            ).scalar_one()
            letter = {"sink_id": sink_id, "outbox_id": outbox_id, "attempts": 1, "status": 400}
            ids.append(
                conn.execute(
                    sa.insert(dead_t)
                    .values(
                        delivery_id=f"msg_{outbox_id}",
                        error="HTTP 400",
                        excerpt="refused",
                        created_at=now,
                        **letter,
                    )
                    .returning(dead_t.c.id)
                ).scalar_one()
            )
        conn.execute(sa.update(sinks_t).where(sinks_t.c.id == sink_id).values(cursor=outbox_id))
    return ids


def test_webhooks_show_their_state_and_a_manager_resends_and_discards_dead_letters(
    browser: Any,
    site: HubThread,
) -> None:
    sink_id = alerts_sink(site)
    ids = put_dead_letters(site, sink_id, 3)
    letters = f"/api/sinks/{sink_id}/dead-letters"
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = page.page
    p.on("dialog", lambda dialog: dialog.accept())
    p.click("#nav a[href='#/webhooks']")
    card = p.locator(f".sink[data-id='{sink_id}']")
    card.wait_for(timeout=WAIT)
    assert "ACME alerts" in card.inner_text() and "disabled" in card.inner_text()
    assert card.locator("[data-stat='dead_letters'] .stat-value").inner_text() == "3"
    card.locator("button.show-letters").click()
    card.locator(f"tr[data-id='{ids[0]}'] input.letter-pick").check()
    card.locator("button.resend").click()
    card.locator(f"tr[data-id='{ids[0]}']").wait_for(state="detached", timeout=WAIT)
    assert [d["id"] for d in site.admin_api("GET", letters)["dead_letters"]] == ids[1:]
    p.wait_for_selector(
        f".sink[data-id='{sink_id}'] [data-stat='pending'] .stat-value:text-is('1')",
        timeout=WAIT,
    )
    card.locator("button.discard").click()  # none chosen: all
    card.locator(".letters p.empty").wait_for(timeout=WAIT)
    assert "null" not in card.inner_text() and "undefined" not in card.inner_text()
    assert site.admin_api("GET", letters)["dead_letters"] == []
    assert card.locator("[data-stat='dead_letters'] .stat-value").inner_text() == "0"
    assert page.errors == []

    viewer = Page(browser, site.url)
    viewer.sign_in("vic")
    put_dead_letters(site, sink_id, 1)
    v = viewer.page
    v.click("#nav a[href='#/webhooks']")
    v.wait_for_selector(".sink button.show-letters:not([disabled])", timeout=WAIT)
    v.click(".sink button.show-letters:not([disabled])")
    v.wait_for_selector(".letters-table tbody tr", timeout=WAIT)
    for selector in ("button.resend", "button.discard", "input.letter-pick"):
        assert v.locator(selector).count() == 0, selector
    assert viewer.errors == []


def test_a_manager_creates_the_alerts_webhook_sees_its_secret_once_and_disables_it(
    browser: Any,
    site: HubThread,
) -> None:
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = page.page
    p.click("#nav a[href='#/webhooks']")
    p.wait_for_selector("#view[data-ready='1']", timeout=WAIT)
    p.click("#sink-new")
    p.wait_for_selector("#settings-url", timeout=WAIT)
    formats = p.eval_on_selector_all("#sink-format option", "els => els.map(e => e.value)")
    assert formats == ["gpshub-alert"]  # location relays are the administrator's
    p.fill("#sink-name", "ACME alerts")
    p.fill("#settings-url", "https://receiver.example/hook")
    p.click("#sink-save")
    p.wait_for_selector("#sink-secret, #sink-error:not([hidden])", timeout=WAIT)
    assert p.locator("#sink-error:not([hidden])").count() == 0, p.inner_text("#sink-error")
    secret = p.inner_text("#sink-secret")
    assert secret.startswith("whsec_")
    (sink,) = site.admin_api("GET", "/api/sinks")["sinks"]
    assert sink["name"] == "ACME alerts" and sink["format"] == "gpshub-alert"
    assert sink["settings"]["url"] == "https://receiver.example/hook" and sink["signing"]
    assert secret not in str(sink)
    p.click("#sink-done")
    assert p.locator("#sink-secret").count() == 0  # never shown again
    assert p.locator("#sink-new").is_hidden()  # one alerts webhook per client
    card = p.locator(f".sink[data-id='{sink['id']}']")
    card.locator("input.sink-enabled").uncheck()
    card.locator(".state:text-is('disabled')").wait_for(timeout=WAIT)
    assert site.admin_api("GET", f"/api/sinks/{sink['id']}")["enabled"] is False
    assert page.errors == []

    viewer = Page(browser, site.url)
    viewer.sign_in("vic")
    v = viewer.page
    v.click("#nav a[href='#/webhooks']")
    v.wait_for_selector(f".sink[data-id='{sink['id']}']", timeout=WAIT)
    for selector in ("#sink-new", "input.sink-enabled"):
        assert v.locator(selector).count() == 0, selector
    assert viewer.errors == []
