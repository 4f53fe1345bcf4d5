"""``FakeTracking3D``: an in-memory 3D Tracking server for tests and benchmarks.

It answers the calls public 3D Tracking clients make (reference section 4; every field
there is [C] or [I], so each guess is a switch here):

* ``Authentication/UserAuthenticate`` (GET or POST; ``UserName``/``Password`` in the query
  string or a form body): ``UserIdGuid`` + a GUID ``SessionId`` that lives
  ``session_ttl_s`` from its creation; a wrong password answers HTTP 200 with
  ``Status.Result "Error"`` and ``login_error_code``;
* every other call needs ``UserIdGuid`` and ``SessionId`` in the query string; an unknown
  or expired session answers ``Status.Result "Error"`` with ``session_error_code``;
* ``Units/Unit/List``; ``Units/LatestPositionsList`` (optional ``UnitUid`` and
  ``LastDateReceivedUtc`` in ``dd MMM yyyy HH:mm:ss``, UTC);
* ``Data/PositionsList`` (``StartId``, ``IncludeInputOutputs``, ``Uid``): records in the
  order the server received them, each with a global increasing id; at most ``max_batch``
  per answer with the ``StartId`` to ask next (last id + 1); without ``StartId``, those
  received in the last 24 h.  Records carry no ``SensorReadings`` unless
  ``feed_readings`` is set;
* ``Data/SensorReadingsList`` (``StartId``, ``Uid``): the sensor readings, paged the same
  way with ids of their own: ``{"SensorReadings": [...], "StartId": N}``.  A reading has
  its unit's ``UnitUid``, the ``Name`` the user gave that sensor on that unit
  (``add_unit(sensor_names=...)``, else ``SENSOR_NAMES``), its ``SensorType``, the value
  as text, a ``MeasurementSign`` and a time without an offset: ``ReadingTimeLocal`` only
  (``reading_times="local"``, as public clients show), ``ReadingTimeUtc`` only
  (``"utc"``), or both.  Each fix adds a ``"Satellite Count"`` reading, one per entry of
  ``readings`` (by type) and one ``Custom`` reading per entry of ``params`` (by name);
  ``add_reading`` adds one on its own (a sensor reported between positions);
* case-insensitive paths, served at the root and under ``/api/v1.0``; string
  ``Ignition``, a per-record ``SpeedMeasure`` (``speed_measure``), satellites only as a
  ``"Satellite Count"`` sensor reading, times without an offset (``*Local`` in
  ``local_offset_h``), no altitude.
* ``strict_start_ids``: refuse (error envelope 40001) a ``StartId`` the server did not
  hand out, as a server might that looks ids up rather than comparing them.

Use it like this::

    fake = FakeTracking3D(now=lambda: hub.clock.now().timestamp())
    truck = fake.add_unit("Truck 07", imei="356307042441013", plate="ABC-1234")
    fake.add_fix(truck, t, 37.98, 23.72, speed_kmh=40.0, ignition=True)
    url = await nursery.start(serve_app, fake.app)      # hub.testing.serve_app
    credentials, options = fake.credentials(url), fake.options(url)
    ...
    assert fake.requests["Data/PositionsList"] == 1

It is a ``hub.fake_upstream.FakeUpstream``: requests are counted by path without its
prefix (``fake.requests["Data/PositionsList"]``) and logged (``fake.calls``); ``delay``
slows every answer; the fault switches queue in order: ``rate_limit``, ``fail``,
``malformed``, ``hang`` and ``platform_error(code=..., message=...)`` (HTTP 200 with an
error ``Status``), each with ``times``, ``path`` and ``after``.  Sessions:
``expire_sessions()``, ``session_ttl_s``; credentials: ``change_password``.

The running hub never imports this module.
"""

from __future__ import annotations

import bisect
import itertools
import json
import secrets
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from hub.fake_upstream import FakeCall, FakeUpstream, FixFields

LATEST_FORMAT = "%d %b %Y %H:%M:%S"
SPEED_DIVISORS = {"kph": 1.0, "km/h": 1.0, "mph": 1.609344, "knots": 1.852}
DEFAULT_USERNAME = "fleet@example.com"
DEFAULT_PASSWORD = "fake-3dt-password"  # noqa: S105 - a fake server's default account
FEED_WINDOW_S = 86_400.0
PREFIX = "api/v1.0/"
PATHS = {
    p.lower(): p
    for p in (
        "Authentication/UserAuthenticate",
        "Units/Unit/List",
        "Units/LatestPositionsList",
        "Data/PositionsList",
        "Data/SensorReadingsList",
    )
}
OK_STATUS = {"Result": "ok", "ErrorCode": None, "Message": None}
SATELLITE_COUNT = "Satellite Count"
SENSOR_NAMES = {
    SATELLITE_COUNT: "Satellites",
    "External Battery": "Ext. power",
    "Internal Battery": "Battery",
    "GSM Signal Strength": "GSM",
    "Fuel Level": "Fuel",
    "Temperature": "Temperature",
}
"""The ``Name`` a sensor of each ``SensorType`` has unless its unit names it otherwise."""
SENSOR_SIGNS = {
    "External Battery": "V",
    "Internal Battery": "V",
    "Fuel Level": "L",
    "Temperature": "°C",
}
"""The ``MeasurementSign`` of each ``SensorType`` (none for the others)."""


def wire_time(t: float) -> str:
    """Epoch seconds as 3D Tracking writes times: ISO-8601 without an offset."""
    moment = datetime.fromtimestamp(t, UTC).replace(tzinfo=None)
    if moment.microsecond:
        return moment.isoformat(timespec="milliseconds")
    return moment.isoformat(timespec="seconds")


@dataclass
class FakeUnit:
    """A unit of the account and its newest record (by GPS time)."""

    uid: str
    name: str
    imei: str | None
    information: str | None
    imei_key: str = "Imei"
    unit_type: str = "Vehicle"
    group: str = "Fleet"
    latest_t: float | None = None
    latest: dict[str, Any] | None = None
    latest_received: float | None = None
    sensor_names: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"Uid": self.uid, "Name": self.name, self.imei_key: self.imei}

    def as_json(self) -> dict[str, Any]:
        return {
            "Uid": self.uid,
            "Name": self.name,
            self.imei_key: self.imei,
            "Status": "Active",
            "GroupName": self.group,
            "CompanyName": "ACME Logistics",
            "PhoneNumber": None,
            "UnitType": self.unit_type,
            "Information": self.information,
            "CreatedDateTimeUtc": "2021-03-02T10:11:12",
            "DriverUid": None,
            "LastReportedTimeUTC": None if self.latest_t is None else wire_time(self.latest_t),
            "LastReportedTimeLocal": None,
            "OdometerDetails": None,
            "Position": None,
        }


@dataclass
class _Feed:
    """The account's records in the order received: ids, encoded JSON, and indexes."""

    first_id: int
    units: list[str] = field(default_factory=list)
    encoded: list[bytes] = field(default_factory=list)
    plain: list[bytes] = field(default_factory=list)  # without InputOutputs
    received_max: list[float] = field(default_factory=list)  # running max: bisectable

    @property
    def next_id(self) -> int:
        return self.first_id + len(self.encoded)

    def append(self, unit: str, encoded: bytes, received: float, plain: bytes = b"") -> None:
        self.units.append(unit)
        self.encoded.append(encoded)
        self.plain.append(plain or encoded)
        top = self.received_max[-1] if self.received_max else received
        self.received_max.append(max(top, received))


class FakeTracking3D(FakeUpstream):
    """An in-memory 3D Tracking server (see the module docstring)."""

    name = "tracking3d"

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.time,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        session_ttl_s: float = 86_400.0,
        session_error_code: int = 50001,
        session_error_message: str = "Session is invalid or has expired",
        login_error_code: int = 10001,
        max_batch: int = 1000,
        first_id: int = 812_345_000,
        speed_measure: str = "kph",
        feed_readings: bool = False,
        local_offset_h: float = 3.0,
        readings_first_id: int = 4_200_000_000,
        reading_times: str = "local",
    ) -> None:
        super().__init__(now=now)
        self.username = username
        self.password = password
        self.user_id_guid = str(uuid.uuid4())
        self.session_ttl_s = session_ttl_s
        self.session_error_code = session_error_code
        self.session_error_message = session_error_message
        self.login_error_code = login_error_code
        self.max_batch = max_batch
        self.speed_measure = speed_measure
        """The ``SpeedMeasure`` of new records (``kph``, ``km/h``, ``mph``, ``knots``)."""
        self.feed_readings = feed_readings
        """Whether feed records carry ``SensorReadings`` too (public clients show none)."""
        self.reading_times = reading_times
        """Which times a reading has: ``"local"``, ``"utc"`` or ``"both"``."""
        self.strict_start_ids = False
        """Refuse a ``StartId`` that no answer handed out."""
        self.local_offset = timedelta(hours=local_offset_h)
        self.units: dict[str, FakeUnit] = {}
        self.sessions: dict[str, float] = {}  # session id -> creation time
        self.logins = 0
        self._feed = _Feed(first_id)
        self._readings = _Feed(readings_first_id)
        self._handed: set[int] = set()
        self._uids = itertools.count(0x5CE7C3)

    def routes(self) -> list[BaseRoute]:
        return [Route("/{path:path}", self._dispatch, methods=["GET", "POST"])]

    def request_name(self, call: FakeCall) -> str:
        """A known call by its name (``Data/PositionsList``), in any case, with or without
        the ``api/v1.0/`` prefix; anything else by its path."""
        raw = call.path.strip("/")
        return PATHS.get(raw.lower().removeprefix(PREFIX), raw)

    # -- account and units ---------------------------------------------------------------
    def credentials(self, url: str) -> dict[str, Any]:
        """Good credentials of a gpshub ``tracking3d`` connection to this fake."""
        return {"username": self.username, "password": self.password}

    def options(self, url: str) -> dict[str, Any]:
        """The options pointing a connection at this fake served at ``url``."""
        return {"base_url": f"{url.rstrip('/')}/api/v1.0"}

    def change_password(self, password: str) -> None:
        """Logins with the old password are refused from now on (sessions stay)."""
        self.password = password

    def add_unit(
        self,
        name: str,
        *,
        imei: str | None = None,
        plate: str | None = None,
        information: str | None = None,
        imei_key: str = "Imei",
        unit_type: str = "Vehicle",
        sensor_names: dict[str, str] | None = None,
    ) -> str:
        """Add a unit; its ``Uid`` (short upper-case hex).  ``plate`` goes into
        ``Information`` (3D Tracking has no plate field); ``imei_key`` is ``Imei`` or
        ``IMEI``; ``sensor_names`` maps a ``SensorType`` to the name the user gave that
        sensor on this unit."""
        uid = f"{next(self._uids):06X}"
        self.units[uid] = FakeUnit(
            uid,
            name,
            imei,
            plate if plate is not None else information,
            imei_key,
            unit_type,
            sensor_names=dict(sensor_names or {}),
        )
        return uid

    def rename_unit(self, unit: str, name: str) -> None:
        self.units[unit].name = name

    def store_fix(
        self,
        unit: str,
        fix: FixFields,
        *,
        readings: dict[str, Any] | None = None,
        speed_measure: str | None = None,
        inputs: dict[str, bool] | None = None,
        odometer_km: float | None = None,
        engine_s: float | None = None,
        address: str | None = None,
    ) -> dict[str, Any]:
        """Append a record with GPS time ``t`` to the feed, received at ``received``
        (default now): a late record is one with an old ``t`` added now.  ``altitude`` is
        dropped (3D Tracking has none); ``satellites``, ``readings`` (by ``SensorType``:
        ``{"Fuel Level": 55}``) and ``params`` (custom sensors by name) become sensor
        readings taken at ``t``, received with the record; ``inputs``
        (``{"Input1": True}``) the ``InputOutputs``.  Returns the record as served."""
        received = self.now() if fix.received is None else fix.received
        owner = self.units[unit]
        measure = speed_measure or self.speed_measure
        speed = fix.speed_kmh / SPEED_DIVISORS.get(measure.lower(), 1.0)
        local = datetime.fromtimestamp(fix.t, UTC).replace(tzinfo=None) + self.local_offset
        record: dict[str, Any] = {
            "Unit": owner.summary(),
            "Latitude": fix.lat,
            "Longitude": fix.lon,
            "Address": address or "",
            "Speed": round(speed, 6),
            "SpeedMeasure": measure,
            "Heading": fix.course,
            "Ignition": "" if fix.ignition is None else ("On" if fix.ignition else "Off"),
            "Odometer": odometer_km,
            "EngineTime": engine_s,
            "EngineStatus": "Moving" if fix.speed_kmh > 3 else "Stopped",
            "Valid": fix.valid,
            "ServerTimeUTC": wire_time(received),
            "GPSTimeUtc": wire_time(fix.t),
            "GPSTimeLocal": local.isoformat(timespec="seconds"),
            "PointOfInterest": None,
        }
        typed = {} if fix.satellites is None else {SATELLITE_COUNT: fix.satellites}
        typed.update(readings or {})
        rows = [self._reading(owner, fix.t, kind, value) for kind, value in typed.items()]
        rows += [
            self._reading(owner, fix.t, "Custom", value, name=key)
            for key, value in (fix.params or {}).items()
        ]
        if self.feed_readings:
            record["SensorReadings"] = rows
        plain = json.dumps(record, separators=(",", ":")).encode()
        record["InputOutputs"] = [
            {"SystemName": k, "Description": k, "UserDescription": k, "Active": v}
            for k, v in (inputs or {}).items()
        ]
        self._feed.append(unit, json.dumps(record, separators=(",", ":")).encode(), received, plain)
        for row in rows:
            self._readings.append(unit, json.dumps(row, separators=(",", ":")).encode(), received)
        if owner.latest_t is None or fix.t >= owner.latest_t:
            owner.latest_t, owner.latest_received = fix.t, received
            owner.latest = {**record, "SensorReadings": rows}
        return record

    def add_reading(
        self,
        unit: str,
        t: float,
        sensor_type: str,
        value: Any,
        *,
        name: str | None = None,
        sign: str | None = None,
        received: float | None = None,
    ) -> dict[str, Any]:
        """Append one sensor reading taken at ``t`` (no position with it), received at
        ``received`` (default now); returns it as served."""
        row = self._reading(self.units[unit], t, sensor_type, value, name=name, sign=sign)
        received = self.now() if received is None else received
        self._readings.append(unit, json.dumps(row, separators=(",", ":")).encode(), received)
        return row

    def _reading(
        self,
        unit: FakeUnit,
        t: float,
        kind: str,
        value: Any,
        *,
        name: str | None = None,
        sign: str | None = None,
    ) -> dict[str, Any]:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        moment = datetime.fromtimestamp(t, UTC).replace(tzinfo=None)
        row: dict[str, Any] = {
            "UnitUid": unit.uid,
            "Name": name or unit.sensor_names.get(kind) or SENSOR_NAMES.get(kind, kind),
            "Value": text,
            "MeasurementSign": SENSOR_SIGNS.get(kind, "") if sign is None else sign,
        }
        if self.reading_times in ("local", "both"):
            row["ReadingTimeLocal"] = (moment + self.local_offset).isoformat(timespec="seconds")
        if self.reading_times in ("utc", "both"):
            row["ReadingTimeUtc"] = moment.isoformat(timespec="seconds")
        row["SensorType"] = kind
        return row

    @property
    def feed_size(self) -> int:
        return len(self._feed.encoded)

    @property
    def readings_size(self) -> int:
        return len(self._readings.encoded)

    # -- faults --------------------------------------------------------------------------
    def platform_response(
        self, call: FakeCall, *, code: int = 50000, message: str = "Internal error"
    ) -> Response:
        """``platform_error``: HTTP 200 with ``Status.Result "Error"``."""
        return self._error(code, message)

    def expire_sessions(self) -> None:
        """Every session ends now (as after its lifetime, or a revocation)."""
        self.sessions.clear()

    # -- the API ---------------------------------------------------------------------------
    async def _dispatch(self, request: Request) -> Response:
        raw = request.path_params["path"].strip("/")
        name = PATHS.get(raw.lower().removeprefix(PREFIX))
        if name is None:
            return Response(b"<html><body>Not Found</body></html>", 404, media_type="text/html")
        if name == "Authentication/UserAuthenticate":
            return await self._login(request)
        query = request.query_params
        created = self.sessions.get(query.get("SessionId") or "")
        if (
            created is None
            or query.get("UserIdGuid") != self.user_id_guid
            or self.now() - created > self.session_ttl_s
        ):
            return self._error(self.session_error_code, self.session_error_message)
        if name == "Units/Unit/List":
            return self._ok([u.as_json() for u in self.units.values()])
        if name == "Units/LatestPositionsList":
            return self._latest(request)
        if name == "Data/SensorReadingsList":
            return self._page(request, self._readings, b"SensorReadings", self._readings.encoded)
        rows = self._feed.encoded
        if request.query_params.get("IncludeInputOutputs", "").lower() != "true":
            rows = self._feed.plain
        return self._page(request, self._feed, b"Position", rows)

    async def _login(self, request: Request) -> Response:
        values = dict(request.query_params)
        if request.method == "POST" and not values.get("UserName"):
            body = (await request.body()).decode("utf-8", "replace")
            values.update(urllib.parse.parse_qsl(body))
        user, password = values.get("UserName"), values.get("Password")
        if (
            user is None
            or password is None
            or user.strip().lower() != self.username.lower()
            or not secrets.compare_digest(password.encode(), self.password.encode())
        ):
            return self._error(self.login_error_code, "Invalid username or password")
        self.logins += 1
        sid = str(uuid.uuid4())
        self.sessions[sid] = self.now()
        return self._ok({"UserIdGuid": self.user_id_guid, "SessionId": sid})

    def _latest(self, request: Request) -> Response:
        query = request.query_params
        uid = query.get("UnitUid")
        since: float | None = None
        if query.get("LastDateReceivedUtc"):
            try:
                since = (
                    datetime.strptime(query["LastDateReceivedUtc"], LATEST_FORMAT)
                    .replace(tzinfo=UTC)
                    .timestamp()
                )
            except ValueError:
                return self._error(40000, "LastDateReceivedUtc is not in dd MMM yyyy HH:mm:ss")
        out = []
        for unit in self.units.values():
            if uid is not None and unit.uid != uid:
                continue
            if unit.latest is None:
                continue
            if since is not None and (unit.latest_received or 0.0) < since:
                continue
            position = {k: v for k, v in unit.latest.items() if k not in ("Unit", "SensorReadings")}
            out.append(
                {
                    **unit.summary(),
                    "LastReportedTimeUTC": unit.latest["GPSTimeUtc"],
                    "LastReportedTimeLocal": unit.latest["GPSTimeLocal"],
                    "SensorReadings": unit.latest["SensorReadings"],
                    "Position": position,
                }
            )
        return self._ok(out)

    def _page(self, request: Request, feed: _Feed, key: bytes, rows: list[bytes]) -> Response:
        """A page of ``feed`` from ``StartId`` (without: from 24 h back)."""
        query = request.query_params
        text = query.get("StartId")
        if text:
            try:
                start = int(text)
            except ValueError:
                return self._error(40000, "StartId is not a number")
            if self.strict_start_ids and start not in self._handed:
                return self._error(40001, "Invalid StartId")
            index = min(max(start - feed.first_id, 0), len(feed.encoded))
        else:
            index = bisect.bisect_left(feed.received_max, self.now() - FEED_WINDOW_S)
        only = query.get("Uid")
        taken: list[bytes] = []
        end = index
        while end < len(rows) and len(taken) < self.max_batch:
            if only is None or feed.units[end] == only:
                taken.append(rows[end])
            end += 1
        if taken:
            next_id = feed.first_id + end
        elif text:
            next_id = max(int(text), feed.first_id + end)
        else:
            next_id = feed.next_id
        self._handed.add(next_id)
        body = (
            b'{"Status":{"Result":"ok","ErrorCode":null,"Message":null},"Result":{"'
            + key
            + b'":['
            + b",".join(taken)
            + b'],"StartId":'
            + str(next_id).encode()
            + b"}}"
        )
        return self._body(body)

    def _ok(self, result: Any) -> Response:
        return self._body(
            json.dumps({"Status": OK_STATUS, "Result": result}, separators=(",", ":")).encode()
        )

    def _error(self, code: int, message: str) -> Response:
        payload = {
            "Status": {"Result": "Error", "ErrorCode": code, "Message": message},
            "Result": None,
        }
        return self._body(json.dumps(payload).encode())

    def _body(self, body: bytes) -> Response:
        return Response(body, media_type="application/json")
