"""``FakeTraccar`` behaves like Traccar: auth, endpoints, branch logic, errors, switches."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from trio.testing import MockClock
from trio_websocket import ConnectionRejected, open_websocket_url

from gpshub_traccar.testing import FakeTraccar, iso_ms
from hub.testing import EPOCH, Served

T0 = EPOCH.timestamp()
ADMIN = ("admin@example.com", "admin")


@pytest.fixture
async def api(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    """A plain client on the fake, with the default admin's Basic credentials."""
    async with httpx.AsyncClient(
        base_url=served.url, auth=ADMIN, headers={"Accept": "application/json"}
    ) as client:
        yield client


def units(fake: FakeTraccar, n: int) -> list[str]:
    return [fake.add_unit(f"Unit {i}", imei=f"35000000000000{i}") for i in range(n)]


# -- auth --------------------------------------------------------------------------------


async def test_basic_auth_on_every_request_and_401_without(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as anon:
        plain = await anon.get("/api/devices", headers={"Accept": "application/json"})
        assert plain.status_code == 401 and plain.content == b""
        assert "www-authenticate" not in plain.headers
        browser = await anon.get("/api/devices", headers={"Accept": "text/html,*/*"})
        assert browser.status_code == 401
        assert browser.headers["www-authenticate"] == 'Basic realm="api"'
        wrong = await anon.get("/api/devices", auth=("admin@example.com", "nope"))
        assert wrong.status_code == 401
        good = await anon.get("/api/devices", auth=ADMIN)
        assert good.status_code == 200 and good.json() == []
        by_login = served.fake.add_user("ops@example.com", "pw", login="ops")
        assert (await anon.get("/api/devices", auth=("ops", "pw"))).status_code == 200
        assert by_login.login == "ops"
    assert [c.auth for c in served.fake.calls] == [None, None, "basic", "basic", "basic"]


async def test_server_info_and_session_get_need_no_auth(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as anon:
        server = await anon.get("/api/server", auth=("admin@example.com", "wrong"))
        assert server.status_code == 200 and server.json()["version"] == "6.6"
        # GET /api/session reads the cookie session only: 404 even with good Basic auth
        session = await anon.get("/api/session", auth=ADMIN)
        assert session.status_code == 404
        assert session.text.startswith("jakarta.ws.rs.NotFoundException")


async def test_cookie_sessions_from_the_login_form(served: Served, gpshub_clock: MockClock) -> None:
    fake = served.fake
    fake.session_ttl_s = 600
    async with httpx.AsyncClient(base_url=served.url) as browser:
        bad = await browser.post("/api/session", data={"email": ADMIN[0], "password": "x"})
        assert bad.status_code == 401
        login = await browser.post("/api/session", data={"email": ADMIN[0], "password": ADMIN[1]})
        assert login.status_code == 200
        assert login.json()["email"] == ADMIN[0] and login.json()["administrator"] is True
        assert "JSESSIONID" in browser.cookies
        assert (await browser.get("/api/devices")).status_code == 200
        assert (await browser.get("/api/session")).json()["id"] == fake.user.id
        await trio.sleep(601)  # idle longer than the session timeout
        assert (await browser.get("/api/devices")).status_code == 401
        await browser.post("/api/session", data={"email": ADMIN[0], "password": ADMIN[1]})
        fake.expire_sessions()
        assert (await browser.get("/api/devices")).status_code == 401
        await browser.post("/api/session", data={"email": ADMIN[0], "password": ADMIN[1]})
        assert (await browser.delete("/api/session")).status_code == 204
        assert (await browser.get("/api/devices")).status_code == 401


async def test_bearer_tokens(served: Served) -> None:
    served.fake.add_user("api@example.com", "pw", token="tok-123")
    async with httpx.AsyncClient(base_url=served.url) as client:
        ok = await client.get("/api/devices", headers={"Authorization": "Bearer tok-123"})
        assert ok.status_code == 200
        bad = await client.get("/api/devices", headers={"Authorization": "Bearer tok-999"})
        assert bad.status_code == 401
        session = await client.get("/api/session", params={"token": "tok-123"})
        assert session.json()["email"] == "api@example.com"
        assert (await client.get("/api/devices")).status_code == 200  # the cookie it set


async def test_a_disabled_user_is_refused(served: Served) -> None:
    served.fake.user.disabled = True
    async with httpx.AsyncClient(base_url=served.url, auth=ADMIN) as client:
        assert (await client.get("/api/devices")).status_code == 401


# -- devices -----------------------------------------------------------------------------


async def test_devices_with_their_fields_and_filters(
    served: Served, api: httpx.AsyncClient
) -> None:
    fake = served.fake
    van = fake.add_unit("Van 12", imei="860123456789012", plate="KHI-2045", model="FMB920")
    truck = fake.add_unit("Truck", category="truck")
    fake.add_fix(van, T0 - 60, 37.9, 23.7, received=T0 - 55)
    listed = (await api.get("/api/devices")).json()
    assert [d["name"] for d in listed] == ["Van 12", "Truck"]
    first = listed[0]
    assert first["uniqueId"] == "860123456789012"
    assert first["attributes"] == {"licensePlate": "KHI-2045"}
    assert (first["model"], first["status"], first["lastUpdate"]) == (
        "FMB920",
        "online",
        iso_ms(round((T0 - 55) * 1000)),
    )
    assert first["positionId"] > 0 and listed[1]["positionId"] == 0
    assert listed[1]["status"] == "unknown"
    by_id = (await api.get("/api/devices", params={"id": truck})).json()
    assert [d["name"] for d in by_id] == ["Truck"]
    by_unique = (await api.get("/api/devices", params={"uniqueId": "860123456789012"})).json()
    assert [d["id"] for d in by_unique] == [int(van)]


async def test_non_admins_see_their_devices_and_admins_all_with_all(served: Served) -> None:
    fake = served.fake
    driver = fake.add_user("driver@example.com", "pw")
    mine = fake.add_unit("Mine", users=[driver])
    fake.add_unit("Theirs")
    async with httpx.AsyncClient(base_url=served.url) as client:
        own = await client.get(
            "/api/devices", params={"all": "true"}, auth=("driver@example.com", "pw")
        )
        assert [d["id"] for d in own.json()] == [int(mine)]
        linked = await client.get("/api/devices", auth=ADMIN)
        assert [d["name"] for d in linked.json()] == ["Theirs"]
        everything = await client.get("/api/devices", params={"all": "true"}, auth=ADMIN)
        assert sorted(d["name"] for d in everything.json()) == ["Mine", "Theirs"]


@pytest.mark.parametrize("status", [400, 403])
async def test_all_devices_can_be_refused_to_non_admins(served: Served, status: int) -> None:
    fake = served.fake
    fake.all_refusal = status  # Traccar 4 (400), or a proxy (403)
    driver = fake.add_user("driver@example.com", "pw")
    mine = fake.add_unit("Mine", users=[driver])
    fake.add_unit("Theirs")
    async with httpx.AsyncClient(base_url=served.url, auth=("driver@example.com", "pw")) as user:
        refused = await user.get("/api/devices", params={"all": "true"})
        assert refused.status_code == status
        if status == 400:
            assert refused.text.startswith("java.lang.SecurityException: Manager access required")
        own = await user.get("/api/devices")
        assert [d["id"] for d in own.json()] == [int(mine)]
    async with httpx.AsyncClient(base_url=served.url, auth=ADMIN) as admin:
        everything = await admin.get("/api/devices", params={"all": "true"})
        assert len(everything.json()) == 2


async def test_a_held_unit_uploads_its_black_box_on_release(
    served: Served, api: httpx.AsyncClient, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    (unit,) = units(fake, 1)
    t0 = fake.now()
    first = fake.add_fix(unit, t0, 1.0, 1.0)
    fake.hold(unit)  # out of coverage
    for k in range(1, 4):
        await trio.sleep(60)
        fake.add_fix(unit, fake.now(), 1.0 + k, 1.0)

    async def state() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        window = {
            "deviceId": unit,
            "from": iso_ms(round(t0 * 1000)),
            "to": iso_ms(round((fake.now() + 1) * 1000)),
        }
        route = (await api.get("/api/reports/route", params=window)).json()
        (device,) = (await api.get("/api/devices", params={"id": unit})).json()
        return route, device

    route, device = await state()
    assert [p["id"] for p in route] == [first["id"]]
    assert device["positionId"] == first["id"]
    assert device["lastUpdate"] == iso_ms(round(t0 * 1000))
    await trio.sleep(600)
    uploaded = fake.release(unit)  # back in coverage: all at once, received now
    route, device = await state()
    assert [p["fixTime"] for p in route] == [iso_ms(round((t0 + 60 * k) * 1000)) for k in range(4)]
    assert {p["serverTime"] for p in route[1:]} == {iso_ms(round(fake.now() * 1000))}
    assert device["positionId"] == uploaded[-1]["id"] == route[-1]["id"]
    assert device["lastUpdate"] == iso_ms(round(fake.now() * 1000))


# -- positions ---------------------------------------------------------------------------


async def test_positions_speak_knots_and_iso_times(served: Served, api: httpx.AsyncClient) -> None:
    fake = served.fake
    (unit,) = units(fake, 1)
    fake.add_fix(
        unit,
        T0 + 0.25,
        10.0,
        20.0,
        speed_kmh=92.6,
        course=181.0,
        altitude=55.0,
        satellites=9,
        ignition=True,
        params={"fuel": 40},
        received=T0 + 2,
    )
    (position,) = (await api.get("/api/positions")).json()
    assert position["speed"] == pytest.approx(50.0)  # knots
    assert position["fixTime"].endswith(".250+00:00")
    assert position["serverTime"] == iso_ms(round((T0 + 2) * 1000))
    assert position["attributes"] == {"sat": 9, "ignition": True, "fuel": 40}
    assert (position["course"], position["altitude"], position["valid"]) == (181.0, 55.0, True)


async def test_positions_branch_logic(served: Served, api: httpx.AsyncClient) -> None:
    fake = served.fake
    a, b = units(fake, 2)
    for k in range(3):
        fake.add_fix(a, T0 + k, 1.0, 1.0)
        fake.add_fix(b, T0 + 10 + k, 2.0, 2.0)
    window = {"from": iso_ms(round(T0 * 1000)), "to": iso_ms(round((T0 + 20) * 1000))}
    # no parameters: the latest position of every device
    latest = (await api.get("/api/positions")).json()
    assert [(p["deviceId"], p["fixTime"]) for p in latest] == [
        (int(a), iso_ms(round((T0 + 2) * 1000))),
        (int(b), iso_ms(round((T0 + 12) * 1000))),
    ]
    # deviceId alone: its latest position
    only_b = (await api.get("/api/positions", params={"deviceId": b})).json()
    assert [p["deviceId"] for p in only_b] == [int(b)]
    # deviceId with from and to: the history of ONE device, the first deviceId given
    history = await api.get(
        "/api/positions", params=[("deviceId", a), ("deviceId", b), *window.items()]
    )
    assert [p["deviceId"] for p in history.json()] == [int(a)] * 3
    # id: those positions
    ids = [p["id"] for p in latest]
    by_id = await api.get("/api/positions", params=[("id", str(i)) for i in ids])
    assert sorted(p["id"] for p in by_id.json()) == sorted(ids)
    # a date without an offset does not convert: Jersey answers 404
    naive = await api.get(
        "/api/positions", params={"deviceId": a, "from": "2026-03-02T08:00:00", "to": window["to"]}
    )
    assert naive.status_code == 404


async def test_history_is_cut_at_max_positions(served: Served, api: httpx.AsyncClient) -> None:
    fake = served.fake
    fake.max_positions = 5
    (unit,) = units(fake, 1)
    for k in range(8):
        fake.add_fix(unit, T0 + k, 1.0, 1.0)
    params = {
        "deviceId": unit,
        "from": iso_ms(round(T0 * 1000)),
        "to": iso_ms(round((T0 + 60) * 1000)),
    }
    history = (await api.get("/api/positions", params=params)).json()
    assert [p["fixTime"] for p in history] == [iso_ms(round((T0 + k) * 1000)) for k in range(5)]


async def test_route_report_serves_many_devices_one_after_the_other(
    served: Served, api: httpx.AsyncClient
) -> None:
    fake = served.fake
    a, b, c = units(fake, 3)
    fake.add_fix(b, T0 + 5, 2.0, 2.0)
    fake.add_fix(a, T0 + 3, 1.0, 1.0)
    fake.add_fix(a, T0 + 1, 1.0, 1.0)  # stored out of order, served in fixTime order
    fake.add_fix(a, T0 + 30, 1.0, 1.0)  # after the window
    fake.add_fix(c, T0 + 2, 3.0, 3.0)
    params = [("deviceId", b), ("deviceId", a), ("deviceId", b)]
    params += [("from", iso_ms(round((T0 + 1) * 1000))), ("to", iso_ms(round((T0 + 5) * 1000)))]
    route = (await api.get("/api/reports/route", params=params)).json()
    assert [(p["deviceId"], p["fixTime"]) for p in route] == [
        (int(b), iso_ms(round((T0 + 5) * 1000))),  # both ends of the window are included
        (int(a), iso_ms(round((T0 + 1) * 1000))),
        (int(a), iso_ms(round((T0 + 3) * 1000))),
    ]
    assert fake.requests["/api/reports/route"] == 1


async def test_route_report_errors_are_java_stack_traces(
    served: Served, api: httpx.AsyncClient
) -> None:
    fake = served.fake
    (unit,) = units(fake, 1)
    frm, to = iso_ms(round(T0 * 1000)), iso_ms(round((T0 + 7200) * 1000))
    missing = await api.get("/api/reports/route", params={"deviceId": unit, "to": to})
    assert missing.status_code == 400 and missing.text.startswith("java.lang.NullPointerException")
    assert missing.headers["content-type"].startswith("text/plain")
    stranger = await api.get(
        "/api/reports/route", params={"deviceId": "999", "from": frm, "to": to}
    )
    assert stranger.status_code == 400
    assert stranger.text.startswith("java.lang.SecurityException: Device access denied\n\tat ")
    fake.period_limit_s = 3600
    long = await api.get("/api/reports/route", params={"deviceId": unit, "from": frm, "to": to})
    assert long.text.startswith("java.lang.IllegalArgumentException: Time period exceeds the limit")
    bad_id = await api.get("/api/reports/route", params={"deviceId": "x", "from": frm, "to": to})
    assert bad_id.status_code == 404


async def test_disable_reports_refuses_history_but_not_the_latest(served: Served) -> None:
    fake = served.fake
    viewer = fake.add_user("viewer@example.com", "pw", disable_reports=True)
    unit = fake.add_unit("Van", users=[viewer])
    fake.add_fix(unit, T0, 1.0, 1.0)
    window = {"from": iso_ms(round(T0 * 1000)), "to": iso_ms(round((T0 + 60) * 1000))}
    async with httpx.AsyncClient(base_url=served.url, auth=("viewer@example.com", "pw")) as client:
        route = await client.get("/api/reports/route", params={"deviceId": unit, **window})
        assert route.status_code == 400
        assert route.text.startswith("java.lang.SecurityException: Operation restricted")
        history = await client.get("/api/positions", params={"deviceId": unit, **window})
        assert history.status_code == 400
        latest = await client.get("/api/positions")
        assert [p["deviceId"] for p in latest.json()] == [int(unit)]
    fake.user.disable_reports = True  # an administrator is never restricted
    async with httpx.AsyncClient(base_url=served.url, auth=ADMIN) as admin:
        ok = await admin.get("/api/reports/route", params={"deviceId": unit, **window})
        assert ok.status_code == 200


async def test_revoked_devices_disappear(served: Served, api: httpx.AsyncClient) -> None:
    fake = served.fake
    driver = fake.add_user("driver@example.com", "pw")
    unit = fake.add_unit("Van", users=[driver])
    fake.revoke(unit, driver)
    async with httpx.AsyncClient(base_url=served.url, auth=("driver@example.com", "pw")) as client:
        assert (await client.get("/api/devices")).json() == []


async def test_an_overlong_url_gets_414(served: Served, api: httpx.AsyncClient) -> None:
    params = [("deviceId", str(10**9 + i)) for i in range(600)]
    assert (await api.get("/api/reports/route", params=params)).status_code == 414


# -- switches and counters ---------------------------------------------------------------


async def test_fault_switches_apply_to_the_next_requests(
    served: Served, api: httpx.AsyncClient
) -> None:
    fake = served.fake
    fake.rate_limit(times=2, retry_after=17)
    for _ in range(2):
        limited = await api.get("/api/devices")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "17"
    fake.fail(503, times=1)
    failed = await api.get("/api/devices")
    assert failed.status_code == 503 and "text/html" in failed.headers["content-type"]
    fake.malformed(times=1)
    broken = await api.get("/api/devices")
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    fake.html(times=1)
    page = await api.get("/api/devices")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert (await api.get("/api/devices")).json() == []
    assert fake.requests["/api/devices"] == 6
    assert fake.request_count == 6


async def test_wrong_password_after_a_password_change(
    served: Served, api: httpx.AsyncClient
) -> None:
    served.fake.change_password("new-password")
    assert (await api.get("/api/devices")).status_code == 401


async def test_slow_answers(
    served: Served, api: httpx.AsyncClient, gpshub_clock: MockClock
) -> None:
    served.fake.delay = 30
    with trio.move_on_after(29) as scope:
        await api.get("/api/server", timeout=60)
    assert scope.cancelled_caught
    served.fake.delay = 0
    assert (await api.get("/api/server")).status_code == 200


# -- the WebSocket -----------------------------------------------------------------------


async def _login(served: Served) -> str:
    async with httpx.AsyncClient(base_url=served.url) as client:
        await client.post("/api/session", data={"email": ADMIN[0], "password": ADMIN[1]})
        return str(client.cookies["JSESSIONID"])


async def test_socket_sends_latest_then_updates_then_keepalives(
    served: Served, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    fake.keepalive_s = 50
    unit = fake.add_unit("Van")
    fake.add_fix(unit, T0, 1.0, 1.0)
    cookie = await _login(served)
    url = served.url.replace("http://", "ws://") + "/api/socket"
    async with open_websocket_url(
        url, extra_headers=[(b"cookie", f"JSESSIONID={cookie}".encode())]
    ) as ws:
        first: dict[str, Any] = json.loads(await ws.get_message())
        assert [p["deviceId"] for p in first["positions"]] == [int(unit)]
        fake.add_fix(unit, T0 + 10, 1.5, 1.0)
        update = json.loads(await ws.get_message())
        assert [p["latitude"] for p in update["positions"]] == [1.5]
        fake.rename_unit(unit, "Van 2")
        assert json.loads(await ws.get_message())["devices"][0]["name"] == "Van 2"
        assert json.loads(await ws.get_message()) == {}  # keep-alive after 50 quiet seconds


async def test_socket_needs_a_cookie_session(served: Served) -> None:
    url = served.url.replace("http://", "ws://") + "/api/socket"
    with pytest.raises(ConnectionRejected):
        async with open_websocket_url(url):
            pass
