"""``FakeTraccar``: an in-memory Traccar server for tests and benchmarks.

It answers the REST calls gpshub (and most Traccar clients) make, the way Traccar 6
does (``traccar/traccar`` ``openapi.yaml`` and ``api/resource/*.java``):

* auth by HTTP Basic on each request, by Bearer API token, or by the ``JSESSIONID``
  cookie of ``POST /api/session`` (a form); an unauthenticated call gets 401 with an
  empty body, and ``WWW-Authenticate`` only when ``Accept`` includes ``text/html``;
  ``GET /api/server`` and ``GET /api/session`` need no auth (a wrong Basic header is
  ignored there, and ``GET /api/session`` is 404 without a cookie session even under Basic);
* ``GET /api/devices`` with ``all``, ``id`` and ``uniqueId`` filters;
* ``GET /api/positions`` with Traccar's branches: ``id=`` (those positions), else
  ``deviceId`` + ``from`` + ``to`` (history of the *first* ``deviceId`` only), else
  ``deviceId`` alone (its latest position), else the latest position of every device;
* ``GET /api/reports/route?deviceId=a&deviceId=b&from=&to=``: each device's positions by
  ``fixTime`` (both ends inclusive), one device after the other;
* errors as Traccar sends them: 400 with a Java stack trace as ``text/plain``
  (``java.lang.SecurityException: Operation restricted`` for a user with
  ``disableReports``, ``Device access denied``, ``Time period exceeds the limit`` when
  ``period_limit_s`` is set), 404 for a query parameter that does not convert (a date
  without an offset, a non-numeric id), 414 for a URL longer than Jetty's 8 KiB;
* ISO-8601 times with an offset and milliseconds, speeds in knots;
* ``/api/socket`` (WebSocket, cookie session only): the latest positions on connect, then
  one ``{"positions": [p]}`` frame per new fix, ``{"devices": [d]}`` per device change,
  and ``{}`` as keep-alive every ``keepalive_s``.

Use it like this::

    fake = FakeTraccar(now=lambda: hub.clock.now().timestamp())
    van = fake.add_unit("Van 12", imei="860123456789012", plate="KHI-2045")
    fake.add_fix(van, t, 37.98, 23.72, speed_kmh=40.0, ignition=True)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(fake.serve)      # or hub.testing.serve_app(fake.app)
        credentials = fake.credentials(url)         # for a gpshub "traccar" connection
        ...
        assert fake.requests["/api/reports/route"] == 1

It is a ``hub.fake_upstream.FakeUpstream``: each HTTP request is kept in ``fake.calls``
(a ``FakeCall``: the base's record plus the user it authenticated as and when it arrived
and was answered on trio's clock), so a test can tell accounts apart and see whether two
requests overlapped; the base's fault switches apply (``fail``, ``rate_limit``,
``malformed``, ``hang``, ``delay``), plus ``html(times=n)`` (a 200 HTML page instead of
JSON, as a captive portal or a misrouted proxy sends) and ``platform_error`` (Traccar's
400 stack trace, ``Operation restricted`` unless ``message=`` says otherwise).  Credentials:
``change_password``; sessions: ``expire_sessions`` / ``session_ttl_s``; restrictions:
``user.disable_reports``, ``server_disable_reports``, ``period_limit_s``,
``max_positions``, ``all_refusal`` (``/api/devices?all=true`` refused to a user who is not
an administrator, as Traccar 4 does); access: ``revoke(unit)``.  A unit out of coverage:
``hold(unit)`` keeps its fixes in its black box, ``release(unit)`` uploads them all at
once, received then.

The running hub never imports this module.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import itertools
import json
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from hub import fake_upstream
from hub.fake_upstream import FakeUpstream, Fault, FixFields

KNOT_KMH = 1.852
SESSION_COOKIE = "JSESSIONID"
DEFAULT_EMAIL = "admin@example.com"
DEFAULT_PASSWORD = "admin"  # noqa: S105 - a fake server's default account
MAX_URL_BYTES = 8192
ONLINE_S = 600.0


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as Traccar writes times: ``2024-05-14T09:12:41.000+00:00``."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def parse_query_date(text: str) -> int:
    """A query-string date (ISO-8601 with an offset) as epoch ms; ``ValueError`` if not."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no offset")
    return round(value.timestamp() * 1000)


def stack_trace(exception: str, message: str | None, *frames: str) -> str:
    """A Java ``printStackTrace`` text, as Traccar's ``ResourceErrorHandler`` answers."""
    head = exception if message is None else f"{exception}: {message}"
    lines = [head, *(f"\tat {f}" for f in frames)]
    lines.append("\tat org.glassfish.jersey.server.model.internal.ResourceMethodInvocationHandler")
    return "\n".join(lines) + "\n"


@dataclass
class FakeUser:
    """A Traccar user.  ``devices`` holds the ids of the devices linked to it."""

    id: int
    name: str
    email: str
    password: str
    login: str | None = None
    administrator: bool = False
    disable_reports: bool = False
    disabled: bool = False
    token: str | None = None
    devices: set[int] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "attributes": {},
            "name": self.name,
            "login": self.login,
            "email": self.email,
            "phone": None,
            "readonly": False,
            "administrator": self.administrator,
            "map": None,
            "latitude": 0.0,
            "longitude": 0.0,
            "zoom": 0,
            "coordinateFormat": None,
            "disabled": self.disabled,
            "expirationTime": None,
            "deviceLimit": -1,
            "userLimit": 0,
            "deviceReadonly": False,
            "limitCommands": False,
            "disableReports": self.disable_reports,
            "fixedEmail": False,
            "poiLayer": None,
            "totpKey": None,
            "temporary": False,
            "password": None,
        }


@dataclass
class FakeDevice:
    """A Traccar device with its positions, indexed by fix time (epoch ms)."""

    id: int
    name: str
    unique_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    category: str | None = None
    phone: str | None = None
    contact: str | None = None
    group_id: int = 0
    disabled: bool = False
    last_update: float | None = None
    fix_ms: list[int] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    encoded: list[bytes] = field(default_factory=list)
    latest: dict[str, Any] | None = None
    latest_ms: int | None = None

    def status(self, now: float) -> str:
        if self.last_update is None:
            return "unknown"
        return "online" if now - self.last_update < ONLINE_S else "offline"

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "attributes": dict(self.attributes),
            "groupId": self.group_id,
            "calendarId": 0,
            "name": self.name,
            "uniqueId": self.unique_id,
            "status": self.status(now),
            "lastUpdate": None
            if self.last_update is None
            else iso_ms(round(self.last_update * 1000)),
            "positionId": self.latest["id"] if self.latest else 0,
            "phone": self.phone,
            "model": self.model,
            "contact": self.contact,
            "category": self.category,
            "disabled": self.disabled,
            "expirationTime": None,
        }

    def _span(self, from_ms: int, to_ms: int, limit: int) -> slice:
        lo = bisect.bisect_left(self.fix_ms, from_ms)
        hi = bisect.bisect_right(self.fix_ms, to_ms)
        return slice(lo, min(hi, lo + max(limit, 0)))

    def between(self, from_ms: int, to_ms: int, limit: int) -> list[dict[str, Any]]:
        """Positions with ``from_ms <= fixTime <= to_ms``, oldest first, at most ``limit``."""
        return self.positions[self._span(from_ms, to_ms, limit)]

    def between_encoded(self, from_ms: int, to_ms: int, limit: int) -> list[bytes]:
        """The same positions as JSON, encoded once when they were added (for speed)."""
        return self.encoded[self._span(from_ms, to_ms, limit)]


class FakeCall(fake_upstream.FakeCall):
    """A request as ``FakeTraccar`` logs it: the base's record (its ``at`` on the fake's
    clock, ``started`` on trio's) plus Traccar's side, with ``ended`` on trio's clock too.  The base
    logs a ``hub.fake_upstream.FakeCall``; ``FakeTraccar.request_name`` makes it one of
    these.  Built by hand (``hub.cluster_testing``'s checks), it takes its fields in the
    order it always had."""

    auth: str | None = None
    """``"basic"``, ``"bearer"``, ``"cookie"`` or ``None`` (as far as it was checked)."""
    user: str | None = None
    """The email of the user it authenticated as (``None``: none, or not checked)."""
    _live = False  # logged by a running fake: ``ended`` is read on trio's clock

    def __init__(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]] = (),
        auth: str | None = None,
        status: int = 200,
        user: str | None = None,
        started: float = 0.0,
        ended: float = 0.0,
    ) -> None:
        params: dict[str, list[str]] = {}
        for key, value in query:
            params.setdefault(key, []).append(value)
        super().__init__(method, path, params, {}, b"", started, ended, path, status)
        self.auth, self.user, self.started = auth, user, started

    @property  # type: ignore[override]
    def ended(self) -> float | None:
        """``trio.current_time()`` when its answer was complete (or given up on)."""
        value = self.__dict__.get("_ended")
        return None if value is None else float(value)

    @ended.setter
    def ended(self, value: float | None) -> None:  # the base sets it on the fake's clock
        if self._live and value is not None:
            value = trio.current_time()
        self.__dict__["_ended"] = value


@dataclass
class Served:
    """A ``FakeTraccar`` and the base URL it is served at."""

    fake: FakeTraccar
    url: str


class _Fault(Exception):
    """An answer decided before the handler runs."""

    def __init__(self, response: Response) -> None:
        self.response = response


class FakeTraccar(FakeUpstream):
    """An in-memory Traccar server (see the module docstring)."""

    name = "traccar"

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.time,
        email: str = DEFAULT_EMAIL,
        password: str = DEFAULT_PASSWORD,
        administrator: bool = True,
        version: str = "6.6",
        session_ttl_s: float = 1800.0,
        period_limit_s: float | None = None,
        max_positions: int = 50_000,
        keepalive_s: float = 55.0,
    ) -> None:
        super().__init__(now=now)
        self.version = version
        self.session_ttl_s = session_ttl_s
        self.period_limit_s = period_limit_s
        """Traccar's ``report.periodLimit``: a longer report or history period is a 400."""
        self.max_positions = max_positions
        """Traccar's ``report.maxPositions``: history is cut to the oldest this many per device."""
        self.server_disable_reports = False
        self.all_refusal: int | None = None
        """What ``/api/devices?all=true`` answers a user who is not an administrator:
        ``None`` their own devices (Traccar 5 and later), 400 ``Manager access required``
        (Traccar 4, to a user who manages no one), another status as a proxy would."""
        self.keepalive_s = keepalive_s
        self.max_url_bytes = MAX_URL_BYTES
        self.users: dict[int, FakeUser] = {}
        self.devices: dict[int, FakeDevice] = {}
        self.sessions: dict[str, tuple[int, float]] = {}
        self.calls: list[FakeCall] = []  # type: ignore[assignment] # see request_name
        self._user_ids = itertools.count(1)
        self._device_ids = itertools.count(1)
        self._position_ids = itertools.count(1)
        self._listeners: list[trio.MemorySendChannel[dict[str, Any]]] = []
        self._held: dict[int, list[tuple[dict[str, Any], int]]] = {}
        self.user = self.add_user(email, password, administrator=administrator, name="admin")

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/server", self._server, methods=["GET"]),
            Route("/api/session", self._session, methods=["GET", "POST", "DELETE"]),
            Route("/api/devices", self._devices, methods=["GET"]),
            Route("/api/positions", self._positions, methods=["GET"]),
            Route("/api/reports/route", self._route, methods=["GET"]),
            WebSocketRoute("/api/socket", self._socket),
        ]

    # -- accounts and devices ----------------------------------------------------------
    def add_user(
        self,
        email: str,
        password: str,
        *,
        name: str | None = None,
        login: str | None = None,
        administrator: bool = False,
        disable_reports: bool = False,
        token: str | None = None,
    ) -> FakeUser:
        user = FakeUser(
            id=next(self._user_ids),
            name=name or email.split("@")[0],
            email=email,
            password=password,
            login=login,
            administrator=administrator,
            disable_reports=disable_reports,
            token=token,
        )
        self.users[user.id] = user
        return user

    def credentials(self, url: str, user: FakeUser | None = None) -> dict[str, Any]:
        """Good credentials of a gpshub ``traccar`` connection to this fake at ``url``."""
        user = user or self.user
        return {"server_url": url, "username": user.email, "password": user.password}

    def options(self, url: str) -> dict[str, Any]:
        """The connection options this fake needs: none (``server_url`` points at it)."""
        return {}

    def change_password(self, password: str, user: FakeUser | None = None) -> None:
        """Change a user's password: the old credentials get 401 from now on."""
        (user or self.user).password = password

    def add_unit(
        self,
        name: str,
        *,
        imei: str | None = None,
        plate: str | None = None,
        model: str | None = None,
        category: str | None = None,
        attributes: dict[str, Any] | None = None,
        users: Iterable[FakeUser] | None = None,
    ) -> str:
        """Add a device (linked to the default user, or to ``users``); its id as text.

        ``plate`` goes into the device's ``attributes`` as ``licensePlate`` (Traccar has no
        plate field)."""
        device_id = next(self._device_ids)
        attrs = dict(attributes or {})
        if plate is not None:
            attrs["licensePlate"] = plate
        device = FakeDevice(
            id=device_id,
            name=name,
            unique_id=imei or f"{860000000000000 + device_id}",
            attributes=attrs,
            model=model,
            category=category,
        )
        self.devices[device_id] = device
        for user in users if users is not None else [self.user]:
            user.devices.add(device_id)
        self._broadcast({"devices": [device.as_json(self.now())]})
        return str(device_id)

    def rename_unit(self, unit: str, name: str) -> None:
        device = self._device(unit)
        device.name = name
        self._broadcast({"devices": [device.as_json(self.now())]})

    def set_attribute(self, unit: str, key: str, value: Any) -> None:
        """Set (or with ``None`` remove) one of a device's ``attributes``."""
        device = self._device(unit)
        if value is None:
            device.attributes.pop(key, None)
        else:
            device.attributes[key] = value

    def revoke(self, unit: str, user: FakeUser | None = None) -> None:
        """Unlink a device from a user: it disappears from the user's lists, and reports
        naming it answer 400 ``Device access denied``."""
        (user or self.user).devices.discard(int(unit))

    def _device(self, unit: str | int) -> FakeDevice:
        return self.devices[int(unit)]

    def store_fix(
        self,
        unit: str,
        fix: FixFields,
        *,
        accuracy: float = 0.0,
        protocol: str = "teltonika",
    ) -> dict[str, Any]:
        """Store a position with fix time ``t`` (epoch seconds) received at ``received``
        (default: now).  Returns it as the API serves it (speed in knots)."""
        received = self.now() if fix.received is None else fix.received
        device = self._device(unit)
        fix_ms = round(fix.t * 1000)
        attributes: dict[str, Any] = {"sat": fix.satellites}
        if fix.ignition is not None:
            attributes["ignition"] = fix.ignition
        attributes.update(fix.params or {})
        fix_text = iso_ms(fix_ms)
        position: dict[str, Any] = {
            "id": 0,  # given when stored
            "attributes": attributes,
            "deviceId": device.id,
            "protocol": protocol,
            "serverTime": iso_ms(round(received * 1000)),
            "deviceTime": fix_text,
            "fixTime": fix_text,
            "valid": fix.valid,
            "latitude": fix.lat,
            "longitude": fix.lon,
            "altitude": fix.altitude,
            "speed": fix.speed_kmh / KNOT_KMH,
            "course": fix.course,
            "address": None,
            "accuracy": accuracy,
            "network": None,
            "geofenceIds": None,
        }
        if device.id in self._held:
            self._held[device.id].append((position, fix_ms))
            return position
        return self._store(device, position, fix_ms, received)

    def _store(
        self, device: FakeDevice, position: dict[str, Any], fix_ms: int, received: float
    ) -> dict[str, Any]:
        """Store a position as Traccar does: a new id, the device's ``lastUpdate`` (the
        receive time) and, if it is no older than the latest, its ``positionId``."""
        position["id"] = next(self._position_ids)
        encoded = json.dumps(position, separators=(",", ":")).encode()
        if not device.fix_ms or fix_ms >= device.fix_ms[-1]:
            device.fix_ms.append(fix_ms)
            device.positions.append(position)
            device.encoded.append(encoded)
        else:
            index = bisect.bisect_right(device.fix_ms, fix_ms)
            device.fix_ms.insert(index, fix_ms)
            device.positions.insert(index, position)
            device.encoded.insert(index, encoded)
        device.last_update = received
        if device.latest_ms is None or fix_ms >= device.latest_ms:
            device.latest, device.latest_ms = position, fix_ms
            self._broadcast({"positions": [position]})
        return position

    def hold(self, unit: str) -> None:
        """The unit is out of coverage: its fixes from now on stay in its black box (not
        stored, ``lastUpdate`` and ``positionId`` unchanged) until ``release``."""
        self._held.setdefault(int(unit), [])

    def release(self, unit: str) -> list[dict[str, Any]]:
        """The unit is back: it uploads its black box, every held fix at once, received
        (``serverTime``) now.  Returns them as stored."""
        device = self._device(unit)
        received = self.now()
        stored = []
        for position, fix_ms in self._held.pop(device.id, []):
            position["serverTime"] = iso_ms(round(received * 1000))
            stored.append(self._store(device, position, fix_ms, received))
        return stored

    # -- fault switches (the base's, and these) ----------------------------------------
    def html(self, *, times: int = 1, path: str | None = None, after: int = 0) -> None:
        """The next ``times`` matching requests get a 200 HTML page instead of JSON."""
        self.faults.append(Fault("html", times, path, after))

    def fault_response(self, call: fake_upstream.FakeCall, fault: Fault) -> Response:
        if fault.kind == "html":
            return Response(
                b"<!DOCTYPE html><html><head><title>Sign in</title></head><body></body></html>",
                media_type="text/html",
            )
        return super().fault_response(call, fault)

    def platform_response(self, call: fake_upstream.FakeCall, **details: Any) -> Response:
        """Traccar's 400: a ``SecurityException`` stack trace (``message=`` its text)."""
        return self._bad_request(
            "java.lang.SecurityException", details.get("message", "Operation restricted")
        )

    def expire_sessions(self) -> None:
        """Forget every cookie session (as after their idle timeout or a restart)."""
        self.sessions.clear()

    def request_name(self, call: fake_upstream.FakeCall) -> str:
        """The path, as the base counts; also makes ``call`` this fake's ``FakeCall``."""
        call.__class__ = FakeCall
        assert isinstance(call, FakeCall)
        call._live = True
        return call.path

    def serve(
        self, *, host: str = "127.0.0.1", port: int = 0, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> Any:
        """Serve the app on loopback until cancelled: ``url = await nursery.start(fake.serve)``."""
        from hub.testing import serve_app

        return serve_app(self.app, host=host, port=port, task_status=task_status)

    # -- plumbing ----------------------------------------------------------------------
    async def _enter(self, request: Request) -> None:
        """Refuse what Jetty refuses before Traccar sees it (the base counted the request
        and played the delay and the faults)."""
        if len(str(request.url)) > self.max_url_bytes:
            raise _Fault(Response(b"", status_code=414))

    @staticmethod
    def _error_page(status: int) -> Response:
        """An HTML error page, as Jetty or a proxy in front of Traccar sends."""
        return Response(
            f"<html><head><title>Error {status}</title></head>"
            f"<body><h2>HTTP ERROR {status}</h2></body></html>".encode(),
            status_code=status,
            media_type="text/html",
        )

    def _record(
        self,
        request: Request,
        auth: str | None,
        response: Response,
        user: FakeUser | None = None,
    ) -> Response:
        call = fake_upstream.current_call()
        if isinstance(call, FakeCall) and call.path == request.url.path:
            call.auth, call.user = auth, user.email if user is not None else None
        return response

    def _json(self, payload: Any) -> Response:
        return self._json_bytes(json.dumps(payload, separators=(",", ":")).encode())

    def _json_bytes(self, body: bytes) -> Response:
        return Response(body, media_type="application/json")

    def _user_for(self, request: Request) -> tuple[FakeUser | None, str | None]:
        """Who the request authenticates as, as ``SecurityRequestFilter`` decides."""
        header = request.headers.get("authorization")
        if header is not None:
            if header.startswith("Bearer "):
                token = header[7:]
                user = next((u for u in self.users.values() if u.token and u.token == token), None)
                return self._active(user), "bearer"
            return self._active(self._basic(header)), "basic"
        sid = request.cookies.get(SESSION_COOKIE)
        if sid is not None:
            return self._active(self._session_user(sid)), "cookie"
        return None, None

    def _basic(self, header: str) -> FakeUser | None:
        if header[:6].lower() != "basic ":
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, _, password = decoded.partition(":")
        return self._login(name, password)

    def _login(self, name: str | None, password: str | None) -> FakeUser | None:
        if not name or password is None:
            return None
        name = name.strip()
        for user in self.users.values():
            if (
                user.email.lower() == name.lower() or user.login == name
            ) and secrets.compare_digest(user.password, password):
                return user
        return None

    @staticmethod
    def _active(user: FakeUser | None) -> FakeUser | None:
        return None if user is None or user.disabled else user

    def _session_user(self, sid: str) -> FakeUser | None:
        entry = self.sessions.get(sid)
        if entry is None:
            return None
        user_id, last = entry
        now = self.now()
        if now - last > self.session_ttl_s:
            del self.sessions[sid]
            return None
        self.sessions[sid] = (user_id, now)
        return self.users.get(user_id)

    def _new_session(self, user: FakeUser, response: Response) -> None:
        sid = secrets.token_hex(16)
        self.sessions[sid] = (user.id, self.now())
        response.set_cookie(SESSION_COOKIE, sid, path="/", httponly=True)

    @staticmethod
    def _unauthorized(request: Request) -> Response:
        headers = {}
        if "text/html" in request.headers.get("accept", ""):
            headers["WWW-Authenticate"] = 'Basic realm="api"'
        return Response(b"", status_code=401, headers=headers)

    @staticmethod
    def _bad_request(exception: str, message: str | None, *frames: str) -> Response:
        return Response(
            stack_trace(exception, message, *frames).encode(),
            status_code=400,
            media_type="text/plain",
        )

    @staticmethod
    def _not_found() -> Response:
        return Response(
            stack_trace("jakarta.ws.rs.NotFoundException", "HTTP 404 Not Found").encode(),
            status_code=404,
            media_type="text/plain",
        )

    def _visible(self, user: FakeUser) -> list[FakeDevice]:
        return [self.devices[i] for i in sorted(user.devices) if i in self.devices]

    def _may_see(self, user: FakeUser, device_id: int) -> bool:
        return device_id in self.devices and (user.administrator or device_id in user.devices)

    def _restricted(self, user: FakeUser) -> bool:
        """``PermissionsService.checkRestriction(disableReports)``: admins are exempt."""
        return not user.administrator and (self.server_disable_reports or user.disable_reports)

    async def _handle(
        self,
        request: Request,
        handler: Callable[[Request, FakeUser | None], Response],
        *,
        public: bool = False,
    ) -> Response:
        auth: str | None = None
        try:
            await self._enter(request)
            user, auth = self._user_for(request)
            if user is None and not public:
                return self._record(request, auth, self._unauthorized(request))
            return self._record(request, auth, handler(request, user), user)
        except _Fault as fault:
            return self._record(request, auth, fault.response)

    # -- endpoints ---------------------------------------------------------------------
    async def _server(self, request: Request) -> Response:
        def handler(request: Request, user: FakeUser | None) -> Response:
            return self._json(
                {
                    "id": 1,
                    "attributes": {},
                    "registration": False,
                    "readonly": False,
                    "deviceReadonly": False,
                    "map": None,
                    "bingKey": None,
                    "mapUrl": None,
                    "poiLayer": None,
                    "latitude": 0.0,
                    "longitude": 0.0,
                    "zoom": 0,
                    "version": self.version,
                    "forceSettings": False,
                    "coordinateFormat": None,
                    "limitCommands": False,
                    "disableReports": self.server_disable_reports,
                    "fixedEmail": False,
                    "openIdEnabled": False,
                    "openIdForce": False,
                    "emailEnabled": False,
                    "geocoderEnabled": False,
                    "textEnabled": False,
                    "storageSpace": None,
                    "newServer": False,
                }
            )

        return await self._handle(request, handler, public=True)

    async def _session(self, request: Request) -> Response:
        auth: str | None = None
        try:
            await self._enter(request)
            if request.method == "POST":
                form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
                email, password = form.get("email", [None])[0], form.get("password", [None])[0]
                user = self._active(self._login(email, password))
                if user is None:
                    return self._record(request, None, Response(b"", status_code=401))
                response = self._json(user.as_json())
                self._new_session(user, response)
                return self._record(request, "cookie", response, user)
            if request.method == "DELETE":
                user, auth = self._user_for(request)
                if user is None:
                    return self._record(request, auth, self._unauthorized(request))
                sid = request.cookies.get(SESSION_COOKIE)
                if sid is not None:
                    self.sessions.pop(sid, None)
                return self._record(request, auth, Response(b"", status_code=204), user)
            # GET: @PermitAll, from the token or the cookie session only (never Basic)
            token = request.query_params.get("token")
            if token:
                user = self._active(
                    next((u for u in self.users.values() if u.token == token), None)
                )
                if user is not None:
                    response = self._json(user.as_json())
                    self._new_session(user, response)
                    return self._record(request, "bearer", response, user)
            sid = request.cookies.get(SESSION_COOKIE)
            user = self._active(self._session_user(sid)) if sid else None
            if user is None:
                return self._record(request, None, self._not_found())
            return self._record(request, "cookie", self._json(user.as_json()), user)
        except _Fault as fault:
            return self._record(request, auth, fault.response)

    async def _devices(self, request: Request) -> Response:
        def handler(request: Request, user: FakeUser | None) -> Response:
            assert user is not None
            now = self.now()
            ids, unique_ids = _longs(request, "id"), request.query_params.getlist("uniqueId")
            if ids is None:
                return self._not_found()
            if ids or unique_ids:
                found = [d for d in self.devices.values() if d.unique_id in unique_ids]
                found += [self.devices[i] for i in ids if i in self.devices]
                found = [d for d in found if d.id in user.devices or user.administrator]
                return self._json([d.as_json(now) for d in found])
            everything = request.query_params.get("all", "").lower() == "true"
            if everything and user.administrator:
                listed = [self.devices[i] for i in sorted(self.devices)]
            elif everything and self.all_refusal == 400:
                return self._bad_request(
                    "java.lang.SecurityException",
                    "Manager access required",
                    "org.traccar.database.PermissionsManager.checkManager(PermissionsManager.java:262)",
                )
            elif everything and self.all_refusal is not None:
                return self._error_page(self.all_refusal)
            else:
                listed = self._visible(user)
            return self._json([d.as_json(now) for d in listed])

        return await self._handle(request, handler)

    def _period(self, request: Request) -> tuple[int | None, int | None] | Response:
        """The ``from`` and ``to`` parameters as epoch ms (``None`` when absent), or the 404
        Jersey answers when one does not convert."""
        out: list[int | None] = []
        for name in ("from", "to"):
            text = request.query_params.get(name)
            if text is None:
                out.append(None)
                continue
            try:
                out.append(parse_query_date(text))
            except ValueError:
                return self._not_found()
        return out[0], out[1]

    def _period_exceeded(self, from_ms: int, to_ms: int) -> Response | None:
        if self.period_limit_s and to_ms - from_ms > self.period_limit_s * 1000:
            return self._bad_request(
                "java.lang.IllegalArgumentException",
                "Time period exceeds the limit",
                "org.traccar.reports.common.ReportUtils.checkPeriodLimit(ReportUtils.java:112)",
            )
        return None

    def _operation_restricted(self) -> Response:
        return self._bad_request(
            "java.lang.SecurityException",
            "Operation restricted",
            "org.traccar.api.security.PermissionsService.checkRestriction(PermissionsService.java:96)",
        )

    def _access_denied(self) -> Response:
        return self._bad_request(
            "java.lang.SecurityException",
            "Device access denied",
            "org.traccar.api.security.PermissionsService.checkPermission(PermissionsService.java:181)",
        )

    async def _positions(self, request: Request) -> Response:
        def handler(request: Request, user: FakeUser | None) -> Response:
            assert user is not None
            ids = _longs(request, "id")
            devices = _longs(request, "deviceId")
            period = self._period(request)
            if ids is None or devices is None:
                return self._not_found()
            if isinstance(period, Response):
                return period
            from_ms, to_ms = period
            if ids:
                if self._restricted(user):
                    return self._operation_restricted()
                wanted = set(ids)
                found = [
                    p
                    for d in self.devices.values()
                    if self._may_see(user, d.id)
                    for p in d.positions
                    if p["id"] in wanted
                ]
                return self._json(found)
            device_id = devices[0] if devices else 0  # a single long: the first value only
            if device_id > 0 and from_ms is not None and to_ms is not None:
                if self._restricted(user):
                    return self._operation_restricted()
                if not self._may_see(user, device_id):
                    return self._access_denied()
                exceeded = self._period_exceeded(from_ms, to_ms)
                if exceeded is not None:
                    return exceeded
                device = self.devices[device_id]
                return self._json(device.between(from_ms, to_ms, self.max_positions))
            if device_id > 0:
                if not self._may_see(user, device_id):
                    return self._access_denied()
                latest = self.devices[device_id].latest
                return self._json([latest] if latest else [])
            return self._json([d.latest for d in self._visible(user) if d.latest])

        return await self._handle(request, handler)

    async def _route(self, request: Request) -> Response:
        def handler(request: Request, user: FakeUser | None) -> Response:
            assert user is not None
            devices = _longs(request, "deviceId")
            period = self._period(request)
            if devices is None or _longs(request, "groupId") is None:
                return self._not_found()
            if isinstance(period, Response):
                return period
            if self._restricted(user):
                return self._operation_restricted()
            from_ms, to_ms = period
            if from_ms is None or to_ms is None:
                return self._bad_request(
                    "java.lang.NullPointerException",
                    None,
                    "org.traccar.reports.common.ReportUtils.checkPeriodLimit(ReportUtils.java:111)",
                )
            exceeded = self._period_exceeded(from_ms, to_ms)
            if exceeded is not None:
                return exceeded
            if any(not self._may_see(user, d) for d in devices):
                return self._access_denied()
            out: list[bytes] = []
            for device_id in dict.fromkeys(devices):  # a LinkedHashSet: first order, once
                out += self.devices[device_id].between_encoded(from_ms, to_ms, self.max_positions)
            return self._json_bytes(b"[" + b",".join(out) + b"]")

        return await self._handle(request, handler)

    # -- the WebSocket -----------------------------------------------------------------
    def _broadcast(self, message: dict[str, Any]) -> None:
        for channel in list(self._listeners):
            try:
                channel.send_nowait(message)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._listeners.remove(channel)

    async def _socket(self, websocket: WebSocket) -> None:
        self.requests["/api/socket"] += 1
        sid = websocket.cookies.get(SESSION_COOKIE)
        user = self._active(self._session_user(sid)) if sid else None
        if user is None:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        send, receive = trio.open_memory_channel[dict[str, Any]](1000)
        self._listeners.append(send)
        visible = {d.id for d in self._visible(user)}
        try:
            await websocket.send_text(
                json.dumps(
                    {
                        "positions": [
                            self.devices[i].latest
                            for i in sorted(visible)
                            if self.devices[i].latest
                        ]
                    }
                )
            )
            async with trio.open_nursery() as nursery:

                async def reader() -> None:
                    try:
                        while True:
                            await websocket.receive_text()
                    except WebSocketDisconnect:
                        pass
                    nursery.cancel_scope.cancel()

                nursery.start_soon(reader)
                while True:
                    with trio.move_on_after(self.keepalive_s) as scope:
                        message = await receive.receive()
                    if scope.cancelled_caught:
                        await websocket.send_text("{}")
                        continue
                    if self._socket_may_see(user, message):
                        await websocket.send_text(json.dumps(message))
        except WebSocketDisconnect:
            pass
        finally:
            if send in self._listeners:
                self._listeners.remove(send)
            send.close()

    @staticmethod
    def _socket_may_see(user: FakeUser, message: dict[str, Any]) -> bool:
        ids = [p["deviceId"] for p in message.get("positions", ())]
        ids += [d["id"] for d in message.get("devices", ())]
        return all(i in user.devices for i in ids)


def _longs(request: Request, name: str) -> list[int] | None:
    """A repeatable ``long`` query parameter, or ``None`` when a value does not convert."""
    out = []
    for text in request.query_params.getlist(name):
        try:
            out.append(int(text))
        except ValueError:
            return None
    return out
