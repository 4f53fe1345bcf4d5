"""``WialonClient`` on scripted answers (httpx.MockTransport): mapping and session rules."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
import trio
from trio.testing import MockClock
from wialon_support import EPOCH

from gpshub_wialon import protocol as p
from gpshub_wialon.client import SESSION_KEY, WialonClient, error_code, map_error
from hub.clock import TrioClock
from hub.errors import BadConfig, CannotConnect, InvalidAuth, RateLimited, UpdateFailed
from hub.source import MemoryStateStore

Answer = Callable[[str, dict[str, Any]], httpx.Response]


def ok(body: Any) -> httpx.Response:
    return httpx.Response(200, content=orjson.dumps(body))


def login_ok(eid: str = "e" * 32) -> httpx.Response:
    return ok({"eid": eid, "user": {"nm": "fleet", "id": 1}})


class Scripted:
    """A transport answering each request with ``answer(svc, form)``; records forms."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.forms: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        self.forms.append(form)
        return self.answer(form["svc"], form)

    def svcs(self) -> list[str]:
        return [f["svc"] for f in self.forms]


def client(answer: Answer, state: MemoryStateStore | None = None) -> tuple[WialonClient, Scripted]:
    scripted = Scripted(answer)
    http = httpx.AsyncClient(transport=httpx.MockTransport(scripted))
    c = WialonClient(
        http,
        "https://wialon.example/",
        "T" * 72,
        state=state or MemoryStateStore(),
        clock=TrioClock(EPOCH),
        log=logging.getLogger("test.wialon.client"),
    )
    return c, scripted


@pytest.mark.parametrize(
    ("code", "error", "text"),
    [
        (8, InvalidAuth, "error 8"),
        (7, InvalidAuth, "error 7"),
        (4, BadConfig, "error 4"),
        (1003, RateLimited, "error 1003"),
        (9, CannotConnect, "error 9"),
        (6, UpdateFailed, "error 6"),
    ],
)
async def test_login_errors(code: int, error: type[Exception], text: str) -> None:
    c, scripted = client(lambda svc, form: ok({"error": code}))
    with pytest.raises(error, match=text) as info:
        await c.session()
    assert "T" * 72 not in str(info.value)
    assert scripted.svcs() == [p.LOGIN]  # never retried
    if code == 4:
        assert isinstance(info.value, BadConfig) and info.value.field == "credentials.token"


async def test_login_sends_the_token_in_the_body_with_user_flags() -> None:
    c, scripted = client(lambda svc, form: login_ok())
    assert await c.session() == "e" * 32
    assert c.user == "fleet"
    (form,) = scripted.forms
    assert "sid" not in form
    assert orjson.loads(form["params"]) == {"token": "T" * 72, "fl": 3}


async def test_a_login_answer_without_a_session_is_update_failed() -> None:
    c, _ = client(lambda svc, form: ok({"user": {"nm": "x"}}))
    with pytest.raises(UpdateFailed, match="eid"):
        await c.session()


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(403, text="forbidden"), UpdateFailed),
        (httpx.Response(404, text="nothing here"), BadConfig),
        (httpx.Response(502, text="bad gateway"), CannotConnect),
        (httpx.Response(429, headers={"Retry-After": "17"}), RateLimited),
        (httpx.Response(200, text="<html>maintenance</html>"), UpdateFailed),
    ],
)
async def test_http_answers_are_mapped(response: httpx.Response, error: type[Exception]) -> None:
    c, _ = client(lambda svc, form: response)
    with pytest.raises(error) as info:
        await c.session()
    if isinstance(info.value, RateLimited):
        assert info.value.retry_after == 17
    if isinstance(info.value, BadConfig):
        assert info.value.field == "credentials.server_url"


async def test_transport_errors_are_cannot_connect() -> None:
    def refuse(svc: str, form: dict[str, Any]) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    c, _ = client(refuse)
    with pytest.raises(CannotConnect, match="cannot reach Wialon"):
        await c.session()

    def hang(svc: str, form: dict[str, Any]) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    c, _ = client(hang)
    with pytest.raises(CannotConnect, match="in time"):
        await c.session()


async def test_a_batch_answer_of_the_wrong_shape_is_update_failed() -> None:
    answers = {p.LOGIN: login_ok(), p.BATCH: ok([{"count": 0, "messages": []}])}
    c, _ = client(lambda svc, form: answers[svc])
    with pytest.raises(UpdateFailed, match="list of 2"):
        await c.batch([(p.LOAD_INTERVAL, {}), (p.UNLOAD, {})])


async def test_the_relogin_budget_of_a_cycle() -> None:
    """Each call may renew a lost session once; a cycle renews it at most twice."""
    logins = iter(f"{i:032d}" for i in range(10))

    def answer(svc: str, form: dict[str, Any]) -> httpx.Response:
        if svc == p.LOGIN:
            return login_ok(next(logins))
        return ok({"error": 1} if form["sid"] != "0" * 31 + "2" else {"items": []})

    c, scripted = client(answer)
    c.begin_cycle()
    with pytest.raises(UpdateFailed, match="fresh session"):
        await c.call(p.SEARCH_ITEMS, {})
    assert scripted.svcs().count(p.LOGIN) == 2
    assert await c.call(p.SEARCH_ITEMS, {}) == {"items": []}  # second renewal works
    assert scripted.svcs().count(p.LOGIN) == 3
    c.eid = "dead"
    with pytest.raises(UpdateFailed, match="keeps ending"):
        await c.call(p.SEARCH_ITEMS, {})
    assert scripted.svcs().count(p.LOGIN) == 3


async def test_the_session_is_saved_on_login_and_then_once_a_minute(
    gpshub_clock: MockClock,
) -> None:
    state = MemoryStateStore()
    c, _ = client(lambda svc, form: login_ok() if svc == p.LOGIN else ok({"items": []}), state)
    await c.call(p.SEARCH_ITEMS, {})
    saved = state.data[SESSION_KEY]
    assert saved["eid"] == "e" * 32 and "T" * 72 not in repr(saved)
    first = saved["used_at"]
    await trio.sleep(30)
    await c.call(p.SEARCH_ITEMS, {})
    assert state.data[SESSION_KEY]["used_at"] == first
    await trio.sleep(31)
    await c.call(p.SEARCH_ITEMS, {})
    assert state.data[SESSION_KEY]["used_at"] == first + 61


def test_error_code() -> None:
    assert error_code({"error": 0}) is None
    assert error_code({"error": 7}) == 7
    assert error_code({"error": True}) is None
    assert error_code([{"error": 1}]) is None
    assert error_code({"items": []}) is None


def test_map_error_keeps_the_reason() -> None:
    exc = map_error(1003, {"error": 1003, "reason": "LIMIT api_concurrent"}, p.BATCH)
    assert isinstance(exc, RateLimited) and exc.retry_after is None
    assert "core/batch" in str(exc) and "LIMIT api_concurrent" in str(exc)
    assert isinstance(map_error(4, {}, p.SEARCH_ITEMS), UpdateFailed)  # not an auth failure
    assert isinstance(map_error(10, {}, p.BATCH), RateLimited)
