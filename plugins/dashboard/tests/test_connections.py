"""The Connections page in a real browser: add a connection through the generated form,
test it with a wrong then a right password, save, import two of three devices; edit
without retyping the password; a viewer sees the list read-only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fake_cloud
import httpx
import pytest
from browser_hub import HubThread, skip_browser_test
from test_browser import Page

WAIT = 20_000
FITS = """() => [document.scrollingElement, document.querySelector('.conn-page')]
    .every((el) => el.scrollWidth <= el.clientWidth)"""  # no sideways scrolling


@pytest.fixture
def site(tmp_path: Path) -> Iterator[HubThread]:
    hub = HubThread(tmp_path)
    hub.plugins.append(("fakecloud", fake_cloud))
    hub.start()
    try:
        hub.populate(devices=0)
        if not hub.session_api():
            skip_browser_test("this hub has no session API yet (POST /api/session is a 404)")
        hub.set_passwords()
        yield hub
    finally:
        hub.stop()


def test_add_test_save_and_import(browser: Any, site: HubThread) -> None:
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = page.page
    p.click("#nav a[href='#/connections']")
    p.wait_for_selector("#conn-list .empty")
    p.click("#conn-add")
    p.select_option("#conn-kind", "fakecloud")
    # the form drawn from the kind's schemas
    password = p.locator("#cf-credentials-password")
    assert password.get_attribute("type") == "password"
    assert password.get_attribute("required") is not None
    assert p.locator("#cf-credentials-account").get_attribute("required") is not None
    assert "Your account at the cloud." in p.inner_text("#conn-form")
    assert p.locator("#cf-options-interval_s").get_attribute("type") == "number"
    assert p.input_value("#cf-options-interval_s") == "60"
    assert p.locator("#cf-options-parked").is_checked()
    assert p.input_value("#cf-options-units") == "metric"

    p.fill("#conn-label", "My cloud")
    p.fill("#cf-credentials-account", "fleet")
    p.fill("#cf-credentials-password", "not it")
    p.click("#conn-test")
    p.wait_for_selector("#conn-test-result.error", timeout=WAIT)
    assert p.inner_text("#conn-test-result") == "Password: the cloud refused the password"
    assert password.get_attribute("aria-invalid") == "true"  # the field is highlighted
    p.fill("#cf-credentials-password", fake_cloud.PASSWORD)
    assert password.get_attribute("aria-invalid") is None  # being corrected
    p.click("#conn-test")
    p.wait_for_selector("#conn-test-result.ok", timeout=WAIT)
    assert "Signed in as fleet: 3 devices" in p.inner_text("#conn-test-result")
    assert password.get_attribute("aria-invalid") is None
    assert site.admin_api("GET", "/api/connections")["connections"] == []  # a test saves nothing

    p.click("#conn-save")
    p.wait_for_selector("#remote-list li[data-upstream-id='r-3']", timeout=WAIT)
    (conn,) = site.admin_api("GET", "/api/connections")["connections"]
    assert conn["label"] == "My cloud" and conn["options"]["interval_s"] == 60
    assert conn["credentials"]["password"] == {"set": True, "secret": True, "value": None}
    p.check("#remote-list li[data-upstream-id='r-1'] input")
    p.check("#remote-list li[data-upstream-id='r-3'] input")
    p.click("#remote-import")
    p.wait_for_selector("#remote-status.ok", timeout=WAIT)
    assert "Imported 2 devices" in p.inner_text("#remote-status")
    devices = site.admin_api("GET", "/api/devices")["devices"]
    assert sorted(d["name"] for d in devices) == ["Car 3", "Truck 1"]
    assert {d["connection_id"] for d in devices} == {conn["id"]}
    assert p.locator("#remote-list li[data-imported='1']").count() == 2
    assert p.locator("#remote-list input:not(:disabled)").count() == 1

    # the list: state and device count; then edit without retyping the password
    p.click("#remote-done")
    card = p.locator(f".conn-card[data-id='{conn['id']}']")
    card.wait_for(timeout=WAIT)
    assert card.locator(".devices").inner_text() == "2"
    card.locator("button.edit").click()
    p.wait_for_selector("#cf-credentials-password")
    assert p.input_value("#cf-credentials-password") == ""
    assert p.get_attribute("#cf-credentials-password", "placeholder") == "unchanged"
    assert p.input_value("#cf-credentials-account") == "fleet"
    p.fill("#conn-label", "Renamed cloud")
    p.click("#conn-test")  # the saved password is used
    p.wait_for_selector("#conn-test-result.ok", timeout=WAIT)
    p.click("#conn-save")
    card.wait_for(timeout=WAIT)
    assert "Renamed cloud" in card.inner_text()
    saved = site.admin_api("GET", f"/api/connections/{conn['id']}")
    assert saved["label"] == "Renamed cloud" and saved["credentials"]["password"]["set"]
    test = httpx.post(
        f"{site.url}/api/connections/{conn['id']}/test",
        headers={"Authorization": f"Bearer {site.admin}"},
    )
    assert test.json()["ok"] is True, test.text  # the password was kept

    # disable, then delete with a confirmation
    card.locator("button.toggle").click()
    p.wait_for_selector(f".conn-card[data-id='{conn['id']}'] button.toggle:text('Enable')")
    assert site.admin_api("GET", f"/api/connections/{conn['id']}")["enabled"] is False
    card.locator("button.delete").click()
    card.locator("button.cancel").click()
    card.locator("button.delete").click()
    card.locator("button.confirm-delete").click()
    p.wait_for_selector("#conn-list .empty", timeout=WAIT)
    assert site.admin_api("GET", "/api/connections")["connections"] == []
    assert page.errors == []


def test_a_kind_without_browse_on_a_phone(browser: Any, site: HubThread) -> None:
    """On a phone-sized screen the form fits; a kind whose devices cannot be browsed goes
    back to the list on save, with no import offered."""
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = page.page
    p.set_viewport_size({"width": 390, "height": 760})
    p.goto(site.url + "/#/connections?add=1")
    p.select_option("#conn-kind", "fakefeed")
    p.wait_for_selector("#cf-credentials-api_key[type='password']")
    assert p.evaluate(FITS)
    p.fill("#conn-label", "Feed")
    p.click("#conn-save")  # the required key is missing: named before asking the hub
    p.wait_for_selector("#cf-credentials-api_key[aria-invalid='true']")
    assert p.inner_text("#conn-test-result") == "API key: required"
    p.fill("#cf-credentials-api_key", "k-123")
    p.click("#conn-save")
    card = p.locator(".conn-card")
    card.wait_for(timeout=WAIT)
    assert "Feed" in card.inner_text()
    assert card.locator("button.browse").count() == 0
    assert card.locator("button.edit").count() == 1
    assert p.evaluate(FITS)
    assert page.errors == []


def test_the_administrator_names_the_client(browser: Any, site: HubThread) -> None:
    other = site.hub.store.create_client("Other")
    site.add_admin("ada")
    page = Page(browser, site.url)
    page.sign_in("ada")
    p = page.page
    p.goto(site.url + "/#/connections?add=1")
    p.select_option("#conn-kind", "fakefeed")
    p.select_option("#conn-client", str(other.id))
    p.fill("#conn-label", "Other feed")
    p.fill("#cf-credentials-api_key", "k-123")
    p.click("#conn-save")
    p.locator(".conn-card").wait_for(timeout=WAIT)
    (conn,) = site.admin_api("GET", "/api/connections")["connections"]
    assert conn["client_id"] == other.id and conn["label"] == "Other feed"
    # the administrator's list says whose each connection is
    card = p.locator(f".conn-card[data-id='{conn['id']}']")
    assert card.locator(".conn-client").inner_text() == "Other"
    assert page.errors == []


def test_a_viewer_sees_the_list_read_only(browser: Any, site: HubThread) -> None:
    client = site.hub.store.list_clients()[0]
    site.hub.store.create_connection(
        client.id or 0, "fakecloud", "Shared cloud", {"account": "a", "password": "pw!"}, {}, True
    )
    page = Page(browser, site.url)
    page.sign_in("vic")
    p = page.page
    p.goto(site.url + "/#/connections")
    p.wait_for_selector(".conn-card", timeout=WAIT)
    assert "Shared cloud" in p.inner_text(".conn-card")
    assert p.locator("#conn-add, .conn-card button").count() == 0
    assert p.locator(".conn-client").count() == 0  # its own client's: no column for it
    p.goto(site.url + "/#/connections?add=1")  # the editor is not offered either
    p.wait_for_selector(".conn-card", timeout=WAIT)
    assert p.locator("#conn-form").count() == 0
    assert page.errors == []
