"""Who may call what: every route of the app, with every kind of caller.

The routes are enumerated from the application itself: a route missing from ``CASES``
fails the test, so a new route cannot ship without its access rule being checked
(Traccar shipped a CVE because one route skipped its check).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from harness import WHO, Web
from starlette.routing import Route, WebSocketRoute
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from hub.web import create_app

_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


@dataclass
class Call:
    path: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    params: dict[str, Any] | None = None


Prepare = Callable[[Web], Call]

OPEN = {w: 200 for w in WHO}


def everyone(status: int) -> dict[str, int]:
    return {w: status for w in WHO}


def scoped_read(status: int = 200) -> dict[str, int]:
    """An object of client A: A's users and the administrator; B gets 404."""
    return {"admin": status, "a_mgr": status, "a_view": status, "b_mgr": 404}


def scoped_write(status: int = 200) -> dict[str, int]:
    return {"admin": status, "a_mgr": status, "a_view": 403, "b_mgr": 404}


def create_for_a(status: int = 201) -> dict[str, int]:
    """A body naming client A: B's manager is refused the other client."""
    return {"admin": status, "a_mgr": status, "a_view": 403, "b_mgr": 403}


def admin_only(status: int = 200) -> dict[str, int]:
    return {"admin": status, "a_mgr": 403, "a_view": 403, "b_mgr": 403}


def nothing(web: Web) -> Call:
    return Call()


def conn_a(web: Web) -> Call:
    return Call(path={"id": web.connection("a")})


def device_a(web: Web) -> Call:
    return Call(path={"id": web.device("a", name=unique("truck"))})


def new_connection(web: Web) -> Call:
    creds = {"username": "ann", "password": "hunter22"}
    body = {"client_id": web.clients["a"], "kind": "fake", "label": "x", "credentials": creds}
    return Call(json=body)


def new_client(web: Web) -> Call:
    return Call(path={"id": web.hub.store.create_client(unique("client")).id})


def user_of_a(web: Web) -> Call:
    from hub.models import Role

    return Call(
        path={"id": web.hub.store.create_user(unique("u"), Role.VIEWER, web.clients["a"]).id}
    )


def viewer_token(web: Web) -> Call:
    row, _ = web.hub.store.create_token(web.users["a_view"], "to revoke")
    return Call(path={"id": row.id})


CIRCLE = {"type": "Point", "coordinates": [-90.5, 14.6]}


def poi(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": CIRCLE,
        "properties": {"name": name, "radius_m": 100},
        **extra,
    }


def geofence_a(web: Web) -> Call:
    g = web.hub.store.geofences.create(web.clients["a"], unique("poi"), CIRCLE, {"radius_m": 100})
    return Call(path={"id": g.id})


def group_a(web: Web) -> Call:
    return Call(path={"id": web.hub.store.geofences.create_group(web.clients["a"], unique("g")).id})


def rule_a(web: Web) -> Call:
    owner = web.hub.store.get_user(web.users["a_mgr"])
    rule = web.hub.store.rules.create(web.clients["a"], owner, unique("rule"), "ignitionOn")
    return Call(path={"id": rule.id})


def alerts_sink_a(web: Web) -> Call:
    """A's alerts webhook (one per client: made once, then reused), signing, disabled."""
    from hub.signing import generate_secret

    sinks = web.hub.store.sinks
    signing = {"signing": [{"secret": generate_secret(), "until": None}]}
    row = sinks.alerts_sink(web.clients["a"])
    if row is None:
        row = sinks.create(
            web.clients["a"],
            name=unique("alerts"),
            kind="webhook",
            format="gpshub-alert",
            purpose="alerts",
            settings={"url": "https://receiver.example/alerts"},
            secrets=signing,
            enabled=False,
        )
    elif not sinks.secrets_of(row).get("signing"):
        row = sinks.update(row.id or 0, secrets=signing)
    return Call(path={"id": row.id})


def new_alerts_sink(web: Web) -> Call:
    """A body creating A's alerts webhook (the one A has is removed first)."""
    row = web.hub.store.sinks.alerts_sink(web.clients["a"])
    if row is not None:
        web.hub.store.sinks.delete(row.id or 0)
    body = {
        "client_id": web.clients["a"],
        "name": unique("alerts"),
        "kind": "webhook",
        "format": "gpshub-alert",
        "settings": {"url": "https://receiver.example/alerts"},
        "enabled": False,
    }
    return Call(json=body)


def with_path(prepare: Prepare, **json: Any) -> Prepare:
    return lambda w: Call(path=prepare(w).path, json=json or None)


REPLAY = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}


CASES: dict[tuple[str, str], tuple[Prepare, dict[str, int]]] = {
    # public by design
    ("GET", "/healthz"): (nothing, OPEN),
    ("GET", "/readyz"): (nothing, OPEN),
    ("GET", "/openapi.json"): (nothing, OPEN),
    ("GET", "/metrics"): (nothing, admin_only()),  # and a metrics token: test_metrics.py
    ("GET", "/api/cluster"): (nothing, admin_only()),
    # source kinds
    ("GET", "/api/source-kinds"): (nothing, OPEN),
    ("GET", "/api/source-kinds/{kind}"): (lambda w: Call(path={"kind": "fake"}), OPEN),
    # connections
    ("GET", "/api/connections"): (nothing, OPEN),
    ("POST", "/api/connections"): (new_connection, create_for_a()),
    ("POST", "/api/connections/test"): (
        lambda w: Call(json={"kind": "fake", "credentials": {"username": "a", "password": "abc"}}),
        {"admin": 200, "a_mgr": 200, "a_view": 403, "b_mgr": 200},
    ),
    ("GET", "/api/connections/{id:int}"): (conn_a, scoped_read()),
    ("PATCH", "/api/connections/{id:int}"): (
        lambda w: Call(path={"id": w.connection("a")}, json={"label": "renamed"}),
        scoped_write(),
    ),
    ("DELETE", "/api/connections/{id:int}"): (conn_a, scoped_write(204)),
    ("POST", "/api/connections/{id:int}/enable"): (conn_a, scoped_write()),
    ("POST", "/api/connections/{id:int}/disable"): (conn_a, scoped_write()),
    ("POST", "/api/connections/{id:int}/test"): (conn_a, scoped_write()),
    ("GET", "/api/connections/{id:int}/remote-devices"): (conn_a, scoped_read()),
    ("POST", "/api/connections/{id:int}/import"): (conn_a, scoped_write()),
    ("GET", "/api/connections/{id:int}/status"): (conn_a, scoped_read()),
    ("GET", "/api/status"): (nothing, OPEN),
    # devices and positions
    ("GET", "/api/devices"): (nothing, OPEN),
    ("POST", "/api/devices"): (
        lambda w: Call(json={"client_id": w.clients["a"], "name": unique("van")}),
        create_for_a(),
    ),
    ("GET", "/api/devices/latest"): (nothing, OPEN),
    ("GET", "/api/devices/{id:int}"): (device_a, scoped_read()),
    ("PATCH", "/api/devices/{id:int}"): (
        lambda w: Call(path={"id": w.device("a", name=unique("car"))}, json={"driver": "Bo"}),
        scoped_write(),
    ),
    ("DELETE", "/api/devices/{id:int}"): (device_a, scoped_write(204)),
    ("GET", "/api/devices/{id:int}/latest"): (device_a, scoped_read()),
    ("PATCH", "/api/devices/{id:int}/counters"): (
        lambda w: Call(path={"id": w.device("a", name=unique("car"))}, json={"hours": 5}),
        scoped_write(),
    ),
    ("GET", "/api/devices/{id:int}/positions"): (device_a, scoped_read()),
    ("GET", "/api/positions"): (lambda w: Call(params={"since": "2026-01-01T00:00:00Z"}), OPEN),
    ("GET", "/api/devices/summary"): (nothing, OPEN),
    ("GET", "/api/devices/{id:int}/stops"): (device_a, scoped_read()),
    ("GET", "/api/dashboard-settings"): (nothing, OPEN),
    # tenancy
    ("GET", "/api/me"): (nothing, OPEN),
    ("GET", "/api/clients"): (nothing, admin_only()),
    ("POST", "/api/clients"): (lambda w: Call(json={"name": unique("client")}), admin_only(201)),
    ("DELETE", "/api/clients/{id:int}"): (new_client, admin_only(204)),
    ("PATCH", "/api/clients/{id:int}"): (
        lambda w: Call(path={"id": w.clients["a"]}, json={"timezone": "America/Guatemala"}),
        admin_only(),
    ),
    ("GET", "/api/users"): (nothing, {"admin": 200, "a_mgr": 200, "a_view": 403, "b_mgr": 200}),
    ("POST", "/api/users"): (
        lambda w: Call(json={"name": unique("u"), "role": "viewer", "client_id": w.clients["a"]}),
        create_for_a(),
    ),
    ("PATCH", "/api/users/{id:int}"): (
        lambda w: Call(path=user_of_a(w).path, json={"role": "manager"}),
        scoped_write(),
    ),
    ("DELETE", "/api/users/{id:int}"): (user_of_a, scoped_write(204)),
    ("PUT", "/api/users/{id:int}/password"): (
        lambda w: Call(path=user_of_a(w).path, json={"password": "a good long one"}),
        scoped_write(204),
    ),
    ("POST", "/api/me/password"): (
        lambda w: Call(json={"password": "my own new one"}),
        everyone(204),
    ),
    # sessions: a token is no session; signing out without one only clears the cookie
    ("POST", "/api/session"): (
        lambda w: Call(json={"name": "nobody", "password": "not a password"}),
        everyone(401),
    ),
    ("GET", "/api/session"): (nothing, everyone(401)),
    ("DELETE", "/api/session"): (nothing, everyone(204)),
    ("GET", "/api/tokens"): (nothing, OPEN),
    ("POST", "/api/tokens"): (lambda w: Call(json={"name": "mine"}), everyone(201)),
    ("DELETE", "/api/tokens/{id:int}"): (
        viewer_token,
        {"admin": 204, "a_mgr": 204, "a_view": 204, "b_mgr": 404},
    ),
    # geofences and their groups
    ("GET", "/api/geofences"): (nothing, OPEN),
    ("POST", "/api/geofences"): (
        lambda w: Call(json=poi(unique("poi"), client_id=w.clients["a"])),
        create_for_a(),
    ),
    ("POST", "/api/geofences/import"): (
        lambda w: Call(
            json={
                "type": "FeatureCollection",
                "features": [poi(unique("poi"))],
                "client_id": w.clients["a"],
            }
        ),
        create_for_a(),
    ),
    ("GET", "/api/geofences/{id:int}"): (geofence_a, scoped_read()),
    ("PATCH", "/api/geofences/{id:int}"): (
        lambda w: Call(path=geofence_a(w).path, json={"properties": {"contact": "Bo"}}),
        scoped_write(),
    ),
    ("DELETE", "/api/geofences/{id:int}"): (geofence_a, scoped_write(204)),
    ("GET", "/api/geofence-groups"): (nothing, OPEN),
    ("POST", "/api/geofence-groups"): (
        lambda w: Call(json={"name": unique("g"), "client_id": w.clients["a"]}),
        create_for_a(),
    ),
    ("DELETE", "/api/geofence-groups/{id:int}"): (group_a, scoped_write(204)),
    # rules and alerts
    ("GET", "/api/rule-types"): (nothing, OPEN),
    ("GET", "/api/rules"): (nothing, OPEN),
    ("POST", "/api/rules"): (
        lambda w: Call(
            json={"name": unique("r"), "type": "ignitionOn", "client_id": w.clients["a"]}
        ),
        create_for_a(),
    ),
    ("GET", "/api/rules/{id:int}"): (rule_a, scoped_read()),
    ("PATCH", "/api/rules/{id:int}"): (
        lambda w: Call(path=rule_a(w).path, json={"enabled": False}),
        scoped_write(),
    ),
    ("DELETE", "/api/rules/{id:int}"): (rule_a, scoped_write(204)),
    ("GET", "/api/alerts"): (nothing, OPEN),
    # sinks (an alerts webhook: A's manager may change it; location relays are the
    # administrator's, see test_sinks)
    ("GET", "/api/sink-kinds"): (nothing, OPEN),
    ("GET", "/api/sinks"): (nothing, OPEN),
    ("POST", "/api/sinks"): (new_alerts_sink, create_for_a()),
    ("GET", "/api/sinks/{id:int}"): (alerts_sink_a, scoped_read()),
    ("PATCH", "/api/sinks/{id:int}"): (with_path(alerts_sink_a, name="renamed"), scoped_write()),
    ("DELETE", "/api/sinks/{id:int}"): (alerts_sink_a, scoped_write(204)),
    ("POST", "/api/sinks/{id:int}/rotate-secret"): (alerts_sink_a, scoped_write()),
    ("GET", "/api/sinks/{id:int}/dead-letters"): (alerts_sink_a, scoped_read()),
    ("POST", "/api/sinks/{id:int}/dead-letters/resend"): (alerts_sink_a, scoped_write()),
    ("POST", "/api/sinks/{id:int}/dead-letters/discard"): (
        with_path(alerts_sink_a, ids=None),
        scoped_write(),
    ),
    ("POST", "/api/sinks/{id:int}/replay"): (with_path(alerts_sink_a, **REPLAY), scoped_write()),
    # the live feed, asked without a WebSocket handshake
    ("GET", "/api/live"): (nothing, everyone(426)),
}

WEBSOCKETS = {"/api/live"}


def app_routes(web: Web) -> tuple[set[tuple[str, str]], set[str]]:
    http: set[tuple[str, str]] = set()
    sockets: set[str] = set()
    for route in create_app(web.hub).routes:
        if isinstance(route, Route):
            http |= {(m, route.path) for m in (route.methods or ()) if m != "HEAD"}
        elif isinstance(route, WebSocketRoute):
            sockets.add(route.path)
        else:
            pytest.fail(f"route {route!r} is of a kind this test does not know how to check")
    return http, sockets


def fill(path: str, values: dict[str, Any]) -> str:
    return re.sub(r"{(\w+)(?::\w+)?}", lambda m: str(values[m.group(1)]), path)


async def test_every_route_has_an_expectation(web: Web) -> None:
    http, sockets = app_routes(web)
    missing = sorted(http - set(CASES))
    assert not missing, f"routes without an access expectation in CASES: {missing}"
    stale = sorted(set(CASES) - http)
    assert not stale, f"CASES names routes the app does not have: {stale}"
    assert sockets == WEBSOCKETS


async def test_who_may_call_what(web: Web) -> None:
    http, _ = app_routes(web)
    failures = []
    for method, path in sorted(http):
        prepare, expected = CASES[(method, path)]
        public = all(status < 300 for status in expected.values()) and path in (
            "/healthz",
            "/readyz",
            "/openapi.json",
            "/api/session",
        )
        callers: dict[str | None, int] = dict(expected)
        callers[None] = expected["admin"] if public else 401
        callers["malformed"] = expected["admin"] if public else 401
        for who, status in callers.items():
            call = prepare(web)
            r = await web.call(
                who, method, fill(path, call.path), json=call.json, params=call.params
            )
            if r.status_code != status:
                failures.append(f"{method} {path} as {who}: {r.status_code} != {status}: {r.text}")
            elif status >= 400:
                error = r.json()["error"]
                unauthorized = (
                    "unauthorized",
                    "invalid_token",
                    "invalid_credentials",
                    "no_session",
                )
                if error["code"] not in {401: unauthorized}.get(status, (error["code"],)):
                    failures.append(f"{method} {path} as {who}: code {error['code']}")
    assert not failures, "\n".join(failures)


async def test_a_foreign_object_answers_like_a_missing_one(web: Web) -> None:
    conn = web.connection("a")
    foreign = await web.get("b_mgr", f"/api/connections/{conn}")
    missing = await web.get("b_mgr", "/api/connections/999999")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"


async def test_the_live_feed_requires_a_token(web: Web) -> None:
    for who in WHO:
        async with open_websocket_url(
            web.ws_url, extra_headers=list(web.headers(who).items())
        ) as ws:
            hello = json.loads(await ws.get_message())[0]  # a frame: an array of messages
            assert hello["type"] == "hello", who
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(
            web.ws_url, extra_headers=list(web.headers("malformed").items())
        ):
            pass
    assert rejected.value.status_code == 401
    async with open_websocket_url(web.ws_url) as ws:  # no token: the first message must be auth
        await ws.send_message(json.dumps({"type": "subscribe", "device_ids": None}))
        (error,) = json.loads(await ws.get_message())
        assert error["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            with trio.fail_after(60):  # a hang guard only
                await ws.get_message()
        assert closed.value.reason.code == 4001
