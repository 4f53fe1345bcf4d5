"""The Geofences page in a real browser: draw a circle with the mouse, name and group it,
save, and read it back through the API; draw a polygon and a corridor (its width named
when missing); edit a name (only the name is sent); delete; import a GeoJSON file (one
good, one refused naming ``features.1…`` with nothing stored); an administrator names
the client; a viewer sees no edit controls; a phone-sized screen."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_hub import HubThread
from test_browser import Page

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

WAIT = 20_000
FITS = """() => [document.scrollingElement, document.querySelector('#view')]
    .every((el) => el.scrollWidth <= el.clientWidth)"""  # no sideways scrolling


def _features(site: HubThread) -> dict[str, dict[str, Any]]:
    """The stored geofences by name."""
    return {f["properties"]["name"]: f for f in site.admin_api("GET", "/api/geofences")["features"]}


def _open(page: Page) -> Any:
    """The Geofences page, the map on Guatemala City at zoom 15 (a pixel about 4.5 m)."""
    p = page.page
    p.click("#nav a[href='#/geofences']")
    p.wait_for_selector("#view[data-ready='1']", timeout=WAIT)
    p.evaluate(
        "() => document.getElementById('view').mapInstance.setView([14.6, -90.5], 15, { animate: false })"
    )
    return p


def _click_map(p: Any, *points: tuple[float, float]) -> None:
    """Click the map at these points (pixels from its top left), moving between them as
    a hand would (Geoman follows the pointer)."""
    box = p.locator("#gf-map").bounding_box()
    for x, y in points:
        p.mouse.move(box["x"] + x, box["y"] + y, steps=4)
        p.mouse.click(box["x"] + x, box["y"] + y)


def _latlng(p: Any, x: float, y: float) -> Any:
    return p.evaluate(
        "([x, y]) => { const ll = document.getElementById('view').mapInstance"
        ".containerPointToLatLng([x, y]); return [ll.lat, ll.lng]; }",
        [x, y],
    )


def _distance(p: Any, a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(
        p.evaluate(
            "([a, b]) => { const m = document.getElementById('view').mapInstance;"
            " return m.distance(m.containerPointToLatLng(a), m.containerPointToLatLng(b)); }",
            [list(a), list(b)],
        )
    )


def _create_circle(site: HubThread, name: str, client_id: int | None = None) -> dict[str, Any]:
    client_id = client_id or site.hub.store.list_clients()[0].id
    r = httpx.post(
        f"{site.url}/api/geofences",
        json={
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [-90.5, 14.6]},
            "properties": {"name": name, "radius_m": 300},
            "client_id": client_id,
        },
        headers={"Authorization": f"Bearer {site.admin}"},
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_draw_edit_and_delete(browser: Any, site: HubThread, tmp_path: Path) -> None:
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = _open(page)
    expect(p.locator("#gf-empty")).to_be_visible()

    # a circle: its centre, then its edge 120 px to the right
    drawn = _distance(p, (300, 250), (420, 250))
    centre = _latlng(p, 300, 250)
    p.click("#gf-draw-circle")
    expect(p.locator("#gf-draw-circle")).to_have_attribute("aria-pressed", "true")
    _click_map(p, (300, 250), (420, 250))
    p.wait_for_selector("#gf-form[data-kind='circle']", timeout=WAIT)
    assert _latlng(p, 300, 250) == centre  # the map stays put while the form opens
    assert float(p.input_value("#gf-radius")) == pytest.approx(drawn, rel=0.03)
    p.fill("#gf-name", "Depot")
    p.fill("#gf-contact", "Gate: +1 555 0100")
    p.fill("#gf-new-group", "Yards")
    p.click("#gf-add-group")
    expect(p.locator("#gf-groups label:has-text('Yards') input")).to_be_checked(timeout=WAIT)
    p.click("#gf-save")
    p.wait_for_selector("#gf-list .gf-item:has-text('Depot')", timeout=WAIT)
    expect(p.locator("#gf-form")).to_have_count(0)
    (yards,) = site.admin_api("GET", "/api/geofence-groups")["groups"]
    depot = _features(site)["Depot"]
    assert depot["geometry"]["type"] == "Point"
    lon, lat = depot["geometry"]["coordinates"]
    assert (lat, lon) == (pytest.approx(centre[0], abs=1e-4), pytest.approx(centre[1], abs=1e-4))
    assert depot["properties"]["radius_m"] == pytest.approx(drawn, rel=0.03)
    assert depot["properties"]["group_ids"] == [yards["id"]]
    assert depot["properties"]["contact"] == "Gate: +1 555 0100"
    assert "Yards" in p.inner_text("#gf-list .gf-item:has-text('Depot')")
    assert p.locator("#gf-map path.gf-circle").count() == 1

    # a polygon: three corners (one inside the circle: drawing, not picking it), then the
    # first again closes it
    p.click("#gf-draw-polygon")
    _click_map(p, (80, 80), (200, 80), (260, 200))
    assert p.locator("#gf-form").count() == 0
    _click_map(p, (80, 80))
    p.wait_for_selector("#gf-form[data-kind='polygon']", timeout=WAIT)
    p.fill("#gf-name", "Field")
    p.click("#gf-save")
    p.wait_for_selector("#gf-list .gf-item:has-text('Field')", timeout=WAIT)
    field = _features(site)["Field"]
    assert field["geometry"]["type"] == "Polygon"
    ring = field["geometry"]["coordinates"][0]
    assert len(ring) == 4 and ring[0] == ring[-1]

    # a corridor: three points, the last clicked again ends the line; its width is required
    p.click("#gf-draw-corridor")
    _click_map(p, (80, 420), (250, 440), (420, 400), (420, 400))
    p.wait_for_selector("#gf-form[data-kind='corridor']", timeout=WAIT)
    p.fill("#gf-name", "Road")
    p.click("#gf-save")
    error = p.locator("#gf-form .field-error[data-for='properties.width_m']")
    expect(error).to_be_visible(timeout=WAIT)
    assert error.inner_text().startswith("properties.width_m:")
    expect(p.locator("#gf-width")).to_have_attribute("aria-invalid", "true")
    page.errors.clear()  # the refused POST's 422 is expected
    p.fill("#gf-width", "40")
    expect(p.locator("#gf-width")).not_to_have_attribute("aria-invalid", "true")
    p.click("#gf-save")
    p.wait_for_selector("#gf-list .gf-item:has-text('Road')", timeout=WAIT)
    road = _features(site)["Road"]
    assert road["geometry"]["type"] == "LineString"
    assert len(road["geometry"]["coordinates"]) == 3
    assert road["properties"]["width_m"] == 40
    band = p.locator("#gf-map path.gf-band")
    assert band.count() == 1 and float(band.get_attribute("stroke-width") or 0) >= 3

    # edit the circle's name: only the name is sent
    patches: list[Any] = []
    p.on("request", lambda r: patches.append(r.post_data_json) if r.method == "PATCH" else None)
    p.click("#gf-list .gf-item:has-text('Depot') .gf-pick")
    p.wait_for_selector("#gf-form #gf-edit-shape", timeout=WAIT)
    expect(p.locator("#gf-list .gf-item.selected")).to_have_text(re.compile("Depot"))
    assert p.input_value("#gf-name") == "Depot"
    assert p.inner_text("#gf-form .gf-changed").startswith("Changed ")
    assert p.locator("#gf-groups label:has-text('Yards') input").is_checked()
    p.fill("#gf-name", "Main depot")
    p.click("#gf-save")
    p.wait_for_selector("#gf-list .gf-item:has-text('Main depot')", timeout=WAIT)
    assert patches == [{"properties": {"name": "Main depot"}}]
    renamed = _features(site)["Main depot"]
    assert renamed["id"] == depot["id"]
    assert renamed["properties"]["radius_m"] == depot["properties"]["radius_m"]
    assert renamed["properties"]["group_ids"] == [yards["id"]]

    # move the corridor's middle point on the map: only the geometry is sent
    p.click("#gf-list .gf-item:has-text('Road') .gf-pick")
    p.click("#gf-edit-shape")
    vertices = p.locator("#gf-map .marker-icon:not(.marker-icon-middle)")
    expect(vertices).to_have_count(3, timeout=WAIT)
    box = vertices.nth(1).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    p.mouse.move(x, y)
    p.mouse.down()
    p.mouse.move(x, y - 60, steps=6)
    p.mouse.up()
    p.click("#gf-save")
    expect(p.locator("#gf-form")).to_have_count(0, timeout=WAIT)
    expect(p.locator("#gf-map .marker-icon")).to_have_count(0)
    assert len(patches) == 2 and set(patches[1]) == {"geometry"}
    moved = _features(site)["Road"]
    before, after = road["geometry"]["coordinates"], moved["geometry"]["coordinates"]
    assert after[0] == before[0] and after[2] == before[2]
    assert after[1][1] > before[1][1] + 1e-4  # dragged up: north
    assert moved["properties"]["width_m"] == 40

    # the group filter
    p.select_option("#gf-group-filter", str(yards["id"]))
    expect(p.locator("#gf-list .gf-item")).to_have_count(1)
    assert p.locator("#gf-map path.gf-shape").count() == 1
    p.select_option("#gf-group-filter", "")
    expect(p.locator("#gf-list .gf-item")).to_have_count(3)
    p.screenshot(path=str(tmp_path / "geofences.png"))  # kept as a CI artefact

    # delete the polygon, confirming
    p.click("#gf-list .gf-item:has-text('Field') .gf-pick")
    p.click("#gf-delete")
    p.click("#gf-keep")
    expect(p.locator("#gf-confirm-delete")).to_have_count(0)
    p.click("#gf-delete")
    p.click("#gf-confirm-delete")
    expect(p.locator("#gf-list .gf-item")).to_have_count(2, timeout=WAIT)
    assert sorted(_features(site)) == ["Main depot", "Road"]

    # delete the group (offered while it is chosen): its geofences stay
    expect(p.locator("#gf-group-delete")).to_be_hidden()
    p.select_option("#gf-group-filter", str(yards["id"]))
    p.once("dialog", lambda dialog: dialog.accept())
    p.click("#gf-group-delete")
    expect(p.locator(f"#gf-group-filter option[value='{yards['id']}']")).to_have_count(
        0, timeout=WAIT
    )
    assert site.admin_api("GET", "/api/geofence-groups")["groups"] == []
    assert _features(site)["Main depot"]["properties"]["group_ids"] == []
    expect(p.locator("#gf-list .gf-item")).to_have_count(2)
    assert page.errors == []


def test_a_refused_shape_is_named_beside_it(browser: Any, site: HubThread) -> None:
    """A polygon crossing itself: the hub names the coordinates; Cancel stores nothing."""
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = _open(page)
    p.click("#gf-draw-polygon")
    _click_map(p, (80, 80), (240, 240), (240, 80), (80, 240), (80, 80))
    p.wait_for_selector("#gf-form[data-kind='polygon']", timeout=WAIT)
    p.fill("#gf-name", "Bow tie")
    p.click("#gf-save")
    error = p.locator("#gf-form .field-error[data-for='geometry']")
    expect(error).to_be_visible(timeout=WAIT)
    assert error.inner_text().startswith("geometry.coordinates")
    assert "intersects itself" in error.inner_text()
    page.errors.clear()  # the refused POST's 422 is expected
    p.click("#gf-cancel")
    expect(p.locator("#gf-form")).to_have_count(0)
    assert p.locator("#gf-map .leaflet-overlay-pane path").count() == 0  # the drawing too
    assert site.admin_api("GET", "/api/geofences")["features"] == []
    assert page.errors == []


def test_import_a_file(browser: Any, site: HubThread, tmp_path: Path) -> None:
    good = tmp_path / "good.geojson"
    good.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [-90.5, 14.6]},
                        "properties": {"name": "Warehouse", "radius_m": 150},
                    },
                    {
                        "type": "Feature",
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [
                                [[-90.6, 14.5], [-90.5, 14.5], [-90.55, 14.55], [-90.6, 14.5]]
                            ],
                        },
                        "properties": {"name": "Yard"},
                    },
                ],
            }
        )
    )
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [-90.4, 14.7]},
                        "properties": {"name": "Fine", "radius_m": 100},
                    },
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [-90.4, 14.7]},
                        "properties": {"name": "No radius"},
                    },
                ],
            }
        )
    )
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = _open(page)
    p.set_input_files("#gf-import", str(good))
    result = p.locator("#gf-import-result")
    expect(result).to_have_class("result gf-import-result ok", timeout=WAIT)
    assert "Imported 2 geofences" in result.inner_text()
    expect(p.locator("#gf-list .gf-item")).to_have_count(2, timeout=WAIT)
    assert sorted(_features(site)) == ["Warehouse", "Yard"]

    p.set_input_files("#gf-import", str(bad))
    expect(result).to_have_class("result gf-import-result error", timeout=WAIT)
    assert "features.1.properties.radius_m" in result.inner_text()
    assert sorted(_features(site)) == ["Warehouse", "Yard"]  # all or nothing
    page.errors.clear()  # the refused import's 422 is expected
    expect(p.locator("#gf-list .gf-item")).to_have_count(2)
    assert page.errors == []


def test_the_administrator_names_the_client(browser: Any, site: HubThread, tmp_path: Path) -> None:
    other = site.hub.store.create_client("Other")
    site.add_admin("ada")
    page = Page(browser, site.url)
    page.sign_in("ada")
    p = _open(page)
    p.select_option("#gf-client", str(other.id))
    p.click("#gf-draw-circle")
    _click_map(p, (300, 250), (360, 250))
    p.wait_for_selector("#gf-form[data-kind='circle']", timeout=WAIT)
    p.fill("#gf-name", "Other's circle")
    p.fill("#gf-radius", "250")  # taken from the drawing, but editable
    p.fill("#gf-new-group", "Theirs")
    p.click("#gf-add-group")
    expect(p.locator("#gf-groups label:has-text('Theirs') input")).to_be_checked(timeout=WAIT)
    p.click("#gf-save")
    p.wait_for_selector('#gf-list .gf-item:has-text("Other\'s circle")', timeout=WAIT)
    circle = _features(site)["Other's circle"]
    assert circle["properties"]["client_id"] == other.id
    assert circle["properties"]["radius_m"] == 250
    (group,) = site.admin_api("GET", "/api/geofence-groups")["groups"]
    assert group["client_id"] == other.id and circle["properties"]["group_ids"] == [group["id"]]
    assert page.errors == []


def test_a_viewer_sees_no_edit_controls(browser: Any, site: HubThread) -> None:
    _create_circle(site, "Shared circle")
    page = Page(browser, site.url)
    page.sign_in("vic")
    p = _open(page)
    item = p.locator("#gf-list .gf-item:has-text('Shared circle')")
    item.wait_for(timeout=WAIT)
    assert p.locator("#gf-map path.gf-circle").count() == 1
    assert p.locator("#gf-tools, #gf-import, #gf-draw-circle, #gf-group-delete").count() == 0
    item.locator(".gf-pick").click()
    expect(item).to_have_class("gf-item selected")
    assert p.locator("#gf-form, #gf-delete").count() == 0
    assert page.errors == []


def test_on_a_phone(browser: Any, site: HubThread, tmp_path: Path) -> None:
    _create_circle(site, "Phone circle")
    page = Page(browser, site.url)
    page.sign_in("ann")
    p = page.page
    p.set_viewport_size({"width": 390, "height": 760})
    p.goto(site.url + "/#/geofences")
    p.wait_for_selector("#view[data-ready='1']", timeout=WAIT)
    expect(p.locator("#gf-list .gf-item")).to_have_count(1)
    p.click("#gf-draw-circle")
    _click_map(p, (150, 150), (210, 150))
    p.wait_for_selector("#gf-form[data-kind='circle']", timeout=WAIT)
    assert p.evaluate(FITS)
    p.screenshot(path=str(tmp_path / "geofences-phone.png"), full_page=True)
    assert page.errors == []
