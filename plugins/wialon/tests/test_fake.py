"""The fake server itself: the documented requests, answers and errors it emulates."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import trio
from trio.testing import MockClock
from wialon_support import T0

from gpshub_wialon import protocol as p
from gpshub_wialon.testing import FakeWialon
from hub.testing import Served


class Raw:
    """Speaks to the fake in plain form posts (or query strings)."""

    def __init__(self, served: Served, http: httpx.AsyncClient) -> None:
        self.fake = served.fake
        self.url = served.url + p.AJAX_PATH
        self.base = served.url
        self.http = http
        self.sid = ""

    async def __call__(self, svc: str, params: Any = None, *, sid: str | None = None) -> Any:
        form = {"svc": svc, "params": orjson.dumps({} if params is None else params).decode()}
        if svc != p.LOGIN:
            form["sid"] = self.sid if sid is None else sid
        response = await self.http.post(self.url, data=form)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        return response.json()

    async def login(self) -> dict[str, Any]:
        answer = await self(p.LOGIN, {"token": self.fake.token, "fl": 3})
        self.sid = answer["eid"]
        return answer


@pytest.fixture
async def raw(served: Served) -> Any:
    async with httpx.AsyncClient() as http:
        yield Raw(served, http)


def spec(prop: str = "sys_name", mask: str = "*", items: str = "avl_unit") -> dict[str, Any]:
    return {"itemsType": items, "propName": prop, "propValueMask": mask, "sortType": "sys_name",
            "propType": "", "or_logic": 0}  # fmt: skip


async def test_login_answer_and_bad_tokens(raw: Raw) -> None:
    answer = await raw.login()
    assert len(answer["eid"]) == 32 and int(answer["eid"], 16) >= 0
    assert answer["user"]["nm"] == "fleet" and answer["au"] == "fleet"
    assert isinstance(answer["token"], str) and orjson.loads(answer["token"])["dur"] == 2592000
    assert len(raw.fake.token) == 72
    assert await raw(p.LOGIN, {"token": "nope"}) == {"error": 8}
    assert await raw(p.LOGIN, {}) == {"error": 4}
    raw.fake.login_error = 4
    assert await raw(p.LOGIN, {"token": raw.fake.token}) == {"error": 4}


async def test_sessions(raw: Raw, served: Served, gpshub_clock: MockClock) -> None:
    assert await raw(p.SEARCH_ITEMS, {}, sid="unknown") == {"error": 1}
    await raw.login()
    assert await raw("core/nonsense", {}) == {"error": 2}
    await trio.sleep(299)
    assert "items" in await raw(p.SEARCH_ITEMS, {"spec": spec(), "flags": 1, "from": 0, "to": 0})
    await trio.sleep(299)  # kept alive by the request before
    assert await raw(p.UNLOAD) == {}
    await trio.sleep(301)
    assert await raw(p.UNLOAD) == {"error": 1}
    await raw.login()
    raw.fake.ip_changed()
    assert await raw(p.UNLOAD) == {"error": 1011}
    assert await raw(p.UNLOAD) == {"error": 1}  # that session is over
    await raw.login()
    assert await raw(p.LOGOUT) == {"error": 0}
    assert await raw(p.UNLOAD) == {"error": 1}
    await raw.login()
    raw.fake.expire_sessions()
    assert await raw(p.UNLOAD) == {"error": 1}


async def test_query_string_requests_work_too(raw: Raw) -> None:
    await raw.login()
    raw.fake.add_unit("Alpha")
    params = orjson.dumps({"spec": spec(), "flags": 1, "from": 0, "to": 0}).decode()
    response = await raw.http.get(
        raw.url, params={"svc": p.SEARCH_ITEMS, "params": params, "sid": raw.sid}
    )
    assert [i["nm"] for i in response.json()["items"]] == ["Alpha"]
    assert raw.fake.requests[p.SEARCH_ITEMS] == 1


async def test_search_items_blocks_follow_the_flags(raw: Raw) -> None:
    fake = raw.fake
    quiet = fake.add_unit("Bravo", imei="111", plate="B-1")
    busy = fake.add_unit("alpha", imei="222")
    fake.add_fix(busy, T0, 1.5, 2.5, speed_kmh=10, received=T0 + 1)
    await raw.login()

    async def search(flags: int, **kw: Any) -> dict[str, Any]:
        params = {"spec": spec(**kw), "force": 1, "flags": flags, "from": 0, "to": 0}
        return await raw(p.SEARCH_ITEMS, params)

    base = await search(1)
    assert [i["nm"] for i in base["items"]] == ["alpha", "Bravo"]  # sorted by name
    assert set(base["items"][0]) == {"nm", "cls", "id", "mu", "uacl"}
    assert base["totalItemsCount"] == 2 and base["searchSpec"]["or_logic"] == "0"
    full = await search(p.UNIT_FLAGS)
    a, b = full["items"]
    assert a["uid"] == "222" and a["pos"]["t"] == T0 and a["pos"]["s"] == 10
    assert a["lmsg"]["rt"] == T0 + 1 and a["pflds"] == {} and a["pfldsmax"] == 0
    assert b["pos"] is None and b["lmsg"] is None
    assert b["pflds"] == {"1": {"id": 1, "n": "registration_plate", "v": "B-1"}}
    legacy = await search(1025)  # Routario's flags: no uid
    assert "uid" not in legacy["items"][0] and "pos" in legacy["items"][0]
    assert [i["nm"] for i in (await search(1, prop="sys_unique_id", mask="1*"))["items"]] == [
        "Bravo"
    ]
    assert (await search(1, items="avl_resource"))["items"] == []
    page = await raw(p.SEARCH_ITEMS, {"spec": spec(), "flags": 1, "from": 1, "to": 1})
    assert [i["nm"] for i in page["items"]] == ["Bravo"] and page["totalItemsCount"] == 2
    one = await raw(p.SEARCH_ITEM, {"id": int(quiet), "flags": 257})
    assert one["flags"] == 257 and one["item"]["uid"] == "111"
    assert await raw(p.SEARCH_ITEM, {"id": 1, "flags": 1}) == {"error": 7}
    assert await raw(p.SEARCH_ITEMS, {"flags": 1}) == {"error": 4}


async def test_sensors_come_with_flag_4096(raw: Raw) -> None:
    fake = raw.fake
    unit = fake.add_unit("Truck")
    first = fake.add_sensor(unit, "Зажигание", "engine operation", "param199:3", metrics="On/Off")
    second = fake.add_sensor(
        unit, "Fuel", "fuel level", "can_fuel", metrics="l", table=[(0, 0.4, 0)],
        config={"lower_bound": 0, "upper_bound": 250}, validator=first, validation=11,
    )  # fmt: skip
    await raw.login()
    params = {"spec": spec(), "force": 1, "flags": 1, "from": 0, "to": 0}
    (plain,) = (await raw(p.SEARCH_ITEMS, params))["items"]
    assert "sens" not in plain
    (item,) = (await raw(p.SEARCH_ITEMS, {**params, "flags": 1 | p.UNIT_SENSORS}))["items"]
    assert (first, second) == (1, 2) and set(item["sens"]) == {"1", "2"}
    fuel = item["sens"]["2"]
    assert {k: fuel[k] for k in ("id", "n", "t", "m", "p", "vt", "vs")} == {
        "id": 2, "n": "Fuel", "t": "fuel level", "m": "l", "p": "can_fuel", "vt": 11, "vs": 1
    }  # fmt: skip
    assert fuel["tbl"] == [{"x": 0, "a": 0.4, "b": 0}]
    config = orjson.loads(fuel["c"])  # JSON text, as Wialon sends it
    assert (config["lower_bound"], config["upper_bound"]) == (0, 250)
    assert item["sens"]["1"]["n"] == "Зажигание"


async def test_a_held_unit_uploads_its_buffer_on_release(raw: Raw, gpshub_clock: MockClock) -> None:
    fake = raw.fake
    unit = fake.add_unit("Reefer")
    fake.add_fix(unit, T0, 1.0, 1.0, received=T0)
    fake.hold(unit)
    for t in (T0 + 10, T0 + 30, T0 + 45):
        fake.add_fix(unit, t, 2.0, 2.0, received=t)  # recorded in the black box
    assert fake.unit(unit).times == [T0]
    await raw.login()
    (item,) = (await raw(p.SEARCH_ITEMS, {"spec": spec(), "flags": 1025, "from": 0, "to": 0}))[
        "items"
    ]
    assert item["pos"]["t"] == T0  # Wialon has not seen the buffer yet
    await trio.sleep(600)
    assert fake.release(unit) == 3 and fake.release(unit) == 0
    await raw.login()  # the session idled out meanwhile
    answer = await raw(p.LOAD_INTERVAL, {"itemId": int(unit), "timeFrom": T0, "timeTo": T0 + 99,
                       "flags": 1, "flagsMask": 65281, "loadCount": 10})  # fmt: skip
    assert [(m["t"], m["rt"]) for m in answer["messages"]] == [
        (T0, T0),
        *((t, int(fake.now())) for t in (T0 + 10, T0 + 30, T0 + 45)),
    ]


async def test_load_interval_filters_caps_and_counts(raw: Raw) -> None:
    fake = raw.fake
    unit = fake.add_unit("Truck")
    for t in range(T0, T0 + 50, 10):
        fake.add_fix(unit, t, 1.0, 1.0)
    fake.add_message(unit, {"t": T0 + 5, "f": 0, "tp": "us", "st": "sms", "p": {}}, kind=p.MSG_SMS)
    fake.add_fix(unit, T0 + 20, 9.0, 9.0)  # the same second: replaces
    await raw.login()

    async def load(time_from: int, time_to: int, count: int = 100, flags: int = 1,
                   mask: int = 65281) -> dict[str, Any]:  # fmt: skip
        return await raw(p.LOAD_INTERVAL, {"itemId": int(unit), "timeFrom": time_from,
                         "timeTo": time_to, "flags": flags, "flagsMask": mask,
                         "loadCount": count})  # fmt: skip

    answer = await load(T0, T0 + 30)
    assert [m["t"] for m in answer["messages"]] == [T0, T0 + 10, T0 + 20, T0 + 30]
    assert answer["count"] == 4 and answer["messages"][2]["pos"]["y"] == 9.0
    capped = await load(T0, T0 + 100, count=2)
    assert capped["count"] == 5 and len(capped["messages"]) == 2
    assert (await load(T0, T0 + 100, count=0))["messages"] == []
    assert await load(T0 + 10, T0) == {"count": 0, "messages": []}
    sms = await load(T0, T0 + 100, flags=p.MSG_SMS, mask=p.MSG_TYPE_MASK)
    assert [m["st"] for m in sms["messages"]] == ["sms"]
    assert len((await load(T0, T0 + 100, flags=0, mask=0))["messages"]) == 6
    loaded = await raw(p.GET_MESSAGES, {"indexFrom": 1, "indexTo": 2})
    assert [m["t"] for m in loaded] == [T0 + 5, T0 + 10]
    assert await raw(p.UNLOAD) == {}
    assert await raw(p.GET_MESSAGES, {"indexFrom": 0, "indexTo": 9}) == []
    last = await raw(p.LOAD_LAST, {"itemId": int(unit), "lastTime": T0 + 25, "lastCount": 2,
                                   "flags": 1, "flagsMask": 65281, "loadCount": 10})  # fmt: skip
    assert [m["t"] for m in last["messages"]] == [T0 + 10, T0 + 20]
    none = {"itemId": int(unit), "lastTime": T0 - 1, "lastCount": 2, "flags": 1,
            "flagsMask": 65281, "loadCount": 10}  # fmt: skip
    assert await raw(p.LOAD_LAST, none) == {"error": 4}
    assert await raw(p.LOAD_LAST, {**none, "lastTime": T0 + 99, "lastCount": 10_001}) == {
        "error": 4
    }
    fake.empty_error = True
    assert await load(T0 + 1, T0 + 2) == {"error": 1001}


async def test_batch(raw: Raw) -> None:
    fake = raw.fake
    unit = fake.add_unit("Truck")
    fake.add_fix(unit, T0, 1.0, 1.0)
    await raw.login()
    load = {"svc": p.LOAD_INTERVAL, "params": {"itemId": int(unit), "timeFrom": T0,
            "timeTo": T0, "flags": 1, "flagsMask": 65281, "loadCount": 10}}  # fmt: skip
    denied = {"svc": p.SEARCH_ITEM, "params": {"id": 1, "flags": 1}}
    answer = await raw(p.BATCH, {"params": [load, denied, load], "flags": 0})
    assert [a.get("count") for a in answer] == [1, None, 1] and answer[1] == {"error": 7}
    stopped = await raw(p.BATCH, {"params": [load, denied, load, load], "flags": 1})
    assert stopped[1:] == [{"error": 7}, {"error": 10}, {"error": 10}]
    assert len(await raw(p.BATCH, [load, load])) == 2  # a bare array
    assert await raw(p.BATCH, "nonsense") == {"error": 4}
    assert (await raw(p.BATCH, [{"svc": p.LOGIN, "params": {}}]))[0] == {"error": 4}
    fake.item_error(unit, 5)
    assert (await raw(p.BATCH, [load, load]))[0] == {"error": 5}
    fake.max_batch = 1
    assert await raw(p.BATCH, [load, load]) == {"error": 6}
    assert fake.requests[p.BATCH] == 7 and fake.executed[p.LOAD_INTERVAL] == 7


async def test_fault_switches(raw: Raw) -> None:
    fake = raw.fake
    await raw.login()
    fake.platform_error(code=p.ERR_ONE_REQUEST, reason="LIMIT api_concurrent")
    assert await raw(p.UNLOAD) == {"error": 1003, "reason": "LIMIT api_concurrent"}
    fake.platform_error(path=p.BATCH, code=5)
    assert await raw(p.UNLOAD) == {}  # only for that svc
    assert await raw(p.BATCH, []) == {"error": 5}
    fake.fail(503)
    response = await raw.http.post(raw.url, data={"svc": p.UNLOAD, "sid": raw.sid})
    assert response.status_code == 503
    fake.malformed()
    response = await raw.http.post(raw.url, data={"svc": p.UNLOAD, "sid": raw.sid})
    with pytest.raises(ValueError):
        orjson.loads(response.content)
    assert fake.request_count == sum(fake.requests.values()) == 6


async def test_slow_answers_and_the_heavy_request_limit(raw: Raw, gpshub_clock: MockClock) -> None:
    fake = raw.fake
    unit = fake.add_unit("Truck")
    await raw.login()
    fake.heavy_s = 2  # within the client's 5 s timeout
    load = {"itemId": int(unit), "timeFrom": T0, "timeTo": T0, "flags": 1, "flagsMask": 65281,
            "loadCount": 1}  # fmt: skip
    answers: list[Any] = []

    async def one() -> None:
        answers.append(await raw(p.LOAD_INTERVAL, load))

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(one)
    assert trio.current_time() - started >= 2
    assert answers.count({"error": 1003, "reason": "LIMIT api_concurrent"}) == 1
    assert answers.count({"count": 0, "messages": []}) == 3


async def test_failed_logins_are_throttled(raw: Raw, gpshub_clock: MockClock) -> None:
    for _ in range(10):
        assert await raw(p.LOGIN, {"token": "wrong"}) == {"error": 8}
    assert await raw(p.LOGIN, {"token": raw.fake.token}) == {"error": 8}
    await trio.sleep(61)
    assert "eid" in await raw(p.LOGIN, {"token": raw.fake.token})
    raw.fake.revoke_token()
    assert await raw(p.LOGIN, {"token": raw.fake.token}) == {"error": 8}


async def test_event_feed(raw: Raw) -> None:
    fake = raw.fake
    unit = fake.add_unit("Truck")
    other = fake.add_unit("Other")
    await raw.login()
    spec_ = [{"type": "id", "data": int(unit), "flags": 1025, "mode": 0}]
    subscribed = await raw(p.UPDATE_DATA_FLAGS, {"spec": spec_})
    assert [(s["i"], s["f"], s["d"]["nm"]) for s in subscribed] == [(int(unit), 1025, "Truck")]
    fake.add_fix(unit, T0, 1.0, 1.0)
    fake.add_fix(other, T0, 1.0, 1.0)
    fake.rename(unit, "Lorry")
    response = await raw.http.post(raw.base + p.EVENTS_PATH, data={"sid": raw.sid})
    events = response.json()["events"]
    assert [(e["i"], e["t"]) for e in events] == [(int(unit), "m"), (int(unit), "u")]
    assert events[0]["d"]["t"] == T0 and events[1]["d"] == {"nm": "Lorry"}
    again = await raw.http.post(raw.base + p.EVENTS_PATH, data={"sid": raw.sid})
    assert again.json()["events"] == []
    bad = await raw.http.post(raw.base + p.EVENTS_PATH, data={"sid": "nope"})
    assert bad.json() == {"error": 1}
    assert fake.requests["avl_evts"] == 3


def test_add_fix_speaks_wialon_units() -> None:
    fake = FakeWialon(now=lambda: 1000.0)
    unit = fake.add_unit("Truck")
    message = fake.add_fix(unit, 99.9, 1.0, 2.0, speed_kmh=36.6, course=359.7, altitude=-3.4,
                           valid=False, ignition=False, lbs=True)  # fmt: skip
    assert message["t"] == 99 and message["rt"] == 1000
    assert message["pos"] == {"y": 1.0, "x": 2.0, "z": -3, "s": 37, "c": 0, "sc": 0}
    assert message["f"] == 0x1 | 0x2 | 0x4 | 0x20000 and message["p"] == {"ign": 0}
    assert fake.credentials("http://x") == {"token": fake.token, "server_url": "http://x"}
    assert fake.options("http://x") == {}
