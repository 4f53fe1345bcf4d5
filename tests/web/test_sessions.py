"""Browser sessions: signing in and out, the cookie, CSRF, expiry, throttling, passwords
and the live feed's handshake by cookie (``hub.web.sessions``, ``hub.web.api_sessions``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import ORIGIN, Web, make_hub, running_web
from test_live import closed_with, hello_and_snapshot
from trio_websocket import ConnectionRejected, open_websocket_url

from hub.passwords import Params, hash_password, needs_rehash, verify_password

PW = "correct horse battery"
NEW_PW = "a quite different one"


class ManualClock:
    def __init__(self) -> None:
        self.t = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


def set_password(web: Web, who: str, password: str = PW) -> None:
    web.hub.store.sessions.set_password(web.users[who], hash_password(password))


@asynccontextmanager
async def browser(web: Web, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own cookie jar, as a browser on the hub's own origin."""
    async with httpx.AsyncClient(base_url=web.url, timeout=60, headers=headers) as client:
        yield client


async def sign_in(b: httpx.AsyncClient, name: str, password: str = PW, **more: Any) -> Any:
    r = await b.post("/api/session", json={"name": name, "password": password, **more})
    assert r.status_code == 200, r.text
    return r.json()


def set_cookie(r: httpx.Response) -> str:
    return r.headers["set-cookie"]


async def test_sign_in_use_and_sign_out(web: Web) -> None:
    set_password(web, "a_mgr")
    async with browser(web) as b:
        r = await b.post("/api/session", json={"name": "a_mgr", "password": PW})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["user"]["name"] == "a_mgr" and body["user"]["has_password"] is True
        assert body["client"]["name"] == "Client A" and body["can_write"] is True
        assert body["idle_timeout_s"] == 1800 and body["csrf_token"]
        cookie = set_cookie(r)
        assert cookie.startswith("gpshub_session=")
        for flag in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"):
            assert flag in cookie
        assert "Secure" not in cookie  # plain http, no trusted proxy
        assert r.headers["cache-control"] == "no-store"
        assert "password" not in r.text.replace("has_password", "")

        me = await b.get("/api/me")
        assert me.status_code == 200 and me.json()["user"]["id"] == web.users["a_mgr"]
        assert me.json()["token_id"] is None
        devices = await b.get("/api/devices")
        assert devices.status_code == 200
        again = await b.get("/api/session")
        assert again.status_code == 200 and again.json()["csrf_token"] == body["csrf_token"]

        refused = await b.delete("/api/session")  # a write: the CSRF token is needed
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf"
        out = await b.delete("/api/session", headers={"X-CSRF-Token": body["csrf_token"]})
        assert out.status_code == 204
        assert "Max-Age=0" in set_cookie(out)
        value = cookie.split(";")[0].split("=", 1)[1]
        b.cookies.set("gpshub_session", value)  # a copy of the cookie: the session is gone
        gone = await b.get("/api/me")
        assert gone.status_code == 401 and gone.json()["error"]["code"] == "invalid_session"
        assert (await b.get("/api/session")).status_code == 401


async def test_without_a_session(web: Web) -> None:
    async with browser(web) as b:
        r = await b.get("/api/session")
        assert r.status_code == 401 and r.json()["error"]["code"] == "no_session"
        assert (await b.delete("/api/session")).status_code == 204
        assert (await b.get("/api/me")).status_code == 401
    # a bearer token has no session
    assert (await web.get("admin", "/api/session")).status_code == 401


async def test_wrong_name_or_password_say_the_same(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    set_password(web, "a_mgr")
    caplog.set_level(logging.DEBUG)
    async with browser(web) as b:
        answers = []
        for name, password in (("a_mgr", "wrong password!"), ("nobody", PW), ("a_view", PW)):
            r = await b.post("/api/session", json={"name": name, "password": password})
            assert r.status_code == 401, r.text
            assert "set-cookie" not in r.headers
            answers.append(r.json())
        assert answers[0] == answers[1] == answers[2]
        assert answers[0]["error"]["code"] == "invalid_credentials"
        wrong_client = await b.post(
            "/api/session", json={"name": "a_mgr", "password": PW, "client": "Client B"}
        )
        assert wrong_client.json() == answers[0]
        short = await b.post("/api/session", json={"name": "a_mgr"})
        assert short.status_code == 422 and short.json()["error"]["field"] == "password"
    for secret in (PW, "wrong password!", "scrypt$"):
        assert secret not in caplog.text
    assert "failed authentication" in caplog.text


async def test_sign_in_is_throttled_per_address_and_per_name(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, auth_failures_per_minute=3, trusted_proxies=("127.0.0.1",))
    async with running_web(tmp_path, hub=hub) as web:
        for who in ("a_mgr", "a_view", "b_mgr"):
            set_password(web, who)
        async with browser(web, **{"X-Forwarded-For": "198.51.100.1"}) as b:
            for _ in range(3):
                r = await b.post("/api/session", json={"name": "a_view", "password": "x" * 12})
                assert r.status_code == 401
            r = await b.post("/api/session", json={"name": "a_mgr", "password": PW})
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            assert r.json()["error"]["code"] == "too_many_attempts"
        # the name a_mgr, from addresses that each fail once: the name's budget runs out
        for i in range(3):
            async with browser(web, **{"X-Forwarded-For": f"203.0.113.{i}"}) as b:
                r = await b.post("/api/session", json={"name": "a_mgr", "password": "y" * 12})
                assert r.status_code == 401
        async with browser(web, **{"X-Forwarded-For": "203.0.113.50"}) as b:
            r = await b.post("/api/session", json={"name": "a_mgr", "password": PW})
            assert r.status_code == 429, r.text  # even the right password: nothing is said
            assert "retry-after" in r.headers
            ok = await b.post("/api/session", json={"name": "b_mgr", "password": PW})
            assert ok.status_code == 200  # another name from a fresh address
            again = await b.post("/api/session", json={"name": "a_view", "password": PW})
            assert again.status_code == 429  # a_view failed 3 times from the first address


async def test_idle_and_absolute_expiry(tmp_path: Path) -> None:
    hub = make_hub(tmp_path)
    clock = ManualClock()
    hub.clock = clock
    async with running_web(tmp_path, hub=hub) as web:
        set_password(web, "a_view")
        async with browser(web) as b:
            await sign_in(b, "a_view")
            clock.advance(minutes=29)
            assert (await b.get("/api/me")).status_code == 200
            clock.advance(minutes=30, seconds=1)  # idle for longer than 30 min
            r = await b.get("/api/me")
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_session"
            assert "Max-Age=0" in r.headers["set-cookie"]  # the stale cookie is cleared

        async with browser(web) as b:
            body = await sign_in(b, "a_view")
            expires = datetime.fromisoformat(body["expires_at"])
            assert expires == clock.t + timedelta(hours=12)
            for _ in range(11 * 3):  # busy all day long: 20 min between requests
                clock.advance(minutes=20)
                assert (await b.get("/api/devices")).status_code == 200
            clock.advance(minutes=59)
            assert (await b.get("/api/me")).status_code == 401


async def test_cookie_is_secure_over_https_from_a_trusted_proxy(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, trusted_proxies=("127.0.0.1",))
    async with running_web(tmp_path, hub=hub) as web:
        set_password(web, "a_view")
        async with browser(web, **{"X-Forwarded-Proto": "https"}) as b:
            r = await b.post("/api/session", json={"name": "a_view", "password": PW})
            assert r.status_code == 200 and "; Secure" in set_cookie(r)
    (tmp_path / "untrusted").mkdir()
    async with running_web(tmp_path / "untrusted") as web:  # no trusted proxy: not believed
        set_password(web, "a_view")
        async with browser(web, **{"X-Forwarded-Proto": "https"}) as b:
            r = await b.post("/api/session", json={"name": "a_view", "password": PW})
            assert r.status_code == 200 and "Secure" not in set_cookie(r)


async def test_csrf(web: Web) -> None:
    set_password(web, "a_mgr")
    async with browser(web) as b:
        csrf = (await sign_in(b, "a_mgr"))["csrf_token"]
        r = await b.post("/api/tokens", json={"name": "x"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
        assert r.json()["error"]["field"] == "X-CSRF-Token"
        r = await b.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": "nope"})
        assert r.status_code == 403
        ok = await b.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 201, ok.text
        own = {"X-CSRF-Token": csrf, "Origin": web.url}
        assert (await b.post("/api/tokens", json={}, headers=own)).status_code == 201
        listed = {"X-CSRF-Token": csrf, "Origin": ORIGIN}  # in allowed_origins
        assert (await b.post("/api/tokens", json={}, headers=listed)).status_code == 201
        foreign = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
        r = await b.post("/api/tokens", json={}, headers=foreign)
        assert r.status_code == 403 and r.json()["error"]["field"] == "Origin"
        r = await b.post("/api/session", json={"name": "a_mgr", "password": PW}, headers=foreign)
        assert r.status_code == 403  # nor may a foreign page sign a browser in
    # bearer tokens are not affected, cookie or not
    r = await web.post("a_mgr", "/api/tokens", json={"name": "y"})
    assert r.status_code == 201
    r = await web.http.post(
        "/api/tokens",
        json={},
        headers={
            **web.headers("a_mgr"),
            "Origin": "https://evil.example",
            "Cookie": "gpshub_session=whatever",
        },
    )
    assert r.status_code == 201


async def test_who_may_set_passwords(web: Web) -> None:
    body = {"password": NEW_PW}
    a_view, b_mgr, a_mgr = web.users["a_view"], web.users["b_mgr"], web.users["a_mgr"]
    put = web.call
    assert (
        await put("a_mgr", "PUT", f"/api/users/{a_view}/password", json=body)
    ).status_code == 204
    assert (await put("a_mgr", "PUT", f"/api/users/{b_mgr}/password", json=body)).status_code == 404
    assert (
        await put("a_view", "PUT", f"/api/users/{a_mgr}/password", json=body)
    ).status_code == 403
    assert (await put("admin", "PUT", f"/api/users/{b_mgr}/password", json=body)).status_code == 204
    r = await put("a_mgr", "PUT", f"/api/users/{a_mgr}/password", json=body)
    assert r.status_code == 403 and r.json()["error"]["field"] == "id"
    for bad in ("short", "x" * 1025):
        r = await put("admin", "PUT", f"/api/users/{a_mgr}/password", json={"password": bad})
        assert r.status_code == 422 and r.json()["error"]["field"] == "password"
        assert bad not in r.text
    users = (await web.get("admin", "/api/users")).json()["users"]
    has = {u["name"]: u["has_password"] for u in users}
    assert has == {"admin": False, "a_mgr": False, "a_view": True, "b_mgr": True}
    assert all("password_hash" not in u for u in users)
    stored = web.hub.store.sessions.password_hash(a_view)
    assert stored and verify_password(NEW_PW, stored) and stored.startswith("scrypt$")
    me = (await web.get("a_view", "/api/me")).json()
    assert me["user"]["has_password"] is True


async def test_a_hash_made_with_weaker_parameters_is_upgraded_at_sign_in(web: Web) -> None:
    user = web.users["a_view"]
    weak = hash_password(PW, Params(n=2**10))
    web.hub.store.sessions.set_password(user, weak)
    assert needs_rehash(weak)
    async with browser(web) as b:
        await sign_in(b, "a_view")
        stored = web.hub.store.sessions.password_hash(user)
        assert stored != weak and not needs_rehash(stored) and verify_password(PW, stored)
        again = await b.get("/api/session")  # the session stays
        assert again.status_code == 200 and again.json()["user"]["name"] == "a_view"


async def test_a_user_created_with_a_password_signs_in_at_once(web: Web) -> None:
    for bad in ("short", "x" * 1025):
        body = {"name": "newbie", "role": "viewer", "password": bad}
        r = await web.post("a_mgr", "/api/users", json=body)
        assert r.status_code == 422 and r.json()["error"]["field"] == "password"
        assert bad not in r.text
    names = {u["name"] for u in (await web.get("a_mgr", "/api/users")).json()["users"]}
    assert "newbie" not in names  # nothing half-stored
    body = {"name": "newbie", "role": "viewer", "password": NEW_PW}
    r = await web.post("a_mgr", "/api/users", json=body)
    assert r.status_code == 201 and r.json()["has_password"] is True
    assert NEW_PW not in r.text
    async with browser(web) as b:
        signed = await sign_in(b, "newbie", NEW_PW)
        assert signed["user"]["name"] == "newbie"


async def test_changing_ones_password_ends_the_other_sessions(web: Web) -> None:
    set_password(web, "a_view")
    async with browser(web) as one, browser(web) as two:
        csrf = (await sign_in(one, "a_view"))["csrf_token"]
        await sign_in(two, "a_view")
        headers = {"X-CSRF-Token": csrf}
        wrong = {"current_password": "not the right one", "password": NEW_PW}
        r = await one.post("/api/me/password", json=wrong, headers=headers)
        assert r.status_code == 403 and r.json()["error"]["field"] == "current_password"
        right = {"current_password": PW, "password": NEW_PW}
        r = await one.post("/api/me/password", json=right, headers=headers)
        assert r.status_code == 204, r.text
        assert (await one.get("/api/me")).status_code == 200  # the session that changed it
        assert (await two.get("/api/me")).status_code == 401
    async with browser(web) as three:
        r = await three.post("/api/session", json={"name": "a_view", "password": PW})
        assert r.status_code == 401
        await sign_in(three, "a_view", NEW_PW)
    # a user without a password sets one with a token, no current password needed
    r = await web.post("b_mgr", "/api/me/password", json={"password": NEW_PW})
    assert r.status_code == 204


async def test_the_administrator_setting_a_password_ends_that_users_sessions(web: Web) -> None:
    set_password(web, "a_view")
    async with browser(web) as b:
        await sign_in(b, "a_view")
        r = await web.call(
            "admin", "PUT", f"/api/users/{web.users['a_view']}/password", json={"password": NEW_PW}
        )
        assert r.status_code == 204
        assert (await b.get("/api/me")).status_code == 401


async def test_a_name_in_several_clients(web: Web) -> None:
    store = web.hub.store
    a, b = web.clients["a"], web.clients["b"]
    sam_a = store.create_user("sam", "viewer", a).id or 0
    sam_b = store.create_user("sam", "viewer", b).id or 0
    store.sessions.set_password(sam_a, hash_password(PW))
    store.sessions.set_password(sam_b, hash_password(NEW_PW))
    async with browser(web) as br:
        assert (await sign_in(br, "sam", PW))["user"]["client_id"] == a
    async with browser(web) as br:
        assert (await sign_in(br, "sam", NEW_PW))["user"]["client_id"] == b
    store.sessions.set_password(sam_b, hash_password(PW))
    async with browser(web) as br:
        r = await br.post("/api/session", json={"name": "sam", "password": PW})
        assert r.status_code == 422 and r.json()["error"]["field"] == "client"
        assert (await sign_in(br, "sam", PW, client="Client B"))["user"]["client_id"] == b
    async with browser(web) as br:
        assert (await sign_in(br, "sam", PW, client=str(a)))["user"]["client_id"] == a


async def test_live_feed_by_cookie(web: Web) -> None:
    set_password(web, "a_view")
    async with browser(web) as b:
        body = await sign_in(b, "a_view")
        value = b.cookies["gpshub_session"]
        cookie = ("Cookie", f"gpshub_session={value}")
        own = ("Origin", web.url)
        async with open_websocket_url(web.ws_url, extra_headers=[cookie, own]) as ws:
            hello, _ = await hello_and_snapshot(ws)
            assert hello["user"]["id"] == web.users["a_view"] if "user" in hello else True
            out = await b.delete("/api/session", headers={"X-CSRF-Token": body["csrf_token"]})
            assert out.status_code == 204
            code, reason = await closed_with(ws)
            assert code == 4001 and reason == "session ended"
        for headers in ([cookie, ("Origin", "https://evil.example")], [cookie]):
            with pytest.raises(ConnectionRejected) as refused:
                async with open_websocket_url(web.ws_url, extra_headers=headers):
                    pass
            assert refused.value.status_code in (401, 403)


async def test_live_feed_refuses_a_foreign_origin_with_the_cookie_even_with_star(
    tmp_path: Path,
) -> None:
    hub = make_hub(tmp_path)
    hub.settings = hub.settings.__class__(data_dir=tmp_path, allowed_origins=("*",))
    async with running_web(tmp_path, hub=hub) as web:
        set_password(web, "a_view")
        async with browser(web) as b:
            await sign_in(b, "a_view")
            cookie = ("Cookie", f"gpshub_session={b.cookies['gpshub_session']}")
            headers = [cookie, ("Origin", "https://evil.example")]
            with pytest.raises(ConnectionRejected) as refused:
                async with open_websocket_url(web.ws_url, extra_headers=headers):
                    pass
            assert refused.value.status_code == 403
            async with open_websocket_url(web.ws_url, extra_headers=[cookie]) as ws:
                await hello_and_snapshot(ws)  # no Origin: not a browser page elsewhere


async def test_the_openapi_document_has_the_session_routes(web: Web) -> None:
    doc = (await web.get(None, "/openapi.json")).json()
    paths = doc["paths"]
    assert {"post", "get", "delete"} <= set(paths["/api/session"])
    assert "put" in paths["/api/users/{id}/password"]
    assert "post" in paths["/api/me/password"]
