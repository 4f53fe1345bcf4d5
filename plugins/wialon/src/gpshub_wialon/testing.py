"""``FakeWialon``: an in-memory Wialon Remote API server for tests and benchmarks.

It answers ``/wialon/ajax.html`` the way Wialon Hosting does — ``svc``, ``params`` (JSON)
and ``sid`` read from the query string or the form body, every answer HTTP 200 with JSON,
failures as ``{"error": N}`` — for the services a poller uses: ``token/login``,
``core/logout``, ``core/search_items``, ``core/search_item``, ``core/batch``,
``messages/load_interval``, ``messages/load_last``, ``messages/get_messages``,
``messages/unload``, plus ``core/update_data_flags`` and ``/avl_evts`` for event feeds.

It is a ``hub.fake_upstream.FakeUpstream``: serve it with ``gpshub_serve`` (or
``hub.testing.serve_app``)::

    fake = FakeWialon(now=lambda: hub.clock.now().timestamp())
    unit = fake.add_unit("Truck 1", imei="356307042441013", plate="1234 AB-7")
    fake.add_fix(unit, t=1767225600, lat=53.92, lon=27.49, speed_kmh=42)
    url = await gpshub_serve(fake)
    credentials = fake.credentials(url)  # {"token": ..., "server_url": url}

Requests are counted by ``svc`` (``avl_evts`` for the event feed) in ``requests``;
``executed`` counts the services run, sub-requests of ``core/batch`` included.  The
base's faults apply (``fail``, ``rate_limit`` as an HTTP 429 from a proxy, ``malformed``,
``hang``, ``delay``; ``path`` may name a ``svc``); ``platform_error(code=N, reason=...)``
is Wialon's own ``{"error": N}`` answer (e.g. ``code=1003, reason="LIMIT api_concurrent"``,
its concurrency limit).  Wialon's own switches: ``expire_sessions()``, ``ip_changed()``
(error 1011 once), ``revoke_token()`` (error 8 on login), ``login_error`` (e.g. 4),
``item_error(unit, code)`` (one unit's answer inside a batch), ``deny(unit)`` (error 7);
``hold(unit)`` / ``release(unit)`` (a tracker out of coverage buffers its messages, then
uploads them all at once, received at the upload time).  At most ``max_heavy`` heavy
requests (message loads) run at once in a session, each taking ``heavy_s`` seconds.
Failed logins are throttled like Wialon's IP block: after ``failed_login_limit`` failures
within a minute every login answers error 8, good token or not.

The running hub never imports this module.
"""

from __future__ import annotations

import bisect
import collections
import fnmatch
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gpshub_wialon import protocol as p
from hub.fake_upstream import FakeCall, FakeUpstream, FixFields

JSON = "application/json"
FIRST_UNIT_ID = 600_000_001
USER_ID = 50_935


class _Fault(Exception):
    """A Wialon error answer, raised inside the handlers."""

    def __init__(self, code: int, reason: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.reason = reason

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class FakeUnit:
    """One unit and its messages, kept sorted by time (``times[i]`` is ``messages[i]["t"]``)."""

    id: int
    name: str
    uid: str = ""
    plate: str | None = None
    hw: int = 9
    phone: str = ""
    profile: dict[str, str] = field(default_factory=dict)
    times: list[int] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)
    """Each message's type and flags as the server filters them (``f`` | type)."""
    denied: bool = False
    sensors: dict[int, dict[str, Any]] = field(default_factory=dict)
    """The unit's sensors as Wialon returns them in ``sens`` (by sensor id)."""
    held: list[tuple[dict[str, Any], int]] | None = None
    """While not ``None``, the tracker is out of coverage: what it records waits here, in
    its black box, until ``FakeWialon.release`` uploads it."""

    def put(self, message: dict[str, Any], kind: int) -> None:
        """Store a message; one at a given second replaces the one there (as Wialon keys
        a unit's messages by time)."""
        t = message["t"]
        if not self.times or t > self.times[-1]:
            self.times.append(t)
            self.messages.append(message)
            self.kinds.append(kind)
            return
        i = bisect.bisect_left(self.times, t)
        if i < len(self.times) and self.times[i] == t:
            self.messages[i] = message
            self.kinds[i] = kind
        else:
            self.times.insert(i, t)
            self.messages.insert(i, message)
            self.kinds.insert(i, kind)

    def select(self, time_from: int, time_to: int, flags: int, mask: int) -> list[dict[str, Any]]:
        if time_from > time_to:
            return []
        lo = bisect.bisect_left(self.times, time_from)
        hi = bisect.bisect_right(self.times, time_to)
        kinds, messages = self.kinds, self.messages
        return [messages[i] for i in range(lo, hi) if kinds[i] & mask == flags]

    def last_position(self) -> dict[str, Any] | None:
        for i in range(len(self.messages) - 1, -1, -1):
            if self.kinds[i] & p.POSITION_MASK == p.POSITION_FLAGS:
                message = self.messages[i]
                return {"t": message["t"], **message["pos"]}
        return None

    def profile_fields(self) -> dict[str, str]:
        fields = dict(self.profile)
        if self.plate is not None:
            fields = {p.PLATE_FIELD: self.plate, **fields}
        return fields


@dataclass
class FakeSession:
    eid: str
    user: str
    last_used: float
    loader: list[dict[str, Any]] = field(default_factory=list)
    subscribed: set[int] = field(default_factory=set)
    events: list[dict[str, Any]] = field(default_factory=list)


class FakeWialon(FakeUpstream):
    """An in-memory Wialon server (see the module docstring).

    ``now`` gives the server's time in epoch seconds: session idle expiry, the default
    receive time of messages (``rt``) and ``tm`` in answers.  ``session_ttl`` is the idle
    time after which a session dies (Wialon: 5 minutes).
    """

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.time,
        session_ttl: float = 300.0,
        user_name: str = "fleet",
        token: str | None = None,
        failed_login_limit: int = 10,
        max_heavy: int = 3,
    ) -> None:
        super().__init__(now=now)
        self.session_ttl = session_ttl
        self.user_name = user_name
        self.token = token or secrets.token_hex(36).upper()
        self.valid_tokens: set[str] = {self.token}
        self.failed_login_limit = failed_login_limit
        self.max_heavy = max_heavy
        self.units: dict[int, FakeUnit] = {}
        self.sessions: dict[str, FakeSession] = {}
        self.executed: collections.Counter[str] = collections.Counter()
        """Services executed, sub-requests of ``core/batch`` included."""
        self.failed_logins: list[float] = []
        self.login_error: int | None = None
        """When set, every ``token/login`` answers this error (e.g. 4)."""
        self.empty_error = False
        """When set, ``load_interval`` with nothing to load answers error 1001."""
        self.search_page_size: int | None = None
        """When set, ``core/search_items`` returns at most this many items per answer."""
        self.max_batch: int | None = None
        """When set, a ``core/batch`` with more sub-requests answers error 6."""
        self.heavy_s = 0.0
        """How long a heavy request (a message load) holds its slot in the session."""
        self._item_errors: dict[int, list[int]] = {}
        self._ip_changed = False
        self._heavy: collections.Counter[str] = collections.Counter()
        self._next_id = FIRST_UNIT_ID

    def routes(self) -> list[BaseRoute]:
        return [
            Route(p.AJAX_PATH, self._ajax, methods=["GET", "POST"]),
            Route(p.EVENTS_PATH, self._avl_evts, methods=["GET", "POST"]),
        ]

    def request_name(self, call: FakeCall) -> str:
        """A request is counted under its ``svc`` (``avl_evts`` for the event feed)."""
        if call.path == p.EVENTS_PATH:
            return "avl_evts"
        return (call.params("svc") or [""])[-1]

    def platform_response(
        self, call: FakeCall, *, code: int = p.ERR_UNKNOWN, reason: str | None = None, **_: Any
    ) -> Response:
        """Wialon's error answer: HTTP 200 with ``{"error": code, "reason": reason}``."""
        return _json(_Fault(code, reason).body())

    # -- the data ------------------------------------------------------------------------
    def add_unit(
        self,
        name: str,
        *,
        imei: str | None = None,
        plate: str | None = None,
        hw: int = 9,
        phone: str = "",
        profile: dict[str, str] | None = None,
    ) -> str:
        """A new unit; returns its id (as text, the way the hub keeps upstream ids)."""
        unit = FakeUnit(self._next_id, name, imei or "", plate, hw, phone, dict(profile or {}))
        self._next_id += 1
        self.units[unit.id] = unit
        return str(unit.id)

    def unit(self, unit: str | int) -> FakeUnit:
        return self.units[int(unit)]

    def rename(self, unit: str | int, name: str) -> None:
        self.unit(unit).name = name
        self._update_event(unit, {"nm": name})

    def set_plate(self, unit: str | int, plate: str | None) -> None:
        self.unit(unit).plate = plate

    def deny(self, unit: str | int, denied: bool = True) -> None:
        """Take away (or give back) the user's access to a unit: error 7, hidden in search."""
        self.unit(unit).denied = denied

    def add_sensor(
        self,
        unit: str | int,
        name: str,
        kind: str,
        param: str,
        *,
        metrics: str = "",
        description: str = "",
        flags: int = 0,
        table: list[tuple[float, float, float]] | None = None,
        config: dict[str, Any] | None = None,
        validator: int = 0,
        validation: int = 0,
    ) -> int:
        """Define a sensor on a unit, the way a Wialon user does (served in ``sens`` with the
        unit flag 4096): ``kind`` is its type (``engine operation``, ``fuel level``,
        ``mileage``...), ``param`` its parameter expression, ``table`` the calculation
        table as ``(x, a, b)`` rows, ``config`` what goes into ``c`` (sent as JSON text),
        ``validator`` the id of a validating sensor.  Returns the sensor id."""
        target = self.unit(unit)
        sensor_id = max(target.sensors, default=0) + 1
        target.sensors[sensor_id] = {
            "id": sensor_id,
            "n": name,
            "t": kind,
            "d": description,
            "m": metrics,
            "p": param,
            "f": flags,
            "c": orjson.dumps(
                {"appear_in_popup": True, "show_time": False, **(config or {})}
            ).decode(),
            "vt": validation,
            "vs": validator,
            "tbl": [{"x": x, "a": a, "b": b} for x, a, b in table or ()],
        }
        return sensor_id

    def store_fix(
        self,
        unit: str | int,
        fix: FixFields,
        *,
        inputs: int = 0,
        outputs: int = 0,
        lbs: bool = False,
        wifi: bool = False,
    ) -> dict[str, Any]:
        """Store a data message with a position, in Wialon's wire units.

        ``t`` is cut to whole seconds, speed, course and altitude are rounded to integers
        (km/h, degrees, metres).  An invalid fix is sent with no satellites (``sc`` 0);
        ``lbs``/``wifi`` set the flags of a position from cell towers / Wi-Fi.
        ``ignition`` becomes the parameter ``ign`` (1/0); ``received`` is the server's
        registration time ``rt`` (default: now), so a late message is one with an old ``t``.
        """
        sc = fix.satellites if fix.valid else 0
        flags = p.MSG_POSITION | p.MSG_INPUTS | p.MSG_OUTPUTS
        if lbs:
            flags |= p.MSG_LBS
        if wifi:
            flags |= p.MSG_WIFI
        values = dict(fix.params or {})
        if fix.ignition is not None:
            values["ign"] = 1 if fix.ignition else 0
        message = {
            "t": int(fix.t),
            "f": flags,
            "tp": "ud",
            "pos": {
                "y": fix.lat,
                "x": fix.lon,
                "z": round(fix.altitude),
                "s": round(fix.speed_kmh),
                "c": round(fix.course) % 360,
                "sc": sc,
            },
            "i": inputs,
            "o": outputs,
            "p": values,
            "lc": 0,
            "rt": int(self.now() if fix.received is None else fix.received),
        }
        self.add_message(unit, message)
        return message

    def add_message(
        self, unit: str | int, message: dict[str, Any], kind: int | None = None
    ) -> None:
        """Store any message as given; ``kind`` is its type and flags for filtering
        (default: its ``f``, i.e. a data message)."""
        target = self.unit(unit)
        flags = message.get("f", 0) if kind is None else kind
        if target.held is not None:
            target.held.append((message, flags))
            return
        target.put(message, flags)
        self._queue_event(target.id, {"i": target.id, "t": "m", "d": message})

    def hold(self, unit: str | int) -> None:
        """The unit's tracker loses its connection and buffers what it records (its black
        box): the messages added from now on reach Wialon only on ``release``."""
        target = self.unit(unit)
        if target.held is None:
            target.held = []

    def release(self, unit: str | int) -> int:
        """The tracker is back and uploads its buffer at once: every held message is stored
        with ``rt`` = now (the upload time), oldest first.  Returns how many there were."""
        target = self.unit(unit)
        held, target.held = target.held or [], None
        now = int(self.now())
        for message, flags in held:
            self.add_message(unit, {**message, "rt": now}, flags)
        return len(held)

    # -- how to connect ------------------------------------------------------------------
    def credentials(self, url: str) -> dict[str, Any]:
        """Good credentials of a connection to this fake served at ``url``."""
        return {"token": self.token, "server_url": url}

    def options(self, url: str) -> dict[str, Any]:
        """The options such a connection needs (none: ``server_url`` points here)."""
        return {}

    # -- Wialon's own switches -------------------------------------------------------------
    def item_error(self, unit: str | int, code: int, n: int = 1) -> None:
        """The next ``n`` message loads of ``unit`` answer ``{"error": code}`` (in a batch,
        that one entry)."""
        self._item_errors.setdefault(int(unit), []).extend([code] * n)

    def expire_sessions(self) -> None:
        """Every session dies: the next request with a ``sid`` answers error 1."""
        self.sessions.clear()

    def ip_changed(self) -> None:
        """The next request with a live session answers error 1011 and ends the session."""
        self._ip_changed = True

    def revoke_token(self, token: str | None = None) -> None:
        """Make a token (default: the good one) invalid: its logins answer error 8."""
        self.valid_tokens.discard(token or self.token)

    def new_token(self) -> str:
        token = secrets.token_hex(36).upper()
        self.valid_tokens.add(token)
        return token

    # -- HTTP ------------------------------------------------------------------------------
    async def _ajax(self, request: Request) -> Response:
        query = dict(request.query_params)
        body = await request.body()
        if body:
            query.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        svc = query.get("svc", "")
        sid = query.get("sid")
        try:
            params = orjson.loads(query.get("params") or "{}")
        except orjson.JSONDecodeError:
            params = None
        heavy = svc in p.HEAVY_SERVICES or (svc == p.BATCH and _has_heavy(params))
        if heavy and sid and self._heavy[sid] >= self.max_heavy:
            return _json({"error": p.ERR_ONE_REQUEST, "reason": "LIMIT api_concurrent"})
        if heavy and sid:
            self._heavy[sid] += 1
        try:
            if heavy and self.heavy_s:
                await trio.sleep(self.heavy_s)
            try:
                result = self._top(svc, params, sid, request)
            except _Fault as fault:
                result = fault.body()
            return _json(result)
        finally:
            if heavy and sid:
                self._heavy[sid] -= 1

    async def _avl_evts(self, request: Request) -> Response:
        query = dict(request.query_params)
        body = await request.body()
        if body:
            query.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            session = self._session(query.get("sid"))
        except _Fault as fault:
            return _json(fault.body())
        events, session.events = session.events, []
        return _json({"tm": int(self.now()), "events": events})

    # -- services --------------------------------------------------------------------------
    def _top(self, svc: str, params: Any, sid: str | None, request: Request) -> Any:
        if svc == p.LOGIN:
            return self._login(params, request)
        session = self._session(sid)
        if svc == p.LOGOUT:
            self.executed[svc] += 1
            self.sessions.pop(session.eid, None)
            return {"error": 0}
        if svc == p.BATCH:
            self.executed[svc] += 1
            return self._batch(params, session)
        return self._call(svc, params, session)

    def _session(self, sid: str | None) -> FakeSession:
        session = self.sessions.get(sid or "")
        if session is None:
            raise _Fault(p.ERR_INVALID_SESSION)
        now = self.now()
        if now - session.last_used > self.session_ttl:
            del self.sessions[session.eid]
            raise _Fault(p.ERR_INVALID_SESSION)
        if self._ip_changed:
            self._ip_changed = False
            del self.sessions[session.eid]
            raise _Fault(p.ERR_SESSION_IP)
        session.last_used = now
        return session

    def _login(self, params: Any, request: Request) -> dict[str, Any]:
        self.executed[p.LOGIN] += 1
        now = self.now()
        self.failed_logins = [t for t in self.failed_logins if now - t < 60.0]
        if len(self.failed_logins) >= self.failed_login_limit:
            self.failed_logins.append(now)
            raise _Fault(p.ERR_BAD_LOGIN)
        if self.login_error is not None:
            raise _Fault(self.login_error)
        if not isinstance(params, dict) or not isinstance(params.get("token"), str):
            raise _Fault(p.ERR_INVALID_INPUT)
        token = params["token"]
        if token not in self.valid_tokens:
            self.failed_logins.append(now)
            raise _Fault(p.ERR_BAD_LOGIN)
        eid = secrets.token_hex(16)
        self.sessions[eid] = FakeSession(eid, self.user_name, now)
        token_info = {
            "app": "gpshub",
            "ct": int(now) - 86400,
            "at": int(now) - 86400,
            "dur": 2592000,
            "fl": -1,
            "p": "{}",
            "items": [],
        }
        host = request.client.host if request.client else "127.0.0.1"
        return {
            "host": host,
            "eid": eid,
            "gis_sid": secrets.token_hex(16),
            "au": self.user_name,
            "pi": 0,
            "tm": int(now),
            "wsdk_version": "1.49",
            "hw_gw_ip": "127.0.0.1",
            "user": {
                "nm": self.user_name,
                "cls": 1,
                "id": USER_ID,
                "prp": {"dst": "-1", "language": "en", "tz": "134232128"},
                "crt": USER_ID,
                "bact": USER_ID + 1,
                "fl": 6,
                "hm": "",
                "uacl": 2097795,
            },
            "token": orjson.dumps(token_info).decode(),
            "th": token,
            "classes": {
                "avl_hw": 4,
                "avl_resource": 3,
                "avl_retranslator": 7,
                "avl_route": 6,
                "avl_unit": 2,
                "avl_unit_group": 5,
                "user": 1,
            },
            "features": {"unlim": 1, "svcs": {"avl_evts": 1, "messages": 1}},
        }

    def _batch(self, params: Any, session: FakeSession) -> list[Any]:
        if isinstance(params, dict):
            calls, flags = params.get("params"), params.get("flags", 0)
        else:
            calls, flags = params, 0
        if not isinstance(calls, list) or not isinstance(flags, int):
            raise _Fault(p.ERR_INVALID_INPUT)
        if self.max_batch is not None and len(calls) > self.max_batch:
            raise _Fault(p.ERR_UNKNOWN)
        out: list[Any] = []
        stopped = False
        for call in calls:
            if stopped:
                out.append({"error": p.ERR_CONCURRENT})
                continue
            try:
                if not isinstance(call, dict) or call.get("svc") in (p.LOGIN, p.BATCH, p.LOGOUT):
                    raise _Fault(p.ERR_INVALID_INPUT)
                out.append(self._call(str(call.get("svc")), call.get("params"), session))
            except _Fault as fault:
                out.append(fault.body())
                stopped = bool(flags & 1)
        return out

    def _call(self, svc: str, params: Any, session: FakeSession) -> Any:
        self.executed[svc] += 1
        handler = self._services.get(svc)
        if handler is None:
            raise _Fault(p.ERR_INVALID_SERVICE)
        if not isinstance(params, dict):
            raise _Fault(p.ERR_INVALID_INPUT)
        return handler(self, params, session)

    def _search_items(self, params: dict[str, Any], session: FakeSession) -> dict[str, Any]:
        spec = params.get("spec")
        flags, start, end = params.get("flags"), params.get("from", 0), params.get("to", 0)
        if not isinstance(spec, dict) or not all(_is_int(v) for v in (flags, start, end)):
            raise _Fault(p.ERR_INVALID_INPUT)
        prop = spec.get("propName", "sys_name")
        mask = str(spec.get("propValueMask", "*")).lower()
        units: list[FakeUnit] = []
        if spec.get("itemsType") == "avl_unit":
            for unit in self.units.values():
                if unit.denied:
                    continue
                value = {
                    "sys_name": unit.name,
                    "sys_unique_id": unit.uid,
                    "sys_id": str(unit.id),
                }.get(prop)
                if value is None:
                    raise _Fault(p.ERR_INVALID_INPUT)
                if fnmatch.fnmatchcase(value.lower(), mask):
                    units.append(unit)
        if spec.get("sortType", "sys_name") == "sys_name":
            units.sort(key=lambda u: (u.name.lower(), u.id))
        chosen = units[start:] if end == 0 else units[start : end + 1]
        if self.search_page_size is not None:
            chosen = chosen[: self.search_page_size]
        return {
            "searchSpec": {**spec, "or_logic": str(spec.get("or_logic", 0))},
            "dataFlags": flags,
            "totalItemsCount": len(units),
            "indexFrom": start,
            "indexTo": end,
            "items": [self._item(unit, flags) for unit in chosen],
        }

    def _search_item(self, params: dict[str, Any], session: FakeSession) -> dict[str, Any]:
        flags = params.get("flags")
        if not _is_int(flags):
            raise _Fault(p.ERR_INVALID_INPUT)
        unit = self._unit_for(params.get("id"))
        return {"item": self._item(unit, flags), "flags": flags}

    def _item(self, unit: FakeUnit, flags: int) -> dict[str, Any]:
        item: dict[str, Any] = {}
        if flags & p.UNIT_BASE:
            item.update(nm=unit.name, cls=2, id=unit.id, mu=0, uacl=638138188323)
        if flags & p.UNIT_CUSTOM_PROPS:
            item["prp"] = {}
        if flags & p.UNIT_CUSTOM_FIELDS:
            item["flds"] = {}
        if flags & p.UNIT_ADVANCED:
            item.update(uid=unit.uid, uid2="", hw=unit.hw, ph=unit.phone, ph2="", psw="")
        if flags & p.UNIT_LAST_MESSAGE:
            item["pos"] = unit.last_position()
            item["lmsg"] = unit.messages[-1] if unit.messages else None
        if flags & p.UNIT_SENSORS:
            item["sens"] = {str(i): dict(sensor) for i, sensor in unit.sensors.items()}
            item["sens_max"] = -1
        if flags & p.UNIT_PROFILE:
            fields = unit.profile_fields()
            item["pflds"] = {
                str(i): {"id": i, "n": name, "v": value}
                for i, (name, value) in enumerate(fields.items(), start=1)
            }
            item["pfldsmax"] = len(fields)
        return item

    def _unit_for(self, item_id: Any) -> FakeUnit:
        if not _is_int(item_id):
            raise _Fault(p.ERR_INVALID_INPUT)
        unit = self.units.get(item_id)
        if unit is None or unit.denied:
            raise _Fault(p.ERR_ACCESS_DENIED)
        return unit

    def _load(
        self, unit: FakeUnit, loaded: list[dict[str, Any]], count: Any, session: FakeSession
    ) -> dict[str, Any]:
        pending = self._item_errors.get(unit.id)
        if pending:
            raise _Fault(pending.pop(0))
        session.loader = loaded
        if not loaded and self.empty_error:
            raise _Fault(p.ERR_NO_MESSAGES)
        return {"count": len(loaded), "messages": loaded[:count]}

    def _load_interval(self, params: dict[str, Any], session: FakeSession) -> dict[str, Any]:
        keys = ("timeFrom", "timeTo", "flags", "flagsMask", "loadCount")
        values = [params.get(k) for k in keys]
        if not all(_is_int(v) for v in values):
            raise _Fault(p.ERR_INVALID_INPUT)
        time_from, time_to, flags, mask, count = values
        unit = self._unit_for(params.get("itemId"))
        return self._load(unit, unit.select(time_from, time_to, flags, mask), count, session)

    def _load_last(self, params: dict[str, Any], session: FakeSession) -> dict[str, Any]:
        keys = ("lastTime", "lastCount", "flags", "flagsMask", "loadCount")
        values = [params.get(k) for k in keys]
        if not all(_is_int(v) for v in values):
            raise _Fault(p.ERR_INVALID_INPUT)
        last_time, last_count, flags, mask, count = values
        unit = self._unit_for(params.get("itemId"))
        if last_count > 10_000 or last_count < 1:
            raise _Fault(p.ERR_INVALID_INPUT)
        loaded = unit.select(0, last_time, flags, mask)[-last_count:]
        if not loaded:
            raise _Fault(p.ERR_INVALID_INPUT)
        return self._load(unit, loaded, count, session)

    def _get_messages(self, params: dict[str, Any], session: FakeSession) -> list[dict[str, Any]]:
        start, end = params.get("indexFrom"), params.get("indexTo")
        if not _is_int(start) or not _is_int(end):
            raise _Fault(p.ERR_INVALID_INPUT)
        return session.loader[start : end + 1]

    def _unload(self, params: dict[str, Any], session: FakeSession) -> dict[str, Any]:
        session.loader = []
        return {}

    def _update_data_flags(self, params: dict[str, Any], session: FakeSession) -> list[Any]:
        spec = params.get("spec")
        if not isinstance(spec, list):
            raise _Fault(p.ERR_INVALID_INPUT)
        out: list[Any] = []
        for entry in spec:
            if not isinstance(entry, dict) or not _is_int(entry.get("flags")):
                raise _Fault(p.ERR_INVALID_INPUT)
            flags, mode, kind, data = (
                entry["flags"],
                entry.get("mode", 0),
                entry.get("type"),
                entry.get("data"),
            )
            if kind == "type" and data == "avl_unit":
                ids = [u.id for u in self.units.values() if not u.denied]
            elif kind == "id" and _is_int(data):
                ids = [data]
            elif kind == "col" and isinstance(data, list):
                ids = [i for i in data if _is_int(i)]
            else:
                raise _Fault(p.ERR_INVALID_INPUT)
            for unit_id in ids:
                unit = self.units.get(unit_id)
                if unit is None or unit.denied:
                    continue
                if mode == 2 or flags == 0:  # remove
                    session.subscribed.discard(unit_id)
                    continue
                session.subscribed.add(unit_id)
                out.append({"i": unit_id, "d": self._item(unit, flags), "f": flags})
        return out

    _services: dict[str, Callable[[FakeWialon, dict[str, Any], FakeSession], Any]] = {
        p.SEARCH_ITEMS: _search_items,
        p.SEARCH_ITEM: _search_item,
        p.LOAD_INTERVAL: _load_interval,
        p.LOAD_LAST: _load_last,
        p.GET_MESSAGES: _get_messages,
        p.UNLOAD: _unload,
        p.UPDATE_DATA_FLAGS: _update_data_flags,
    }

    # -- events ------------------------------------------------------------------------------
    def _queue_event(self, unit_id: int, event: dict[str, Any]) -> None:
        for session in self.sessions.values():
            if unit_id in session.subscribed:
                session.events.append(event)

    def _update_event(self, unit: str | int, changed: dict[str, Any]) -> None:
        unit_id = int(unit)
        self._queue_event(unit_id, {"i": unit_id, "t": "u", "d": changed})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _has_heavy(params: Any) -> bool:
    calls: Iterable[Any] = params.get("params", ()) if isinstance(params, dict) else params or ()
    if not isinstance(calls, list):
        return False
    return any(isinstance(c, dict) and c.get("svc") in p.HEAVY_SERVICES for c in calls)


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), 200, media_type=JSON)
