"""The fake server on its own: what it serves, and each fault switch."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tracking3d_support import T0

from gpshub_tracking3d.testing import FakeTracking3D
from hub.testing import Served


async def login(http: httpx.AsyncClient, url: str, fake: FakeTracking3D) -> dict[str, str]:
    answer = await http.get(
        f"{url}/api/v1.0/authentication/userauthenticate",  # paths are case-insensitive
        params={"UserName": fake.username, "Password": fake.password},
    )
    result = answer.json()["Result"]
    return {"UserIdGuid": result["UserIdGuid"], "SessionId": result["SessionId"]}


async def get(http: httpx.AsyncClient, url: str, path: str, **params: Any) -> Any:
    return (await http.get(f"{url}/api/v1.0/{path}", params=params)).json()


async def test_login_by_get_and_by_post_form(served: Served) -> None:
    fake, url = served.fake, served.url
    async with httpx.AsyncClient() as http:
        ids = await login(http, url, fake)
        assert ids["UserIdGuid"] == fake.user_id_guid
        posted = await http.post(
            f"{url}/Authentication/UserAuthenticate",
            data={"UserName": fake.username, "Password": fake.password},
        )
        assert posted.json()["Status"]["Result"] == "ok"
        wrong = await http.get(
            f"{url}/Authentication/UserAuthenticate",
            params={"UserName": fake.username, "Password": "nope"},
        )
        assert wrong.status_code == 200 and wrong.json()["Status"]["Result"] == "Error"
        assert wrong.json()["Status"]["ErrorCode"] == fake.login_error_code
    assert fake.logins == 2


async def test_sessions_expire_and_are_required(served: Served) -> None:
    fake, url = served.fake, served.url
    async with httpx.AsyncClient() as http:
        ids = await login(http, url, fake)
        assert (await get(http, url, "Units/Unit/List", **ids))["Status"]["Result"] == "ok"
        fake.expire_sessions()
        body = await get(http, url, "Units/Unit/List", **ids)
        assert body["Status"]["ErrorCode"] == fake.session_error_code
        assert (await get(http, url, "Units/Unit/List"))["Status"]["Result"] == "Error"


async def test_the_feed_pages_by_start_id_and_carries_late_records(served: Served) -> None:
    fake, url = served.fake, served.url
    fake.max_batch = 2
    uid = fake.add_unit("Truck", imei="1", imei_key="IMEI")
    fake.add_fix(uid, T0 - 90_000, 1.0, 1.0, received=T0 - 90_000)  # older than 24 h
    for k in range(3):
        fake.add_fix(uid, T0 - 60 + k, 1.0, 1.0, speed_kmh=16.09344, speed_measure="mph")
    async with httpx.AsyncClient() as http:
        ids = await login(http, url, fake)
        first = (await get(http, url, "Data/PositionsList", **ids))["Result"]
        assert [p["GPSTimeUtc"] for p in first["Position"]] == [
            "2026-03-02T07:59:00",
            "2026-03-02T07:59:01",
        ]
        assert first["Position"][0]["Speed"] == pytest.approx(10.0)
        assert first["Position"][0]["Unit"]["IMEI"] == "1"
        assert "InputOutputs" not in first["Position"][0]
        second = (await get(http, url, "Data/PositionsList", StartId=first["StartId"], **ids))[
            "Result"
        ]
        assert len(second["Position"]) == 1
        fake.add_fix(uid, T0 - 5000, 2.0, 2.0)  # late: an old GPS time, appended now
        third = (
            await get(
                http,
                url,
                "Data/PositionsList",
                StartId=second["StartId"],
                IncludeInputOutputs="True",
                **ids,
            )
        )["Result"]
        (late,) = third["Position"]
        assert late["Latitude"] == 2.0 and late["InputOutputs"] == []
        empty = (await get(http, url, "Data/PositionsList", StartId=third["StartId"], **ids))[
            "Result"
        ]
        assert empty == {"Position": [], "StartId": third["StartId"]}
        latest = await get(
            http,
            url,
            "Units/LatestPositionsList",
            LastDateReceivedUtc="02 Mar 2026 07:00:00",
            **ids,
        )
        (row,) = latest["Result"]
        assert row["Position"]["Ignition"] == "" and row["SensorReadings"][0]["Value"] == "8"
        later = await get(
            http,
            url,
            "Units/LatestPositionsList",
            LastDateReceivedUtc="02 Mar 2026 09:00:00",
            **ids,
        )
        assert later["Result"] == []
    assert fake.requests["Data/PositionsList"] == 4


async def test_fault_switches(served: Served) -> None:
    fake, url = served.fake, served.url
    async with httpx.AsyncClient() as http:
        ids = await login(http, url, fake)
        fake.rate_limit(retry_after=7)
        limited = await http.get(f"{url}/Units/Unit/List", params=ids)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
        fake.fail(502)
        assert (await http.get(f"{url}/Units/Unit/List", params=ids)).status_code == 502
        fake.malformed()
        with pytest.raises(ValueError):
            (await http.get(f"{url}/Units/Unit/List", params=ids)).json()
        fake.platform_error(code=50021, message="Permission denied")
        body = (await http.get(f"{url}/Units/Unit/List", params=ids)).json()
        assert body["Status"] == {
            "Result": "Error",
            "ErrorCode": 50021,
            "Message": "Permission denied",
        }
        assert (await http.get(f"{url}/Units/Unit/List", params=ids)).json()["Status"][
            "Result"
        ] == "ok"
    assert fake.request_count == 6


async def test_the_reading_feed_pages_by_its_own_start_id(served: Served) -> None:
    fake, url = served.fake, served.url
    fake.max_batch = 3
    a = fake.add_unit("Truck A", sensor_names={"Fuel Level": "Diesel tank"})
    b = fake.add_unit("Truck B")
    fake.add_fix(a, T0 - 90_000, 1.0, 1.0, received=T0 - 90_000)  # older than 24 h
    fake.add_fix(a, T0 - 60, 1.0, 1.0, satellites=11, readings={"Fuel Level": 55.5})
    fake.add_fix(b, T0 - 50, 1.0, 1.0, readings={"Fuel Level": 12}, params={"Door": True})
    fake.add_reading(b, T0 - 40, "Temperature", -4, name="Reefer")
    async with httpx.AsyncClient() as http:
        ids = await login(http, url, fake)
        positions = (await get(http, url, "Data/PositionsList", **ids))["Result"]
        assert all("SensorReadings" not in p for p in positions["Position"])
        first = (await get(http, url, "Data/SensorReadingsList", **ids))["Result"]
        assert [(r["UnitUid"], r["Name"], r["Value"]) for r in first["SensorReadings"]] == [
            (a, "Satellites", "11"),
            (a, "Diesel tank", "55.5"),  # named by the user on this unit
            (b, "Satellites", "8"),
        ]
        fuel = first["SensorReadings"][1]
        assert fuel == {
            "UnitUid": a,
            "Name": "Diesel tank",
            "Value": "55.5",
            "MeasurementSign": "L",
            "ReadingTimeLocal": "2026-03-02T10:59:00",  # account time: UTC + 3 h
            "SensorType": "Fuel Level",
        }
        second = (await get(http, url, "Data/SensorReadingsList", StartId=first["StartId"], **ids))[
            "Result"
        ]
        assert [(r["Name"], r["Value"], r["SensorType"]) for r in second["SensorReadings"]] == [
            ("Fuel", "12", "Fuel Level"),
            ("Door", "true", "Custom"),
            ("Reefer", "-4", "Temperature"),
        ]
        fake.reading_times = "utc"
        fake.add_reading(a, T0, "GSM Signal Strength", 4)
        third = (await get(http, url, "Data/SensorReadingsList", StartId=second["StartId"], **ids))[
            "Result"
        ]
        (gsm,) = third["SensorReadings"]
        assert gsm["ReadingTimeUtc"] == "2026-03-02T08:00:00" and "ReadingTimeLocal" not in gsm
        assert third["StartId"] == second["StartId"] + 1
        fake.strict_start_ids = True
        refused = await get(http, url, "Data/SensorReadingsList", StartId=12, **ids)
        assert refused["Status"]["ErrorCode"] == 40001
        again = await get(http, url, "Data/SensorReadingsList", StartId=third["StartId"], **ids)
        assert again["Result"]["SensorReadings"] == []


async def test_a_rate_limit_can_start_after_some_requests(served: Served) -> None:
    fake, url = served.fake, served.url
    async with httpx.AsyncClient() as http:
        ids = await login(http, url, fake)
        fake.rate_limit(retry_after=5, after=2)
        statuses = [
            (await http.get(f"{url}/Units/Unit/List", params=ids)).status_code for _ in range(4)
        ]
        assert statuses == [200, 200, 429, 200]
