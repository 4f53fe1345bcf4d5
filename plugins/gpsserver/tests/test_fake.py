"""``FakeGpsServer`` on its own: the wire format and the switches, over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import trio
from gpsserver_support import Served
from trio.testing import MockClock

from gpshub_gpsserver.testing import DEFAULT_KEY, FakeGpsServer

V4 = "/api/v1/endpoints/"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()
"""The instant the wire times below are written from."""


async def key_call(
    served: Served, cmd: str, key: str = DEFAULT_KEY, **extra: str
) -> httpx.Response:
    params = {"api": "user", "ver": "1.0", "key": key, "cmd": cmd, **extra}
    async with httpx.AsyncClient() as http:
        return await http.get(f"{served.url}/api/api.php", params=params)


async def login(served: Served, **form: str) -> httpx.Response:
    data = {"grant_type": "password", "username": served.fake.email,
            "password": served.fake.password, **form}  # fmt: skip
    async with httpx.AsyncClient() as http:
        return await http.post(f"{served.url}{V4}auth.php", data=data)


async def v4_get(served: Served, name: str, token: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(
            f"{served.url}{V4}{name}", params=params, headers={"Authorization": f"Bearer {token}"}
        )


async def test_objects_are_strings_and_commands_are_case_insensitive(served: Served) -> None:
    fake = served.fake
    imei = fake.add_unit("Truck 07", plate="ABC-1234", model="Actros", odometer=152334.6)
    fake.add_fix(imei, T0 - 10, 37.98381, 23.727539, speed_kmh=40, altitude=112, ignition=True)
    answer = await key_call(served, "user_get_objects")
    assert answer.headers["content-type"].startswith("application/json")
    (obj,) = answer.json()
    assert obj["imei"] == imei and obj["plate_number"] == "ABC-1234" and obj["model"] == "Actros"
    assert (obj["lat"], obj["speed"], obj["altitude"]) == ("37.983810", "40", "112")
    assert obj["params"] == {"gpslev": "8", "acc": "1"} and obj["odometer"] == "152334.6"
    assert fake.requests["USER_GET_OBJECTS"] == 1


async def test_messages_are_inclusive_oldest_first_and_quoted_arguments_work(
    served: Served,
) -> None:
    fake = served.fake
    imei = fake.add_unit("A")
    for k in (3, 1, 2):  # added out of order
        fake.add_fix(imei, T0 + k, 1.0 + k, 2.0)
    answer = await key_call(
        served, f'OBJECT_GET_MESSAGES,{imei},"2026-03-02 08:00:01","2026-03-02 08:00:02"'
    )
    assert [row[0] for row in answer.json()] == ["2026-03-02 08:00:01", "2026-03-02 08:00:02"]
    assert answer.json()[0][1:6] == ["2.000000", "2.000000", "0", "0", "0"]


async def test_errors_are_plain_text_with_http_200(served: Served) -> None:
    fake = served.fake
    imei = fake.add_unit("A")
    other = fake.add_unit("B")
    fake.revoke(other)
    cases = {
        "USER_GET_OBJECTS": ("wrong", "ERROR: wrong API key"),
        "OBJECT_GET_LOCATIONS": (DEFAULT_KEY, "ERROR: missing command parameters"),
        "OBJECT_GET_MESSAGES,abc,1,2": (DEFAULT_KEY, "ERROR: IMEI is not valid"),
        f"OBJECT_GET_MESSAGES,{other},1,2": (DEFAULT_KEY, "ERROR: no permission to access this IMEI"),
        f'OBJECT_GET_MESSAGES,{imei},"",x': (DEFAULT_KEY, "ERROR: date and time from can't be empty"),
    }  # fmt: skip
    for cmd, (key, text) in cases.items():
        answer = await key_call(served, cmd, key)
        assert (answer.status_code, answer.text) == (200, text), cmd
    assert list((await key_call(served, "OBJECT_GET_LOCATIONS,*")).json()) == [imei]
    async with httpx.AsyncClient() as http:
        empty = await http.get(f"{served.url}/api/api.php", params={"api": "user"})
    assert (empty.status_code, empty.text) == (200, "")


async def test_the_call_limit_and_the_rate_limit_switch(served: Served) -> None:
    fake = served.fake
    fake.call_limit = 2
    assert (await key_call(served, "USER_GET_OBJECTS")).json() == []
    assert (await key_call(served, "USER_GET_OBJECTS")).json() == []
    assert (await key_call(served, "USER_GET_OBJECTS")).text == "ERROR: API call limit exceeded"
    fake.call_limit = None
    fake.rate_limit(retry_after=42)
    assert (await key_call(served, "USER_GET_OBJECTS")).text == "ERROR: API call limit exceeded"
    fake.rate_limit(retry_after=42)
    refused = await login(served)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "42"
    assert (await login(served)).status_code == 200


async def test_tokens_expire_by_time_and_on_demand(served: Served, gpshub_clock: MockClock) -> None:
    fake = served.fake
    imei = fake.add_unit("A")
    fake.add_fix(imei, T0 - 5, 1.0, 2.0, ignition=False)
    body = (await login(served)).json()["data"]
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    token = body["access_token"]
    located = (await v4_get(served, "locations.php", token, imei="*")).json()["data"]
    assert located[imei]["lat"] == 1.0 and located[imei]["ign"] == 0
    fake.expire_sessions()
    assert (await v4_get(served, "locations.php", token)).status_code == 401
    fake.expires_as_epoch = True
    fake.token_ttl_s = 10
    body = (await login(served)).json()["data"]
    assert body["expires_in"] > 1e9
    assert (await v4_get(served, "locations.php", body["access_token"])).status_code == 200
    await trio.sleep(11)
    refused = await v4_get(served, "locations.php", body["access_token"])
    assert (refused.status_code, refused.json()) == (401, {"error": "invalid_token"})


async def test_wrong_login_and_the_token_api_switch(served: Served) -> None:
    refused = await login(served, password="nope")
    assert (refused.status_code, refused.json()) == (401, {"error": "invalid_grant"})
    assert (await login(served, grant_type="client_credentials")).status_code == 400
    served.fake.token_api = False
    assert (await login(served)).status_code == 404


async def test_history_in_the_token_timezone(gpshub_serve: Any) -> None:
    fake = FakeGpsServer(now=lambda: T0, token_timezone="Europe/Athens")
    url = await gpshub_serve(fake)
    served = Served(fake, url)
    imei = fake.add_unit("A")
    fake.add_fix(imei, T0, 1.0, 2.0)  # 08:00 UTC = 10:00 in Athens (EET)
    token = (await login(served)).json()["data"]["access_token"]
    rows = (
        await v4_get(
            served, "history.php", token, imei=imei, **{"from": "2026-03-02 09:59:00", "to": "2026-03-02 10:01:00"}
        )
    ).json()["data"]  # fmt: skip
    assert [r[0] for r in rows] == ["2026-03-02 10:00:00"]


async def test_fault_switches(served: Served, gpshub_clock: MockClock) -> None:
    fake = served.fake
    fake.fail(503)
    assert (await key_call(served, "USER_GET_OBJECTS")).status_code == 503
    fake.malformed()
    broken = await key_call(served, "USER_GET_OBJECTS")
    assert broken.status_code == 200 and broken.content == b"[{"
    fake.delay = 3
    start = trio.current_time()
    assert (await key_call(served, "USER_GET_OBJECTS")).json() == []
    assert trio.current_time() - start >= 3
    fake.delay = 0
    fake.change_api_key("new")
    assert (await key_call(served, "USER_GET_OBJECTS")).text == "ERROR: wrong API key"
    assert fake.request_count == sum(fake.requests.values()) == 4


async def test_late_messages_move_dt_server_not_dt_tracker(served: Served) -> None:
    fake = served.fake
    imei = fake.add_unit("A")
    fake.add_fix(imei, T0 - 10, 1.0, 2.0, received=T0 - 9)
    fake.add_fix(imei, T0 - 100, 5.0, 6.0, received=T0)
    (loc,) = (await key_call(served, "OBJECT_GET_LOCATIONS,*")).json().values()
    assert (loc["dt_tracker"], loc["dt_server"]) == ("2026-03-02 07:59:50", "2026-03-02 08:00:00")
    assert loc["lat"] == "1.000000"


async def test_the_platform_error_and_the_request_names(served: Served) -> None:
    fake = served.fake
    fake.platform_error(message="database unavailable", path="/api/api.php")
    assert (await key_call(served, "USER_GET_OBJECTS")).text == "ERROR: database unavailable"
    fake.platform_error(message="server busy", status=503)
    refused = await login(served)
    assert (refused.status_code, refused.json()) == (503, {"error": "server busy"})
    assert [c.name for c in fake.calls] == ["USER_GET_OBJECTS", "auth.php"]
    assert [c.fault for c in fake.calls] == ["platform_error", "platform_error"]
