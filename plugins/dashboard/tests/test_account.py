"""The Account and Users pages and rule schedules in a real browser (see test_browser.py):
a user changes its own password, creates an API token that works, a manager adds a user
who then signs in, a viewer is offered nothing it may not do, and a rule's schedule is
made, read back and edited through the rule form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_hub import PASSWORD, HubThread
from test_browser import Page

from hub.models import Role

pytest.importorskip("playwright.sync_api")

WAIT = 20_000
FITS = """() => [document.scrollingElement, document.getElementById('view')]
    .every((el) => el.scrollWidth <= el.clientWidth)"""  # no sideways scrolling


def signs_in(hub: HubThread, name: str, password: str) -> bool:
    r = httpx.post(
        f"{hub.url}/api/session",
        json={"name": name, "password": password},
        headers={"Origin": hub.url},
    )
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def users(hub: HubThread) -> dict[str, dict[str, Any]]:
    return {u["name"]: u for u in hub.admin_api("GET", "/api/users")["users"]}


def ready(page: str) -> str:
    """The selector of ``page`` loaded (a new page's, not the last one's, once the hash
    has changed)."""
    return f"body[data-page='{page}'] #view[data-ready='1']"


def refused(page: Page, status: int) -> list[str]:
    """The console errors of the expected refusals (the browser logs each failed fetch)."""
    return [e for e in page.errors if f"status of {status}" in e]


def test_a_user_changes_its_own_password_and_signs_in_with_it(
    browser: Any, site: HubThread, tmp_path: Path
) -> None:
    page = Page(browser, site.url)
    page.sign_in("vic")
    p = page.page
    p.set_viewport_size({"width": 390, "height": 760})  # a phone: the name still links
    p.click("#who")
    p.wait_for_selector(ready("account"), timeout=WAIT)
    assert p.evaluate("location.hash") == "#/account"
    assert p.inner_text("#account-name") == "vic"
    assert p.inner_text("#account-role") == "viewer"
    assert p.inner_text("#account-client") == "Demo"
    assert p.inner_text("#account-zone") == "UTC"
    assert p.evaluate(FITS)

    new = "a much better password"
    p.fill("#pw-current", PASSWORD)
    p.fill("#pw-new", "short")
    p.fill("#pw-repeat", "short")
    p.click("#pw-save")  # too short: named before asking the hub
    p.wait_for_selector("#pw-new[aria-invalid='true']")
    assert p.inner_text("#pw-error") == "New password: must have at least 10 characters"
    p.fill("#pw-new", new)
    p.fill("#pw-repeat", new + "!")
    p.click("#pw-save")
    p.wait_for_selector("#pw-repeat[aria-invalid='true']")
    assert p.inner_text("#pw-error").startswith("Repeat:")

    p.fill("#pw-current", "not my password")
    p.fill("#pw-repeat", new)
    p.click("#pw-save")  # the hub refuses the wrong current password, naming it
    p.wait_for_selector("#pw-current[aria-invalid='true']", timeout=WAIT)
    assert p.inner_text("#pw-error") == "Current password: is not your current password"
    assert p.locator("#pw-new[aria-invalid]").count() == 0
    assert signs_in(site, "vic", PASSWORD)  # unchanged

    p.fill("#pw-current", PASSWORD)
    p.click("#pw-save")
    p.wait_for_selector("#pw-done:not([hidden])", timeout=WAIT)
    assert p.is_hidden("#pw-error") and p.input_value("#pw-current") == ""
    p.screenshot(path=str(tmp_path / "account-phone.png"), full_page=True)
    assert not signs_in(site, "vic", PASSWORD)

    p.set_viewport_size({"width": 1200, "height": 800})
    p.click("#signout")
    p.wait_for_selector("#signin-name")
    page.sign_in("vic", new)
    assert "vic (viewer)" in p.inner_text("#who")
    assert refused(page, 403) and page.errors == refused(page, 403)  # the wrong one


def test_a_token_is_shown_once_and_works_and_a_viewer_is_offered_no_user_admin(
    browser: Any, site: HubThread, tmp_path: Path
) -> None:
    page = Page(browser, site.url)
    page.sign_in("vic")
    p = page.page
    assert p.locator("#nav a[href='#/users']").count() == 0
    p.goto(site.url + "/#/users")
    p.wait_for_selector("#users-denied")
    for selector in ("#user-new", "#user-list", "button.user-password", "button.user-delete"):
        assert p.locator(selector).count() == 0, selector

    p.click("#who")
    p.wait_for_selector(ready("account"), timeout=WAIT)
    assert p.is_visible("#tokens-empty")
    p.fill("#token-name", "report script")
    p.select_option("#token-expires", "30")
    p.click("#token-create")
    p.wait_for_selector("#token-value", timeout=WAIT)
    token = p.inner_text("#token-value").strip()
    row = p.locator("#token-list tr")
    row.wait_for(timeout=WAIT)
    assert "report script" in row.inner_text()
    assert token not in p.inner_text("#token-list")  # only its first characters
    p.click("#token-copy")  # to the clipboard, or selected where there is none
    p.wait_for_selector("#token-copied:text-matches('copied|selected')", timeout=WAIT)
    p.screenshot(path=str(tmp_path / "account.png"), full_page=True)

    me = httpx.get(f"{site.url}/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["user"]["name"] == "vic"
    (listed,) = httpx.get(
        f"{site.url}/api/tokens", headers={"Authorization": f"Bearer {token}"}
    ).json()["tokens"]
    assert listed["name"] == "report script" and listed["expires_at"] is not None

    p.click("#token-hide")
    assert p.locator("#token-value").count() == 0
    p.reload()  # never shown again
    p.wait_for_selector(ready("account"), timeout=WAIT)
    assert p.locator("#token-value").count() == 0
    assert token not in p.inner_text("#view")

    p.on("dialog", lambda dialog: dialog.accept())
    p.click("#token-list button.delete")
    p.wait_for_selector("#tokens-empty:not([hidden])", timeout=WAIT)
    gone = httpx.get(f"{site.url}/api/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401
    assert page.errors == []


def test_a_manager_adds_a_user_who_signs_in_then_changes_it(
    browser: Any, site: HubThread, tmp_path: Path
) -> None:
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = page.page
    p.on("dialog", lambda dialog: dialog.accept())
    p.click("#nav a[href='#/users']")
    p.wait_for_selector(ready("users"), timeout=WAIT)
    mine = p.locator(f"#user-list tr[data-id='{site.users['ann']}']")
    assert "ann" in mine.inner_text()
    for selector in ("button", "select"):  # no own password, role or deletion here
        assert mine.locator(selector).count() == 0, selector
    assert mine.locator("a[href='#/account']").count() == 1

    p.click("#user-new")
    p.fill("#user-name", "otto")
    p.fill("#user-password", "short")
    p.click("#user-save")
    p.wait_for_selector("#user-password[aria-invalid='true']")
    assert p.inner_text("#user-error") == "Password: must have at least 10 characters"
    assert "otto" not in users(site)
    p.fill("#user-name", "vic")  # taken: the hub names the field
    p.fill("#user-password", "otto's first password")
    p.click("#user-save")
    p.wait_for_selector("#user-name[aria-invalid='true']", timeout=WAIT)
    assert p.inner_text("#user-error").startswith("Name:")
    p.fill("#user-name", "otto")
    p.click("#user-save")
    row = p.locator("#user-list tr:has-text('otto')")
    row.wait_for(timeout=WAIT)
    assert p.locator("#user-form").count() == 0
    otto = users(site)["otto"]
    assert otto["role"] == "viewer" and otto["has_password"] is True
    assert "set" in row.inner_text()

    other = Page(browser, site.url)
    other.sign_in("otto", "otto's first password")
    assert "otto (viewer)" in other.page.inner_text("#who")

    row.locator("select.user-role").select_option("manager")
    p.wait_for_function(
        """() => fetch('/api/users').then(r => r.json())
            .then(b => b.users.some(u => u.name === 'otto' && u.role === 'manager'))""",
        timeout=WAIT,
    )
    row.locator("button.user-password").click()
    p.fill("#user-pw", "otto's second password")
    p.click("#user-pw-save")
    p.wait_for_selector("#user-pw-form", state="detached", timeout=WAIT)
    assert not signs_in(site, "otto", "otto's first password")
    assert signs_in(site, "otto", "otto's second password")
    p.screenshot(path=str(tmp_path / "users.png"), full_page=True)

    row.locator("button.user-delete").click()
    row.wait_for(state="detached", timeout=WAIT)
    assert "otto" not in users(site)
    errors = refused(page, 409) + refused(page, 422)  # the taken name
    assert len(errors) == 1 and page.errors == errors


def rules(hub: HubThread) -> list[dict[str, Any]]:
    return hub.admin_api("GET", "/api/rules")["rules"]


def test_a_rule_schedule_is_made_read_back_and_edited(
    browser: Any, site: HubThread, tmp_path: Path
) -> None:
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = page.page
    p.click("#nav a[href='#/rules']")
    p.wait_for_selector(ready("rules"), timeout=WAIT)
    p.click("#rule-new")
    assert p.is_checked("#rule-schedule-always") and p.is_hidden("#schedule-rows")
    p.fill("#rule-name", "Office hours")
    p.select_option("#rule-type", "ignitionOn")
    p.check("#rule-schedule-times")  # a first row: Monday to Friday, 08:00–18:00
    first = p.locator(".schedule-row[data-index='0']")
    assert "UTC" in p.inner_text("#rule-schedule-zone")
    first.locator("input[value='4']").uncheck()  # not on Fridays
    first.locator(".schedule-end").fill("17:30")
    p.click("#schedule-add")
    second = p.locator(".schedule-row[data-index='1']")
    for day in range(5):
        second.locator(f"input[value='{day}']").uncheck()
    p.click("#rule-save")  # no day: the hub names the row's days
    p.wait_for_selector("#rule-error:not([hidden])", timeout=WAIT)
    assert "schedule.windows.1.days" in p.inner_text("#rule-error")
    assert second.locator(".schedule-days[aria-invalid='true']").count() == 1
    assert rules(site) == []
    second.locator("input[value='5']").check()
    second.locator(".schedule-start").fill("09:00")
    second.locator(".schedule-end").fill("12:00")
    p.screenshot(path=str(tmp_path / "rule-schedule.png"), full_page=True)
    p.click("#rule-save")
    p.wait_for_selector("#rule-list tr .rule-scheduled", timeout=WAIT)
    (rule,) = rules(site)
    assert rule["schedule"] == {
        "windows": [
            {"days": [0, 1, 2, 3], "start": "08:00:00", "end": "17:30:00"},
            {"days": [5], "start": "09:00:00", "end": "12:00:00"},
        ]
    }

    p.click(f"#rule-list tr[data-id='{rule['id']}'] button.edit")
    assert p.is_checked("#rule-schedule-times")
    assert p.locator(".schedule-row").count() == 2
    first = p.locator(".schedule-row[data-index='0']")
    checked = first.locator(".schedule-days input:checked")
    assert [checked.nth(i).input_value() for i in range(checked.count())] == ["0", "1", "2", "3"]
    assert first.locator(".schedule-start").input_value() == "08:00"
    assert first.locator(".schedule-end").input_value() == "17:30"
    p.locator(".schedule-row[data-index='1'] .schedule-remove").click()
    first.locator("input[value='6']").check()
    p.click("#rule-save")
    p.wait_for_selector("#rule-form", state="detached", timeout=WAIT)
    (rule,) = rules(site)
    assert rule["schedule"] == {
        "windows": [{"days": [0, 1, 2, 3, 6], "start": "08:00:00", "end": "17:30:00"}]
    }

    p.click(f"#rule-list tr[data-id='{rule['id']}'] button.edit")
    p.check("#rule-schedule-always")
    p.click("#rule-save")
    p.wait_for_selector("#rule-form", state="detached", timeout=WAIT)
    (rule,) = rules(site)
    assert rule["schedule"] is None
    assert p.locator("#rule-list .rule-scheduled").count() == 0
    errors = refused(page, 422)  # the row without days
    assert len(errors) == 1 and page.errors == errors


def test_the_administrator_chooses_the_client_of_users_and_of_schedules(
    browser: Any, site: HubThread
) -> None:
    other = site.hub.store.create_client("Other")
    site.admin_api("PATCH", f"/api/clients/{other.id}", json={"timezone": "Europe/Madrid"})
    ada = site.hub.store.create_user("ada", Role.ADMIN, None)
    site.admin_api("PUT", f"/api/users/{ada.id}/password", json={"password": PASSWORD})
    page = Page(browser, site.url)
    page.sign_in("ada")
    p = page.page
    p.click("#who")
    p.wait_for_selector(ready("account"), timeout=WAIT)
    assert p.inner_text("#account-role") == "administrator"
    assert p.inner_text("#account-client").startswith("—")

    p.click("#nav a[href='#/users']")
    p.wait_for_selector(ready("users"), timeout=WAIT)
    assert "ann" in p.inner_text("#user-list")  # the first client's
    p.select_option("#users-client", str(other.id))
    p.wait_for_selector("#users-empty:not([hidden])", timeout=WAIT)  # none yet
    p.click("#user-new")
    p.fill("#user-name", "olga")
    p.select_option("#user-role", "manager")
    p.fill("#user-password", "olga's first password")
    p.click("#user-save")
    p.wait_for_selector("#user-list tr:has-text('olga')", timeout=WAIT)
    olga = users(site)["olga"]
    assert olga["client_id"] == other.id and olga["role"] == "manager"
    assert signs_in(site, "olga", "olga's first password")

    p.click("#nav a[href='#/rules']")
    p.wait_for_selector(ready("rules"), timeout=WAIT)
    p.click("#rule-new")
    p.check("#rule-schedule-times")
    p.select_option("#rule-client", str(other.id))
    assert "Europe/Madrid" in p.inner_text("#rule-schedule-zone")
    assert page.errors == []
