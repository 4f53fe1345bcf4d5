"""``FakeUpstream``: each fault, the log, the counts and the delay, served on loopback and
called with httpx (the fixtures are the pytest plugin's: ``gpshub_clock``, ``gpshub_serve``)."""

from __future__ import annotations

import urllib.parse
from typing import Any

import httpx
import pytest
import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from trio.testing import MockClock

from hub.fake_upstream import FakeCall, FakeUpstream, FixFields, current_call


class FakeAcme(FakeUpstream):
    """A platform of two routes, whose own errors are HTTP 200 with ``{"error": ...}``."""

    name = "acme"

    def __init__(self) -> None:
        super().__init__(now=trio.current_time)
        self.sessions = {"s1"}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/units", self._units, methods=["GET", "POST"]),
            Route("/api/login", self._login, methods=["POST"]),
        ]

    def request_name(self, call: FakeCall) -> str:
        return call.path.removeprefix("/api/")

    def platform_response(self, call: FakeCall, **details: Any) -> Response:
        return JSONResponse({"error": details.get("code", 1)})

    def expire_sessions(self) -> None:
        self.sessions.clear()

    async def _units(self, request: Request) -> Response:
        if request.query_params.get("session") not in self.sessions:
            return JSONResponse({"error": "session"}, 401)
        return JSONResponse({"units": ["a", "b"]})

    async def _login(self, request: Request) -> Response:
        form = urllib.parse.parse_qs((await request.body()).decode())
        return JSONResponse({"user": form["user"][0]})


class Plain(FakeUpstream):
    """A fake without platform errors or sessions."""


@pytest.fixture
async def acme(gpshub_serve: Any) -> tuple[FakeAcme, str]:
    fake = FakeAcme()
    return fake, await gpshub_serve(fake)


async def test_the_log_and_the_counts(gpshub_clock: MockClock, acme: tuple[FakeAcme, str]) -> None:
    fake, url = acme
    async with httpx.AsyncClient(base_url=url) as http:
        ok = await http.get("/api/units", params={"session": "s1", "x": ["1", "2"]})
        login = await http.post(
            "/api/login?lang=en", data={"user": "ann", "x": "3"}, headers={"X-Trace": "t"}
        )
        missing = await http.get("/nowhere")
    assert ok.json() == {"units": ["a", "b"]} and login.json() == {"user": "ann"}
    assert missing.status_code == 404
    assert fake.requests == {"units": 1, "login": 1, "/nowhere": 1}
    assert fake.request_count == len(fake.calls) == 3
    first, second, third = fake.calls
    assert (first.method, first.path, first.name, first.status) == (
        "GET",
        "/api/units",
        "units",
        200,
    )
    assert first.query == {"session": ["s1"], "x": ["1", "2"]} and first.params("x") == ["1", "2"]
    assert (second.method, second.status, second.fault) == ("POST", 200, None)
    assert second.headers["x-trace"] == "t" and second.body == b"user=ann&x=3"
    assert second.params("user") == ["ann"] and second.params("lang") == ["en"]
    assert third.status == 404 and third.params("x") == []
    assert all(c.ended is not None and c.ended >= c.at for c in fake.calls)


async def test_delay_makes_every_answer_wait(
    gpshub_clock: MockClock, acme: tuple[FakeAcme, str]
) -> None:
    fake, url = acme
    fake.delay = 30.0
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        started = trio.current_time()
        assert (await http.get("/api/units", params={"session": "s1"})).status_code == 200
        assert trio.current_time() - started >= 30.0
        (call,) = fake.calls
        assert call.ended is not None and call.ended - call.at >= 30.0
        fake.reset_faults()
        started = trio.current_time()
        await http.get("/api/units", params={"session": "s1"})
        assert trio.current_time() - started < 30.0


async def test_fail_with_a_page_or_a_body_then_the_routes_again(
    gpshub_clock: MockClock, acme: tuple[FakeAcme, str]
) -> None:
    fake, url = acme
    fake.fail(503, times=2)
    fake.fail(400, body="bad request: no")
    async with httpx.AsyncClient(base_url=url) as http:
        answers = [await http.get("/api/units", params={"session": "s1"}) for _ in range(4)]
    assert [a.status_code for a in answers] == [503, 503, 400, 200]
    assert "503 Service Unavailable" in answers[0].text
    assert answers[0].headers["content-type"].startswith("text/html")
    assert answers[2].text == "bad request: no"
    assert [c.fault for c in fake.calls] == ["fail", "fail", "fail", None]
    assert [c.status for c in fake.calls] == [503, 503, 400, 200]
    assert fake.faults == []


async def test_rate_limit_says_when_to_come_back(
    gpshub_clock: MockClock, acme: tuple[FakeAcme, str]
) -> None:
    fake, url = acme
    fake.rate_limit(retry_after=30)
    fake.rate_limit(retry_after=2.5)
    fake.rate_limit(retry_after="Wed, 21 Oct 2026 07:28:00 GMT")
    fake.rate_limit(retry_after=None)
    async with httpx.AsyncClient(base_url=url) as http:
        answers = [await http.get("/api/units", params={"session": "s1"}) for _ in range(5)]
    assert [a.status_code for a in answers] == [429, 429, 429, 429, 200]
    assert [a.headers.get("retry-after") for a in answers[:4]] == [
        "30",
        "2.5",
        "Wed, 21 Oct 2026 07:28:00 GMT",
        None,
    ]


async def test_a_fault_can_wait_for_its_path_and_its_turn(
    gpshub_clock: MockClock, acme: tuple[FakeAcme, str]
) -> None:
    fake, url = acme
    fake.rate_limit(times=2, path="units", after=1)  # the name it is counted under
    async with httpx.AsyncClient(base_url=url) as http:
        statuses = []
        for _ in range(4):
            await http.post("/api/login", data={"user": "ann"})  # not that path: untouched
            statuses.append((await http.get("/api/units", params={"session": "s1"})).status_code)
        fake.fail(502, path="/api/login")  # or the path itself
        assert (await http.post("/api/login", data={"user": "ann"})).status_code == 502
    assert statuses == [200, 429, 429, 200]
    assert fake.requests["login"] == 5


async def test_malformed_is_json_that_does_not_decode(
    gpshub_clock: MockClock, acme: tuple[FakeAcme, str]
) -> None:
    fake, url = acme
    fake.malformed(times=1)
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.get("/api/units", params={"session": "s1"})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        with pytest.raises(ValueError):
            answer.json()
        assert (await http.get("/api/units", params={"session": "s1"})).json()["units"]


async def test_hang_answers_nothing_until_the_client_gives_up(
    gpshub_clock: MockClock, acme: tuple[FakeAcme, str]
) -> None:
    fake, url = acme
    fake.hang()
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        started = trio.current_time()
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/api/units", params={"session": "s1"})
        assert trio.current_time() - started >= 20
        assert (await http.get("/api/units", params={"session": "s1"})).status_code == 200
    hung = fake.calls[0]
    with trio.fail_after(120):  # the server hears the client close the connection
        while hung.ended is None:  # noqa: ASYNC110 - polls what the server did
            await trio.sleep(0.5)
    assert hung.fault == "hang" and hung.status is None and hung.ended - hung.at >= 20


async def test_platform_error_and_expired_sessions_are_the_subclass_own(
    gpshub_clock: MockClock, acme: tuple[FakeAcme, str]
) -> None:
    fake, url = acme
    fake.platform_error(code=7)
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.get("/api/units", params={"session": "s1"})
        assert (answer.status_code, answer.json()) == (200, {"error": 7})
        fake.expire_sessions()
        assert (await http.get("/api/units", params={"session": "s1"})).status_code == 401
    plain = Plain()
    with pytest.raises(NotImplementedError):
        plain.platform_error()
    with pytest.raises(NotImplementedError):
        plain.expire_sessions()


async def test_reset_faults_forgets_the_queue(
    gpshub_clock: MockClock, acme: tuple[FakeAcme, str]
) -> None:
    fake, url = acme
    fake.fail(times=3)
    fake.hang()
    fake.reset_faults()
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/api/units", params={"session": "s1"})).status_code == 200


async def test_slow_json_failures_and_the_call_record(
    gpshub_clock: MockClock, acme: tuple[FakeAcme, str]
) -> None:
    fake, url = acme
    fake.slow(20.0)
    fake.fail(500, body='{"error": "database is down"}')
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        failed = await http.get("/api/units?b=2&a=1%202")
        fake.slow(0)
        ok = await http.get("/api/units", params={"session": "s1"})
    assert failed.headers["content-type"].startswith("application/json")
    assert failed.json() == {"error": "database is down"} and ok.status_code == 200
    slow, quick = fake.calls
    assert slow.raw_query == "b=2&a=1%202" and slow.query == {"b": ["2"], "a": ["1 2"]}
    assert slow.started is not None and slow.finished is not None
    assert slow.finished - slow.started >= 20.0
    assert quick.started is not None and quick.started >= slow.finished


class Seen(FakeUpstream):
    """Routes that note what they decided on their call, and a store of fixes."""

    def __init__(self) -> None:
        super().__init__(now=lambda: 1000.0)
        self.stored: list[tuple[str, FixFields, dict[str, Any]]] = []

    def routes(self) -> list[BaseRoute]:
        return [Route("/who", self._who)]

    async def _who(self, request: Request) -> Response:
        call = current_call()
        assert call is not None and call.path == "/who"
        call.name = "who-" + request.query_params.get("user", "")
        return JSONResponse({})

    def store_fix(self, upstream_id: str, fix: FixFields, **platform: Any) -> Any:
        self.stored.append((upstream_id, fix, platform))
        return len(self.stored)


async def test_a_route_reaches_its_call(gpshub_clock: MockClock, gpshub_serve: Any) -> None:
    fake = Seen()
    url = await gpshub_serve(fake)
    async with httpx.AsyncClient(base_url=url) as http:
        await http.get("/who", params={"user": "ann"})
    assert [c.name for c in fake.calls] == ["who-ann"]
    assert current_call() is None


def test_add_fix_is_one_signature_for_every_fake() -> None:
    fake = Seen()
    assert fake.add_fix("u1", 50.0, 1.0, 2.0, speed_kmh=9.0, params={"fuel": 3}) == 1
    assert fake.add_fix("u2", 60.0, 3.0, 4.0, received=55.0, accuracy=5.0) == 2
    (first, fix, extra), (second, late, platform) = fake.stored
    assert (first, fix.t, fix.lat, fix.lon, fix.speed_kmh, fix.satellites) == (
        "u1",
        50.0,
        1.0,
        2.0,
        9.0,
        8,
    )
    assert fix.params == {"fuel": 3} and fix.received is None and extra == {}
    assert (second, late.received, platform) == ("u2", 55.0, {"accuracy": 5.0})
    with pytest.raises(NotImplementedError):
        Plain().add_fix("u", 0.0, 0.0, 0.0)
