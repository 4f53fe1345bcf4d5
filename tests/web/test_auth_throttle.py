"""Failed authentication attempts: throttled per client address (429 with Retry-After),
logged without the token, on the REST API and the live feed.

The hub runs under trio's ``MockClock`` without autojump: time stands still unless a
test jumps it, so the token bucket's refill is exact.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from harness import Web, make_hub, running_web
from test_live import closed_with, live, receive
from trio.testing import MockClock
from trio_websocket import ConnectionRejected

from hub import tokens
from hub.config import Settings
from hub.web.auth_throttle import AuthThrottle, Throttled
from hub.web.client_address import AddressResolver, throttle_key

WRONG = tokens.new_token()  # well formed, never issued


@asynccontextmanager
async def throttled(tmp_path: Path, **settings: Any) -> AsyncIterator[Web]:
    settings.setdefault("auth_failures_per_minute", 10)
    async with running_web(tmp_path, hub=make_hub(tmp_path, **settings)) as web:
        yield web


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def get(web: Web, token: str | None, path: str = "/api/devices", **headers: str) -> Any:
    return await web.http.get(path, headers={**(bearer(token) if token else {}), **headers})


def assert_throttled(r: httpx.Response, retry_after: int) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["retry-after"] == str(retry_after)
    error = r.json()["error"]
    assert error["code"] == "too_many_attempts" and error["field"] is None
    assert f"try again in {retry_after} s" in error["message"]


async def test_ten_failures_a_minute_then_429_until_the_bucket_refills(
    tmp_path: Path, mock_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.web.auth")
    async with throttled(tmp_path) as web:
        dashboard = web.tokens["a_mgr"]
        assert (await get(web, dashboard)).status_code == 200  # known from this address

        for _ in range(10):
            assert (await get(web, WRONG)).status_code == 401
        assert_throttled(await get(web, WRONG), 6)
        assert_throttled(await get(web, "not-even-a-token"), 6)
        # the token is not even checked: a valid one new to the address waits too
        assert_throttled(await get(web, web.tokens["a_view"]), 6)
        # what is not throttled: a token that worked from here, no token, public routes
        for _ in range(20):
            assert (await get(web, dashboard)).status_code == 200
        assert (await get(web, None)).json()["error"]["code"] == "unauthorized"
        assert (await get(web, None, "/healthz")).status_code == 200

        mock_clock.jump(5.9)
        assert_throttled(await get(web, WRONG), 1)
        mock_clock.jump(0.1)  # one attempt back every 6 s
        assert (await get(web, WRONG)).status_code == 401
        assert_throttled(await get(web, WRONG), 6)
        mock_clock.jump(6)
        assert (await get(web, web.tokens["a_view"])).status_code == 200  # costs nothing
        assert (await get(web, web.tokens["a_view"])).status_code == 200
        assert (await get(web, WRONG)).status_code == 401
        assert_throttled(await get(web, WRONG), 6)

        mock_clock.jump(60)  # a quiet minute: the whole budget is back
        for _ in range(10):
            assert (await get(web, WRONG)).status_code == 401
        assert (await get(web, WRONG)).status_code == 429

    log = [r.getMessage() for r in caplog.records if r.name == "hub.web.auth"]
    failed = [m for m in log if m.startswith("failed authentication from 127.0.0.1 ")]
    assert len(failed) == 22  # each checked failure, none of the refused ones
    assert failed[0] == (
        "failed authentication from 127.0.0.1 (GET /api/devices): unknown or revoked token, "
        f"token {WRONG[:10]}…"
    )
    assert any("throttled" in m for m in log)
    assert any("5 more attempts refused (429)" in m for m in log), log
    assert WRONG not in caplog.text and WRONG[10:20] not in caplog.text
    assert "not-even-a-token" not in caplog.text


async def test_no_token_or_successful_requests_never_count(
    tmp_path: Path, mock_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.web.auth")
    async with throttled(tmp_path, auth_failures_per_minute=3) as web:
        for _ in range(50):
            assert (await get(web, web.tokens["a_view"])).status_code == 200
            assert (await get(web, None)).status_code == 401
        # any credentials that fail count: a malformed token, another scheme
        assert (await get(web, "gph_s3cret-ish")).status_code == 401
        assert (await get(web, None, Authorization="Basic dXNlcjpwYXNz")).status_code == 401
        assert (await get(web, WRONG)).status_code == 401
        assert_throttled(await get(web, WRONG), 20)
    assert "a malformed token" in caplog.text and "not a bearer token" in caplog.text
    assert "s3cret-ish" not in caplog.text and "dXNlcjpwYXNz" not in caplog.text


async def test_concurrent_attempts_cannot_overdraw_the_budget(
    tmp_path: Path, mock_clock: MockClock
) -> None:
    async with throttled(tmp_path, auth_failures_per_minute=5) as web:
        statuses: list[int] = []

        async def attempt(token: str) -> None:
            statuses.append((await get(web, token)).status_code)

        # a page opening with many requests at once, its token new to the address
        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(attempt, web.tokens["a_mgr"])
        assert statuses == [200] * 20
        statuses.clear()
        slow_check = web.hub.store.check_token

        def check_token(token: str) -> Any:  # every check overlaps all the others
            time.sleep(0.2)
            return slow_check(token)

        web.hub.store.check_token = check_token  # type: ignore[method-assign]
        async with trio.open_nursery() as nursery:  # a guesser, all at once
            for _ in range(40):
                nursery.start_soon(attempt, tokens.new_token())
        assert sorted(statuses) == [401] * 5 + [429] * 35


async def test_expired_and_revoked_tokens_count_and_are_forgotten(
    tmp_path: Path, mock_clock: MockClock
) -> None:
    """A token that worked from an address is let through while it is throttled, until
    it stops working (revoked): then it counts like any failure and waits."""
    async with throttled(tmp_path, auth_failures_per_minute=2) as web:
        token = web.tokens["a_view"]
        assert (await get(web, token)).status_code == 200
        for _ in range(2):
            assert (await get(web, WRONG)).status_code == 401
        assert (await get(web, token)).status_code == 200
        me = (await get(web, web.tokens["a_view"], "/api/me")).json()
        web.hub.store.delete_token(me["token_id"])
        assert (await get(web, token)).status_code == 401  # checked: it was known
        assert_throttled(await get(web, token), 30)


async def test_live_feed_handshake_and_auth_message_are_throttled(
    tmp_path: Path, mock_clock: MockClock
) -> None:
    async with throttled(tmp_path, auth_failures_per_minute=3) as web:
        web.tokens["wrong"] = WRONG
        for _ in range(2):
            with pytest.raises(ConnectionRejected) as rejected:
                async with live(web, who="wrong"):
                    pass
            assert rejected.value.status_code == 401
        async with live(web, who=None) as ws:  # the third failure: an auth message
            await ws.send_message(json.dumps({"type": "auth", "token": WRONG}))
            assert (await receive(ws))["code"] == "invalid_token"
            assert await closed_with(ws) == (4001, "invalid token")

        with pytest.raises(ConnectionRejected) as rejected:
            async with live(web, who="a_view"):  # valid, but new to this address
                pass
        assert rejected.value.status_code == 429
        headers = {k.decode().lower(): v.decode() for k, v in rejected.value.headers}
        assert headers["retry-after"] == "20"
        assert json.loads(rejected.value.body)["error"]["code"] == "too_many_attempts"
        async with live(web, who=None) as ws:
            await ws.send_message(json.dumps({"type": "auth", "token": web.tokens["a_view"]}))
            error = await receive(ws)
            assert (error["code"], error["retry_after"]) == ("too_many_attempts", 20)
            assert await closed_with(ws) == (4029, "too many failed attempts")
        # the REST API shares the address's budget
        assert_throttled(await get(web, WRONG), 20)

        mock_clock.jump(20)
        async with live(web, who=None) as ws:
            await ws.send_message(json.dumps({"type": "auth", "token": web.tokens["a_view"]}))
            assert (await receive(ws))["type"] == "hello"
        async with live(web, who="a_view") as ws:  # known now: no budget needed
            assert (await receive(ws))["type"] == "hello"


async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    tmp_path: Path, mock_clock: MockClock
) -> None:
    # without trusted proxies, X-Forwarded-For is ignored: a client cannot pick addresses
    async with throttled(tmp_path, auth_failures_per_minute=2) as web:
        for i in range(2):
            r = await get(web, WRONG, **{"X-Forwarded-For": f"198.51.100.{i}"})
            assert r.status_code == 401
        r = await get(web, WRONG, **{"X-Forwarded-For": "198.51.100.99"})
        assert_throttled(r, 30)

    (tmp_path / "proxied").mkdir()
    async with throttled(
        tmp_path / "proxied",
        auth_failures_per_minute=2,
        trusted_proxies=("127.0.0.0/8", "10.0.0.0/8"),
        auth_tracked_addresses=5,
    ) as web:
        # behind the proxy, each client has its own budget; what the client itself
        # wrote in the header (left of the proxies' entries) is not believed
        for _ in range(2):
            r = await get(web, WRONG, **{"X-Forwarded-For": "1.2.3.4, 203.0.113.7, 10.0.0.2"})
            assert r.status_code == 401
        r = await get(web, WRONG, **{"X-Forwarded-For": "5.6.7.8, 203.0.113.7, 10.0.0.2"})
        assert_throttled(r, 30)
        assert (await get(web, WRONG, **{"X-Forwarded-For": "203.0.113.8"})).status_code == 401
        # memory is bounded: many addresses, at most five remembered
        for i in range(20):
            await get(web, WRONG, **{"X-Forwarded-For": f"192.0.2.{i}"})
        assert len(web.app.state.auth_gate.throttle) == 5


# -- the parts ---------------------------------------------------------------------------
def test_client_addresses() -> None:
    def scope(peer: str, *forwarded: str) -> dict[str, Any]:
        headers = [(b"x-forwarded-for", f.encode()) for f in forwarded]
        return {"client": (peer, 5000), "headers": headers}

    plain = AddressResolver()
    assert str(plain.client(scope("203.0.113.5", "1.1.1.1"))) == "203.0.113.5"
    proxied = AddressResolver(["10.0.0.0/8", "2001:db8:ffff::/48"])
    assert str(proxied.client(scope("10.0.0.1", "198.51.100.2"))) == "198.51.100.2"
    assert str(proxied.client(scope("10.0.0.1", "9.9.9.9, 198.51.100.2, 10.1.1.1"))) == (
        "198.51.100.2"
    )
    assert str(proxied.client(scope("10.0.0.1", "9.9.9.9", "198.51.100.3:4711"))) == (
        "198.51.100.3"
    )
    assert str(proxied.client(scope("10.0.0.1", "[2001:db8::7]:443"))) == "2001:db8::7"
    assert str(proxied.client(scope("10.0.0.1", "unknown"))) == "10.0.0.1"
    assert str(proxied.client(scope("10.0.0.1"))) == "10.0.0.1"
    assert str(proxied.client(scope("10.0.0.1", "10.0.0.9, 10.0.0.8"))) == "10.0.0.9"
    assert str(proxied.client(scope("::ffff:192.0.2.1"))) == "192.0.2.1"
    assert proxied.client({"headers": []}) is None
    assert throttle_key(proxied.client(scope("2001:db8:1:2:3:4:5:6"))) == "2001:db8:1:2::/64"
    assert throttle_key(None) == "unknown"
    with pytest.raises(ValueError, match="trusted_proxies"):
        AddressResolver(["10.0.0.0/33"])


def test_throttle_settings_are_checked(tmp_path: Path) -> None:
    env = {
        "GPSHUB_DATA_DIR": str(tmp_path),
        "GPSHUB_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1",
        "GPSHUB_AUTH_FAILURES_PER_MINUTE": "5",
    }
    s = Settings.load(environ=env)
    assert s.trusted_proxies == ("10.0.0.0/8", "192.168.1.1")
    assert (s.auth_failures_per_minute, s.auth_tracked_addresses) == (5, 10_000)
    (tmp_path / "gpshub.toml").write_text(
        'trusted_proxies = ["2001:db8::/32"]\nauth_tracked_addresses = 500\n'
    )
    s = Settings.load(environ={"GPSHUB_DATA_DIR": str(tmp_path)})
    assert (s.trusted_proxies, s.auth_tracked_addresses) == (("2001:db8::/32",), 500)
    for key, value in (
        ("TRUSTED_PROXIES", "10.0.0.0/8, proxy.example"),
        ("AUTH_FAILURES_PER_MINUTE", "-1"),
        ("AUTH_TRACKED_ADDRESSES", "0"),
    ):
        with pytest.raises(ValueError, match=key.lower()):
            Settings.load(environ={"GPSHUB_DATA_DIR": str(tmp_path), f"GPSHUB_{key}": value})
    with pytest.raises(ValueError, match="auth_failures_per_minute"):
        AuthThrottle(-1)
    with pytest.raises(ValueError, match="auth_tracked_addresses"):
        AuthThrottle(10, 0)


async def test_an_attempt_cancelled_while_checked_counts_nothing(
    autojump_clock: MockClock,
) -> None:
    throttle = AuthThrottle(1)
    attempt = await throttle.admit("198.51.100.1")
    with trio.move_on_after(1):  # a second attempt waits for the first one's outcome
        await throttle.admit("198.51.100.1")
        raise AssertionError("admitted beyond the budget")
    throttle.release(attempt)
    throttle.release(attempt)  # twice: nothing more
    again = await throttle.admit("198.51.100.1")
    throttle.failed(again, "test", "unknown or revoked token", None)
    with pytest.raises(Throttled):
        await throttle.admit("198.51.100.1")
    assert (await AuthThrottle(0).admit("198.51.100.1")).holding is None  # off
