"""The ADM token: gpsoauth's request, cached in state, refreshed, errors mapped."""

from __future__ import annotations

import threading
from typing import Any

import gpsoauth
import pytest
import trio
from trio.testing import MockClock

from gpshub_findhub import auth
from gpshub_findhub.auth import (
    ADM_APP,
    ADM_SERVICE,
    CLIENT_SIG,
    STATE_KEY,
    AuthAnswer,
    TokenManager,
    oauth_form,
    post_auth_form,
)
from gpshub_findhub.testing import TEST_AAS_TOKEN, TEST_ANDROID_ID, TEST_USERNAME, FakeFindHub
from hub.clock import TrioClock
from hub.errors import CannotConnect, InvalidAuth, UpdateFailed
from hub.source import MemoryStateStore
from hub.testing import serve_app


def manager(
    fake: FakeFindHub | None, wall: TrioClock, state: MemoryStateStore, **kw: Any
) -> TokenManager:
    """A token manager for the test account, its token request answered by ``fake``
    in-process (or by ``post``)."""
    params: dict[str, Any] = {
        "auth_url": "http://127.0.0.1:9/auth",
        "username": TEST_USERNAME,
        "aas_token": TEST_AAS_TOKEN,
        "android_id": str(TEST_ANDROID_ID),
        "state": state,
        "clock": wall,
        "post": None if fake is None else fake.post_form,
    }
    params.update(kw)
    return TokenManager(**params)


def test_the_form_is_gpsoauths_perform_oauth(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []

    def capture(data: dict[str, Any], proxies: Any = None) -> dict[str, str]:
        sent.append(data)
        return {}

    monkeypatch.setattr(gpsoauth, "_perform_auth_request", capture)
    gpsoauth.perform_oauth(
        TEST_USERNAME,
        TEST_AAS_TOKEN,
        "123",
        service=ADM_SERVICE,
        app=ADM_APP,
        client_sig=CLIENT_SIG,
    )
    assert list(oauth_form(TEST_USERNAME, TEST_AAS_TOKEN, "123").items()) == list(sent[0].items())
    assert auth.USER_AGENT == gpsoauth.USER_AGENT
    assert auth.DEFAULT_AUTH_URL == gpsoauth.AUTH_URL


async def test_a_token_is_cached_in_state_until_its_expiry_minus_five_minutes(
    fake: FakeFindHub, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    state = MemoryStateStore()
    tokens = manager(fake, gpshub_wall, state)
    first = await tokens.token()
    assert await tokens.token() == first and fake.tokens_issued == 1
    assert state.data[STATE_KEY]["token"] == first
    assert first not in str({k: v for k, v in state.data[STATE_KEY].items() if k != "token"})
    # a new instance (a restart) takes the saved token
    again = manager(fake, gpshub_wall, state)
    assert await again.token() == first and fake.tokens_issued == 1
    await trio.sleep(3600 - 300 - 1)
    assert await again.token() == first
    await trio.sleep(2)
    second = await again.token()
    assert second != first and fake.tokens_issued == 2
    assert fake.auth_forms[-1]["androidId"] == str(TEST_ANDROID_ID)


async def test_another_account_never_reuses_a_saved_token(
    fake: FakeFindHub, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    state = MemoryStateStore()
    await manager(fake, gpshub_wall, state).token()
    fake.username = "bob@gmail.com"
    other = manager(fake, gpshub_wall, state, username="bob@gmail.com")
    await other.token()
    assert fake.tokens_issued == 2


async def test_refresh_after_a_401_makes_one_new_token_for_concurrent_callers(
    fake: FakeFindHub, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    tokens = manager(fake, gpshub_wall, MemoryStateStore())
    rejected = await tokens.token()
    got: list[str] = []
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(lambda: _append(got, tokens.refresh(rejected)))
    assert len(set(got)) == 1 and got[0] != rejected
    assert fake.tokens_issued == 2


async def _append(out: list[str], awaitable: Any) -> None:
    out.append(await awaitable)


@pytest.mark.parametrize("code", ["BadAuthentication", "NeedsBrowser"])
async def test_a_refused_aas_token_is_invalid_auth_telling_what_to_do(
    fake: FakeFindHub, gpshub_wall: TrioClock, gpshub_clock: MockClock, code: str
) -> None:
    fake.auth_error = code
    state = MemoryStateStore()
    with pytest.raises(InvalidAuth) as err:
        await manager(fake, gpshub_wall, state).token()
    message = str(err.value)
    assert code in message and "generate a new secrets.json" in message
    assert TEST_AAS_TOKEN not in message
    assert STATE_KEY not in state.data


def answer(status: int, **fields: str) -> Any:
    return lambda url, form: AuthAnswer(status, dict(fields), fields.get("retry"))


@pytest.mark.parametrize(
    ("status", "fields", "error", "words"),
    [
        (500, {"Error": "ServiceUnavailable"}, CannotConnect, "HTTP 500"),
        (502, {}, CannotConnect, "HTTP 502"),
        (403, {"Error": "DeviceManagementRequiredOrSyncDisabled"}, UpdateFailed, "Device"),
        (200, {"issueAdvice": "auto"}, UpdateFailed, "without a token"),
        (404, {}, UpdateFailed, "is auth_url an auth endpoint"),
        (403, {"Error": "<script>alert(1)</script>"}, UpdateFailed, "unreadable"),
    ],
)
async def test_other_answers_are_retried_errors(
    gpshub_wall: TrioClock,
    gpshub_clock: MockClock,
    status: int,
    fields: dict[str, str],
    error: type,
    words: str,
) -> None:
    tokens = manager(
        None, gpshub_wall, MemoryStateStore(), post=lambda url, form: AuthAnswer(status, fields)
    )
    with pytest.raises(error) as err:
        await tokens.token()
    assert words in str(err.value)


@pytest.mark.parametrize(
    ("fields", "lifetime"),
    [
        ({"Expiry": "{now+3600}"}, 3300),
        ({"ExpiresInDurationSec": "1800"}, 1500),
        ({}, 3000),
        ({"Expiry": "{now-10}"}, 3000),
        ({"Expiry": "nan"}, 3000),
        ({"Expiry": "{now+200}"}, 100),
    ],
)
async def test_the_cache_lifetime_follows_the_answer(
    gpshub_wall: TrioClock, gpshub_clock: MockClock, fields: dict[str, str], lifetime: float
) -> None:
    now = gpshub_wall.now().timestamp()
    values = {k: v.replace("{now+3600}", str(now + 3600)) for k, v in fields.items()}
    values = {k: v.replace("{now-10}", str(now - 10)) for k, v in values.items()}
    values = {k: v.replace("{now+200}", str(now + 200)) for k, v in values.items()}
    calls: list[float] = []

    def post(url: str, form: dict[str, Any]) -> AuthAnswer:
        calls.append(gpshub_wall.now().timestamp())
        return AuthAnswer(200, {"Auth": f"t{len(calls)}", **values})

    tokens = manager(None, gpshub_wall, MemoryStateStore(), post=post)
    await tokens.token()
    await trio.sleep(lifetime - 1)
    await tokens.token()
    assert len(calls) == 1
    await trio.sleep(2)
    await tokens.token()
    assert len(calls) == 2


# -- the real POST (requests in a worker thread, gpsoauth's adapter), on the real clock --


async def test_the_real_post_reaches_a_configured_endpoint(nursery: trio.Nursery) -> None:
    fake = FakeFindHub()
    url = await nursery.start(serve_app, fake.app)
    main = threading.get_ident()
    threads: list[int] = []

    def post(target: str, form: dict[str, Any]) -> AuthAnswer:
        threads.append(threading.get_ident())
        return post_auth_form(target, form)

    tokens = TokenManager(
        auth_url=f"{url}/auth",
        username=TEST_USERNAME,
        aas_token=TEST_AAS_TOKEN,
        android_id=str(TEST_ANDROID_ID),
        state=MemoryStateStore(),
        clock=TrioClock(fake_now()),
        post=post,
    )
    token = await tokens.token()
    assert token.startswith("ya29.fake-") and fake.tokens_issued == 1
    assert threads and threads[0] != main  # never on the trio thread
    assert fake.auth_forms[0]["service"] == ADM_SERVICE
    fake.auth_error = "BadAuthentication"
    with pytest.raises(InvalidAuth):
        await tokens.refresh(token)


def fake_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_an_unreachable_endpoint_is_cannot_connect() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()  # nothing listens there now
    with pytest.raises(CannotConnect) as err:
        await trio.to_thread.run_sync(post_auth_form, f"http://127.0.0.1:{port}/auth", {"a": 1})
    assert "cannot reach" in str(err.value)
