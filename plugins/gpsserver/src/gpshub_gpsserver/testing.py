"""``FakeGpsServer``: an in-memory GPS-Server.net server for tests and benchmarks.

It answers the documented user API the way the server's PHP does (reference section 5.2):

* ``GET|POST /api/api.php?api=user&ver=1.0&key=…&cmd=CMD,arg,…``: ``cmd`` split like
  ``str_getcsv`` (arguments may be double-quoted), the command name case-insensitive;
  ``USER_GET_OBJECTS``, ``OBJECT_GET_LOCATIONS,*|imei;imei`` (IMEIs not owned are omitted)
  and ``OBJECT_GET_MESSAGES,imei,from,to`` (``dt_tracker`` between both, inclusive, oldest
  first, no limit); every JSON value a string, as MySQL rows give them;
* errors as HTTP 200 plain text: ``ERROR: wrong API key``, ``ERROR: API call limit
  exceeded`` (the per-key ``call_limit``), ``ERROR: missing command parameters``,
  ``ERROR: IMEI is not valid``, ``ERROR: no permission to access this IMEI``,
  ``ERROR: date and time from can't be empty``; an empty body when ``api``, ``key`` or
  ``cmd`` is missing (or the command is unknown).

And, while ``token_api`` is on (the default), the inferred v4 flow (section 5.3):
``POST /api/v1/endpoints/auth.php`` (form ``grant_type=password``, ``username``,
``password``) -> ``{"data": {"access_token", "expires_in", "token_type"}}`` with
``expires_in`` in seconds, or as an epoch when ``expires_as_epoch``; a wrong login is 401
``{"error": "invalid_grant"}``; ``GET …/locations.php?imei=*`` and
``GET …/history.php?imei=&from=&to=`` with ``Authorization: Bearer`` answer ``{"data": …}``
with numbers, times in ``token_timezone`` and the satellite count as the sensor
``satellites`` (``gpslev`` on the key API); an unknown or expired token is 401
``{"error": "invalid_token"}``, an IMEI not owned 403.  With ``token_api`` off those paths
are 404.

An object's location (``dt_tracker``, position, ``loc_valid``) is its newest fix by fix
time; ``dt_server`` is when the server last received anything, so a late, back-dated upload
moves ``dt_server`` but not ``dt_tracker``.  A tracker out of coverage is ``hold(imei)``: its
new messages stay in its black box, unseen, until ``release(imei)`` uploads them all at once
(received then: ``dt_server`` moves; history rows carry only ``dt_tracker``);
``ping(imei)`` is the server hearing from it without a message for the history (a keep-alive,
a record it filters out): ``dt_server`` moves alone.  Use it like this::

    fake = FakeGpsServer(now=lambda: hub.clock.now().timestamp())
    imei = fake.add_unit("Truck 07", imei="356307042441013", plate="ABC-1234")
    fake.add_fix(imei, t, 37.98, 23.72, speed_kmh=40.0, ignition=True)
    url = await gpshub_serve(fake)      # or nursery.start(hub.testing.serve_app, fake.app)
    fake.credentials(url)       # email login;  fake.credentials_key(url): the API key
    fake.requests["OBJECT_GET_MESSAGES"], fake.requests["history.php"], fake.request_count

It is a ``hub.fake_upstream.FakeUpstream``: requests are counted under their command
(key API) or their file name (v4), and the base's faults apply, each taking ``times``,
``path`` and ``after``: ``delay = s``, ``fail(status)``, ``malformed()`` (JSON cut
short), ``hang()``, ``rate_limit(retry_after=...)`` (on ``/api/api.php`` the call-limit
error, HTTP 200, no retry time; on the v4 paths a 429), ``platform_error(message=...)``
(``ERROR: message`` on the key API, ``{"error": message}`` with ``status`` on v4) and
``expire_sessions()`` (every issued token).  Switches of its own: ``change_password``,
``change_api_key``, ``revoke(imei)``, ``call_limit``, ``hold(imei)`` / ``release(imei)``,
``ping(imei)``.  The running hub never imports this module.
"""

from __future__ import annotations

import bisect
import collections
import csv
import itertools
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from hub.fake_upstream import FakeCall, FakeUpstream, Fault, FixFields

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
ZERO_TIME = "0000-00-00 00:00:00"
DEFAULT_EMAIL = "fleet@example.com"
DEFAULT_PASSWORD = "fleet-password"  # noqa: S105 - a fake server's default account
DEFAULT_KEY = "0123456789ABCDEF0123456789ABCDEF"
KEY_PATH = "/api/api.php"
V4 = "/api/v1/endpoints/"
MALFORMED = b"[{"
"""What ``malformed`` answers: a JSON array cut short."""


def wire_time(t: float, zone: tzinfo = UTC) -> str:
    return datetime.fromtimestamp(t, zone).strftime(TIME_FORMAT)


def read_time(text: str, zone: tzinfo = UTC) -> int | None:
    try:
        parsed = datetime.strptime(text.strip(), TIME_FORMAT)
    except ValueError:
        return None
    return int(parsed.replace(tzinfo=zone).timestamp())


def text_number(value: float) -> str:
    """A number as MySQL gives it back: no trailing zeros."""
    out = f"{value:.6f}".rstrip("0").rstrip(".")
    return out if out not in ("", "-0") else "0"


def text_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return text_number(value)
    return str(value)


@dataclass(slots=True)
class FakeFix:
    t: int
    lat: float
    lon: float
    altitude: float
    angle: float
    speed: float
    valid: bool
    params: dict[str, Any]
    received: float


@dataclass
class FakeObject:
    """One tracked object with its messages, indexed by ``dt_tracker`` (whole seconds)."""

    imei: str
    name: str
    plate: str = ""
    model: str = ""
    device: str = ""
    odometer: float | None = None
    engine_hours: float | None = None
    owned: bool = True
    times: list[int] = field(default_factory=list)
    fixes: list[FakeFix] = field(default_factory=list)
    dt_server: float | None = None
    held: list[FakeFix] | None = None
    """While not ``None``, the tracker's black box: messages recorded but not uploaded."""

    @property
    def latest(self) -> FakeFix | None:
        return self.fixes[-1] if self.fixes else None

    def between(self, start: int, end: int) -> list[FakeFix]:
        lo = bisect.bisect_left(self.times, start)
        hi = bisect.bisect_right(self.times, end)
        return self.fixes[lo:hi]


class FakeGpsServer(FakeUpstream):
    """An in-memory GPS-Server.net server (see the module docstring)."""

    name = "gpsserver"

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.time,
        email: str = DEFAULT_EMAIL,
        password: str = DEFAULT_PASSWORD,
        api_key: str = DEFAULT_KEY,
        token_api: bool = True,
        token_ttl_s: float = 3600.0,
        expires_as_epoch: bool = False,
        token_timezone: str = "UTC",  # noqa: S107 - a time zone, not a secret
        call_limit: int | None = None,
    ) -> None:
        super().__init__(now=now)
        self.email = email
        self.password = password
        self.api_key = api_key
        self.token_api = token_api
        self.token_ttl_s = token_ttl_s
        self.expires_as_epoch = expires_as_epoch
        self.token_zone: tzinfo = ZoneInfo(token_timezone)
        self.call_limit = call_limit
        """Calls per key before ``ERROR: API call limit exceeded`` (``None``: no limit)."""
        self.key_calls: collections.Counter[str] = collections.Counter()
        self.objects: dict[str, FakeObject] = {}
        self.tokens: dict[str, float] = {}
        self.logins = 0
        self._imeis = itertools.count(356307040000001)

    def routes(self) -> list[BaseRoute]:
        return [
            Route(KEY_PATH, self._key_api, methods=["GET", "POST"]),
            Route(V4 + "auth.php", self._auth, methods=["POST"]),
            Route(V4 + "locations.php", self._locations, methods=["GET"]),
            Route(V4 + "history.php", self._history, methods=["GET"]),
        ]

    def request_name(self, call: FakeCall) -> str:
        """A key API call by its command (``OBJECT_GET_MESSAGES``), a v4 one by its file
        name (``history.php``)."""
        if call.path == KEY_PATH:
            return command_name(call.params("cmd")[-1:]) or "api.php"
        if call.path.startswith(V4):
            return call.path.removeprefix(V4)
        return call.path

    # -- account and objects -------------------------------------------------------------
    def credentials(self, url: str) -> dict[str, Any]:
        """Good credentials of a gpshub ``gpsserver`` connection (email login) at ``url``."""
        return {"email": self.email, "password": self.password, "server_url": url}

    def credentials_key(self, url: str) -> dict[str, Any]:
        """Good credentials using the user API key instead."""
        return {"api_key": self.api_key, "server_url": url}

    def options(self, url: str) -> dict[str, Any]:
        """The options this fake needs: none (``server_url`` points at it)."""
        return {}

    def change_password(self, password: str) -> None:
        self.password = password

    def change_api_key(self, key: str) -> None:
        self.api_key = key

    def expire_sessions(self) -> None:
        """Forget every issued token (as after their expiry or a server restart)."""
        self.tokens.clear()

    def add_unit(
        self,
        name: str,
        *,
        imei: str | None = None,
        plate: str | None = None,
        model: str = "",
        device: str = "FMB920",
        odometer: float | None = None,
        engine_hours: float | None = None,
    ) -> str:
        """Add an object owned by the account; its IMEI (the upstream id)."""
        key = imei or str(next(self._imeis))
        self.objects[key] = FakeObject(
            key,
            name,
            plate or "",
            model,
            device,
            odometer=odometer,
            engine_hours=engine_hours,
        )
        return key

    def rename_unit(self, imei: str, name: str) -> None:
        self.objects[imei].name = name

    def revoke(self, imei: str) -> None:
        """The account no longer owns the object: omitted from locations, and its messages
        answer ``ERROR: no permission to access this IMEI``."""
        self.objects[imei].owned = False

    def store_fix(
        self,
        unit: str,
        fix: FixFields,
    ) -> None:
        """Store a message at ``t`` (cut to whole seconds, as the server stores it) received
        at ``received`` (default now: ``dt_server``)."""
        received = self.now() if fix.received is None else fix.received
        obj = self.objects[unit]
        extra: dict[str, Any] = {"gpslev": fix.satellites}
        if fix.ignition is not None:
            extra["acc"] = 1 if fix.ignition else 0
        extra.update(fix.params or {})
        stored = FakeFix(
            int(fix.t),
            fix.lat,
            fix.lon,
            fix.altitude,
            fix.course,
            fix.speed_kmh,
            fix.valid,
            extra,
            received,
        )
        if obj.held is not None:
            obj.held.append(stored)
            return
        self._store(obj, stored)

    def _store(self, obj: FakeObject, fix: FakeFix) -> None:
        if not obj.times or fix.t >= obj.times[-1]:
            obj.times.append(fix.t)
            obj.fixes.append(fix)
        else:
            index = bisect.bisect_right(obj.times, fix.t)
            obj.times.insert(index, fix.t)
            obj.fixes.insert(index, fix)
        if obj.dt_server is None or fix.received > obj.dt_server:
            obj.dt_server = fix.received

    def hold(self, unit: str) -> None:
        """The tracker loses its connection (out of coverage): from now on ``add_fix`` keeps
        its messages in its black box; the server sees nothing, so ``dt_tracker`` and
        ``dt_server`` stand still."""
        obj = self.objects[unit]
        if obj.held is None:
            obj.held = []

    def ping(self, unit: str) -> None:
        """The server hears from the tracker without a message for its history (a
        keep-alive, a record its filters drop): ``dt_server`` moves, nothing else."""
        self.objects[unit].dt_server = self.now()

    def release(self, unit: str) -> int:
        """The tracker is back and uploads its black box at once: every held message is
        stored, received now (``dt_server`` moves; the history rows carry only their
        ``dt_tracker``).  How many were uploaded."""
        obj = self.objects[unit]
        held, obj.held = obj.held or [], None
        now = self.now()
        for fix in held:
            fix.received = now
            self._store(obj, fix)
        return len(held)

    # -- faults ------------------------------------------------------------------------
    def fault_response(self, call: FakeCall, fault: Fault) -> Response:
        """The base's answers, but the key API's rate limit is its call-limit error (HTTP
        200, no retry time) and a malformed answer is ``MALFORMED``."""
        if fault.kind == "rate_limit" and call.path == KEY_PATH:
            return _text("ERROR: API call limit exceeded")
        if fault.kind == "malformed":
            return Response(MALFORMED, media_type="application/json")
        return super().fault_response(call, fault)

    def platform_response(
        self, call: FakeCall, *, message: str = "internal error", status: int = 400
    ) -> Response:
        """``ERROR: message`` (HTTP 200) on the key API; ``{"error": message}`` with
        ``status`` on the v4 API."""
        return self._error(message, call.path != KEY_PATH, status)

    def _json(self, payload: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(payload), status_code=status, media_type="application/json")

    # -- the user API (api.php) ----------------------------------------------------------
    async def _key_api(self, request: Request) -> Response:
        query = dict(request.query_params)
        if request.method == "POST":
            query.update(_form(await request.body()))
        api, key, cmd = query.get("api"), query.get("key"), query.get("cmd")
        args = split_command(cmd)
        name = command_name([cmd] if cmd else [])
        if not api or not key or not cmd:
            return _text("")
        if api != "user":
            return _text("")
        if not secrets.compare_digest(key.encode(), self.api_key.encode()):
            return _text("ERROR: wrong API key")
        self.key_calls[key] += 1
        if self.call_limit is not None and self.key_calls[key] > self.call_limit:
            return _text("ERROR: API call limit exceeded")
        params = [a.strip() for a in args[1:]]
        if name == "USER_GET_OBJECTS":
            return self._json([self._object_json(o) for o in self._owned()])
        if name == "OBJECT_GET_LOCATIONS":
            if not params or not params[0]:
                return _text("ERROR: missing command parameters")
            return self._json(self._locations_json(params[0], v4=False))
        if name == "OBJECT_GET_MESSAGES":
            if len(params) < 3:
                return _text("ERROR: missing command parameters")
            return self._messages(params[0], params[1], params[2], v4=False)
        return _text("")

    def _owned(self) -> list[FakeObject]:
        return [o for o in self.objects.values() if o.owned]

    def _object_json(self, obj: FakeObject) -> dict[str, Any]:
        out = {
            "imei": obj.imei,
            "protocol": "teltonika",
            "net_protocol": "tcp",
            "ip": "85.1.2.3",
            "port": "6001",
            "active": "true",
            "object_expire": "false",
            "object_expire_dt": "0000-00-00",
            **self._location_json(obj, v4=False),
            "dt_last_stop": ZERO_TIME,
            "dt_last_idle": ZERO_TIME,
            "dt_last_move": ZERO_TIME,
            "device": obj.device,
            "sim_number": "",
            "model": obj.model,
            "vin": "",
            "plate_number": obj.plate,
            "odometer": "" if obj.odometer is None else text_number(obj.odometer),
            "engine_hours": "" if obj.engine_hours is None else text_number(obj.engine_hours),
            "custom_fields": [],
        }
        return out

    def _location_json(self, obj: FakeObject, *, v4: bool) -> dict[str, Any]:
        fix = obj.latest
        zone = self.token_zone if v4 else UTC
        dt_server = ZERO_TIME if obj.dt_server is None else wire_time(obj.dt_server, zone)
        if fix is None:
            values: dict[str, Any] = {
                "dt_server": dt_server,
                "dt_tracker": ZERO_TIME,
                "lat": 0 if v4 else "0",
                "lng": 0 if v4 else "0",
                "altitude": 0 if v4 else "0",
                "angle": 0 if v4 else "0",
                "speed": 0 if v4 else "0",
                "params": {},
                "loc_valid": 0 if v4 else "0",
            }
        elif v4:
            values = {
                "dt_server": dt_server,
                "dt_tracker": wire_time(fix.t, zone),
                "lat": fix.lat,
                "lng": fix.lon,
                "altitude": fix.altitude,
                "angle": fix.angle,
                "speed": fix.speed,
                "params": v4_params(fix.params),
                "loc_valid": 1 if fix.valid else 0,
            }
            if "acc" in fix.params:
                values["ign"] = fix.params["acc"]
        else:
            values = {
                "dt_server": dt_server,
                "dt_tracker": wire_time(fix.t),
                "lat": f"{fix.lat:.6f}",
                "lng": f"{fix.lon:.6f}",
                "altitude": text_number(fix.altitude),
                "angle": text_number(fix.angle),
                "speed": text_number(fix.speed),
                "params": {k: text_value(v) for k, v in fix.params.items()},
                "loc_valid": "1" if fix.valid else "0",
            }
        return {"name": obj.name, **values}

    def _locations_json(self, which: str, *, v4: bool) -> dict[str, Any]:
        if which == "*":
            chosen = self._owned()
        else:
            wanted = [i.strip() for i in which.split(";")]
            chosen = [self.objects[i] for i in wanted if i in self.objects]
            chosen = [o for o in chosen if o.owned]
        out = {}
        for obj in chosen:
            values = self._location_json(obj, v4=v4)
            if v4:
                values["plate"] = obj.plate
                values["model"] = obj.model
                values["device"] = obj.device
                if obj.odometer is not None:
                    values["odometer"] = obj.odometer
                if obj.engine_hours is not None:
                    values["engine_hours"] = obj.engine_hours
            out[obj.imei] = values
        return out

    def _messages(self, imei: str, start_text: str, end_text: str, *, v4: bool) -> Response:
        if not imei.isdigit():
            return self._error("IMEI is not valid", v4, 400)
        obj = self.objects.get(imei)
        if obj is None or not obj.owned:
            return self._error("no permission to access this IMEI", v4, 403)
        if not start_text:
            return self._error("date and time from can't be empty", v4, 400)
        if not end_text:
            return self._error("date and time to can't be empty", v4, 400)
        zone = self.token_zone if v4 else UTC
        start, end = read_time(start_text, zone), read_time(end_text, zone)
        if start is None or end is None:
            return self._json({"data": []} if v4 else [])
        rows = [self._row(f, v4=v4) for f in obj.between(start, end)]
        return self._json({"data": rows} if v4 else rows)

    def _row(self, fix: FakeFix, *, v4: bool) -> list[Any]:
        if v4:
            return [
                wire_time(fix.t, self.token_zone),
                fix.lat,
                fix.lon,
                fix.altitude,
                fix.angle,
                fix.speed,
                v4_params(fix.params),
            ]
        return [
            wire_time(fix.t),
            f"{fix.lat:.6f}",
            f"{fix.lon:.6f}",
            text_number(fix.altitude),
            text_number(fix.angle),
            text_number(fix.speed),
            {k: text_value(v) for k, v in fix.params.items()},
        ]

    def _error(self, message: str, v4: bool, status: int) -> Response:
        if v4:
            return self._json({"error": message}, status)
        return _text(f"ERROR: {message}")

    # -- the v4 token API ----------------------------------------------------------------
    async def _auth(self, request: Request) -> Response:
        if not self.token_api:
            return Response(b"Not Found", status_code=404)
        values = _form(await request.body())
        if values.get("grant_type") != "password":
            return self._json({"error": "unsupported_grant_type"}, 400)
        user, password = values.get("username", ""), values.get("password", "")
        if user.strip().lower() != self.email.lower() or not secrets.compare_digest(
            password.encode(), self.password.encode()
        ):
            return self._json({"error": "invalid_grant"}, 401)
        self.logins += 1
        token = secrets.token_hex(20)
        now = self.now()
        self.tokens[token] = now + self.token_ttl_s
        expires = round(now + self.token_ttl_s) if self.expires_as_epoch else self.token_ttl_s
        return self._json(
            {"data": {"access_token": token, "token_type": "Bearer", "expires_in": expires}}
        )

    def _bearer_ok(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        expires = self.tokens.get(header[7:].strip())
        if expires is None:
            return False
        if self.now() >= expires:
            del self.tokens[header[7:].strip()]
            return False
        return True

    def _v4(self, request: Request) -> Response | None:
        if not self.token_api:
            return Response(b"Not Found", status_code=404)
        if not self._bearer_ok(request):
            return self._json({"error": "invalid_token"}, 401)
        return None

    async def _locations(self, request: Request) -> Response:
        refused = self._v4(request)
        if refused is not None:
            return refused
        which = request.query_params.get("imei") or "*"
        return self._json({"data": self._locations_json(which, v4=True)})

    async def _history(self, request: Request) -> Response:
        refused = self._v4(request)
        if refused is not None:
            return refused
        q = request.query_params
        return self._messages(q.get("imei", ""), q.get("from", ""), q.get("to", ""), v4=True)


def _form(body: bytes) -> dict[str, str]:
    """A form-encoded body's fields (the first value of each)."""
    return {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}


def split_command(cmd: str | None) -> list[str]:
    """A ``cmd`` value split as the server's ``str_getcsv`` does (quoted arguments)."""
    return next(csv.reader([cmd], delimiter=",", quotechar='"')) if cmd else []


def command_name(cmds: list[str]) -> str:
    """The command of the (last) ``cmd`` value, upper case; empty without one."""
    args = split_command(cmds[-1]) if cmds else []
    return args[0].strip().upper() if args else ""


def v4_params(params: dict[str, Any]) -> dict[str, Any]:
    """A message's params as the v4 API sends them with ``sensors=true``: numbers, and the
    satellite count named ``satellites`` (the key API's ``gpslev``)."""
    out = dict(params)
    if "gpslev" in out:
        out["satellites"] = out.pop("gpslev")
    return out


def _text(body: str) -> Response:
    """A plain-text answer with HTTP 200, as the PHP API sends its errors."""
    return Response(body.encode(), media_type="text/html")
