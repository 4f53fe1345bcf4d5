"""Test helpers: validators of Startrack payloads and a receiver that records requests.

The validators check a parsed body against Startrack's webhook documentation — every
required key, no unknown key, each value's JSON type (integer, float, text, null where
allowed) and format — and return the problems found, an empty list when it is valid::

    problems = validate_json1(orjson.loads(body))
    assert not problems, problems

``Receiver`` is a Starlette app answering ``POST /json1``, ``/json2`` and ``/alerts``: it
validates and records every request, and its switches (``status``, ``retry_after``,
``hang``) can be changed while it runs to test failures.  ``serve_receiver`` serves it on
a free loopback port::

    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        ...  # point a sink at f"{url}/json1", then check receiver.received("/json1")
        nursery.cancel_scope.cancel()  # stops the server (a receiver that is down)

This module is shipped with the plugin so the hub's own end-to-end tests can use it; the
running hub never imports it.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gpshub_startrack_relay.formats import MAX_JSON_SAFE_INT
from gpshub_startrack_relay.times import EpochUnit
from hub.testing import serve_app

EVENT_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0$")
SYSTEM_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
COORD_TEXT_RE = re.compile(r"^-?\d{1,3}(\.\d+)?$")
ODOMETER_TEXT_RE = re.compile(r"^-?\d+ km$")
DATE_RANGES: dict[str, tuple[int, int]] = {  # 1973-03-03 … 5138-11-16 in each unit
    "ms": (10**11, 10**14),
    "s": (10**8, 10**11),
}
JSON2_LAT_MAX = 9_000_000
JSON2_LON_MAX = 18_000_000

Check = Callable[[Any], str | None]
"""Returns what is wrong with a value, or ``None`` when it is acceptable."""


# -- value checks ----------------------------------------------------------------------------
def json_type(value: Any) -> str:
    """How JSON would call ``value``'s type, with the value: ``a float (1.5)``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value!r})"
    if isinstance(value, str):
        return f"text ({value[:40]!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _within(value: float, lo: float | None, hi: float | None) -> str | None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return f"must be within [{lo}, {hi}], not {value}"
    return None


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    def check(value: Any) -> str | None:
        if not _is_int(value):
            return f"must be an integer, not {json_type(value)}"
        return _within(value, lo, hi)

    return check


def floating(lo: float | None = None, hi: float | None = None) -> Check:
    """A float (a JSON number with a fraction part or exponent)."""

    def check(value: Any) -> str | None:
        if not (isinstance(value, float) and math.isfinite(value)):
            return f"must be a float, not {json_type(value)}"
        return _within(value, lo, hi)

    return check


def number(value: Any) -> str | None:
    """Any finite JSON number, integer or float."""
    return None if _is_number(value) else f"must be a number, not {json_type(value)}"


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, not {json_type(value)}"


def text(pattern: re.Pattern[str] | None = None) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"must be text, not {json_type(value)}"
        if pattern is not None and not pattern.match(value):
            return f"{value!r} does not match {pattern.pattern}"
        return None

    return check


def nullable(inner: Check) -> Check:
    def check(value: Any) -> str | None:
        return None if value is None else inner(value)

    return check


def one_of(*checks: Check) -> Check:
    def check(value: Any) -> str | None:
        found = [c(value) for c in checks]
        if any(f is None for f in found):
            return None
        return " or ".join(f for f in found if f)

    return check


def list_of(inner: Check) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return f"must be a list, not {json_type(value)}"
        for i, element in enumerate(value):
            problem = inner(element)
            if problem:
                return f"[{i}] {problem}"
        return None

    return check


def event_time(value: Any) -> str | None:
    """``2016-09-08T17:42:14+0``: UTC, to the second, a real date."""
    problem = text(EVENT_TIME_RE)(value)
    if problem:
        return problem
    try:
        datetime.strptime(value[:-2], "%Y-%m-%dT%H:%M:%S")
    except ValueError as exc:
        return f"{value!r} is not a date: {exc}"
    return None


def system_time(value: Any) -> str | None:
    """``2016-09-08T11:42:15.411-06:00``: milliseconds and an offset, a real date."""
    problem = text(SYSTEM_TIME_RE)(value)
    if problem:
        return problem
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        return f"{value!r} is not a date: {exc}"
    return None


def ip_address(value: Any) -> str | None:
    """An IPv4 or IPv6 address as text, or empty text when it is unknown."""
    problem = text()(value)
    if problem or value == "":
        return problem
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"{value[:60]!r} is not an IP address"
    return None


def coordinate_text(limit: float) -> Check:
    """A coordinate as a decimal number in text (``"15.280898"``) within ±``limit``."""

    def check(value: Any) -> str | None:
        problem = text(COORD_TEXT_RE)(value)
        if problem:
            return problem
        return _within(float(value), -limit, limit)

    return check


def epoch_date(unit: EpochUnit) -> Check:
    """A Unix time as an integer in ``unit`` (a plausible one, so the unit is right)."""
    lo, hi = DATE_RANGES[unit]

    def check(value: Any) -> str | None:
        if not _is_int(value):
            return f"must be an integer ({unit} since 1970), not {json_type(value)}"
        if not lo <= value < hi:
            return f"{value} is not a time in {unit} since 1970"
        return None

    return check


def check_object(
    obj: Any,
    required: Mapping[str, Check],
    optional: Mapping[str, Check] | None = None,
    *,
    where: str = "",
) -> list[str]:
    """The problems of ``obj`` as an object with the ``required`` keys, maybe some of the
    ``optional`` ones and nothing else; each value checked by its key's check."""
    prefix = f"{where}: " if where else ""
    if not isinstance(obj, dict):
        return [f"{prefix}must be an object, not {json_type(obj)}"]
    optional = optional or {}
    problems = [f"{prefix}missing field {key!r}" for key in required if key not in obj]
    problems += [
        f"{prefix}unknown field {key!r}"
        for key in obj
        if key not in required and key not in optional
    ]
    for key, value in obj.items():
        check = required.get(key) or optional.get(key)
        problem = check(value) if check else None
        if problem:
            problems.append(f"{prefix}{key} {problem}")
    return problems


# -- the three payloads ----------------------------------------------------------------------
_IDS = list_of(integer())
_LOCATION_ID_FIELDS: dict[str, Check] = {
    "code": integer(0),
    "vid": integer(),
    "remote_id": text(),
    "license_plate": text(),
    "device_id": integer(0, MAX_JSON_SAFE_INT),
    "ip": ip_address,
}

JSON1_FIELDS: dict[str, Check] = {
    **_LOCATION_ID_FIELDS,
    "port": integer(-1, 65535),
    "lon": floating(-180.0, 180.0),
    "lat": floating(-90.0, 90.0),
    "valid_position": boolean,
    "event_time": event_time,
    "system_time": system_time,
    "kmph": integer(0),
    "placename": text(),
    "poi_ids": _IDS,
    "poi_group_ids": _IDS,
    "alerts_count": integer(0),
    "route_id": nullable(integer()),
    "client_id": integer(),
    "head": integer(0, 359),
    "odometer": number,
    "sys_odometer": number,
    "hourmeter": number,
    "sys_hourmeter": number,
}
"""Every field of a JSON 1 Location Data Object, in Startrack's order."""

JSON2_FIELDS: dict[str, Check] = {
    **_LOCATION_ID_FIELDS,
    "lon": integer(-JSON2_LON_MAX, JSON2_LON_MAX),
    "lat": integer(-JSON2_LAT_MAX, JSON2_LAT_MAX),
    "event_time": event_time,
    "system_time": system_time,
    "mph": integer(0),
}
"""Every field of an object in JSON 2's list, in Startrack's order."""


def _alert_fields(unit: EpochUnit) -> tuple[dict[str, Check], dict[str, Check]]:
    required: dict[str, Check] = {
        "eventId": integer(),
        "messageId": text(),
        "vehicle": text(),
        "date": epoch_date(unit),
        "place": text(),
        "lat": coordinate_text(90.0),
        "lon": coordinate_text(180.0),
        "poiContact": text(),
        "driver": text(),
        "odometer": one_of(number, text(ODOMETER_TEXT_RE)),
        "ignOnTime": number,
        "ruleOwner": text(),
        "ruleOwnerId": integer(),
        "urId": integer(),
    }
    optional: dict[str, Check] = {
        "event": text(),
        "poiName": text(),
        "poiNames": list_of(text()),
        "poiId": integer(),
        "poiIds": _IDS,
        "poiGroupIds": _IDS,
        "startDate": epoch_date(unit),
        "distanceFromPoi": text(),
        "metersFromPoi": number,
        "odometerUnits": text(),
        "vehicle_tags": list_of(text()),
    }
    return required, optional


ALERT_FIELDS, ALERT_OPTIONAL_FIELDS = _alert_fields("ms")
"""The fields every Alert Data Object has, and those only some alert types have."""


def validate_json1(obj: Any) -> list[str]:
    """What is wrong with a JSON 1 body (one Location Data Object); empty when valid."""
    return check_object(obj, JSON1_FIELDS)


def validate_json2(body: Any) -> list[str]:
    """What is wrong with a JSON 2 body (``[n, [objects]]``); empty when valid."""
    if not (isinstance(body, list) and len(body) == 2):
        return [f"must be a list [n, [objects]], not {json_type(body)}"]
    count, objects = body
    if not isinstance(objects, list):
        return [f"[1] must be the list of objects, not {json_type(objects)}"]
    problems = []
    if not _is_int(count):
        problems.append(f"[0] n must be an integer, not {json_type(count)}")
    elif count != len(objects):
        problems.append(f"[0] n is {count} but the list holds {len(objects)} objects")
    if not objects:
        problems.append("[1] the list of objects is empty")
    for i, obj in enumerate(objects):
        problems += check_object(obj, JSON2_FIELDS, where=f"[1][{i}]")
    return problems


def validate_alert(obj: Any, *, date_unit: EpochUnit = "ms") -> list[str]:
    """What is wrong with an Alert Data Object whose dates are in ``date_unit``; empty
    when valid.  A numeric ``odometer`` needs ``odometerUnits``; a text one ("2001 km")
    carries its unit and comes without."""
    required, optional = _alert_fields(date_unit)
    problems = check_object(obj, required, optional)
    if not (isinstance(obj, dict) and "odometer" in obj):
        return problems
    units = "odometerUnits" in obj
    if isinstance(obj["odometer"], str) and units:
        problems.append("odometerUnits is given with a text odometer that has its unit")
    elif not isinstance(obj["odometer"], str) and not units:
        problems.append("odometerUnits is missing for a numeric odometer")
    return problems


VALIDATORS: dict[str, Callable[..., list[str]]] = {
    "/json1": validate_json1,
    "/json2": validate_json2,
    "/alerts": validate_alert,
}
"""The receiver's paths and the validator of each."""


# -- the receiver ----------------------------------------------------------------------------
class Received(NamedTuple):
    """One request as recorded: its ``webhook-id``, its parsed body (``None`` when it is
    not JSON) and the problems the validator found."""

    webhook_id: str | None
    body: Any
    problems: list[str]


@dataclass(frozen=True, slots=True)
class Recorded:
    """Everything about one request: where it went, its headers (lower-case names), its
    raw body (to verify a signature), what was found and the status answered."""

    path: str
    headers: dict[str, str]
    raw: bytes
    received: Received
    status: int


class Receiver:
    """A Startrack webhook receiver for tests, recording every request.

    Switches, settable at any time: ``status`` (the HTTP status answered, 200 by
    default), ``retry_after`` (a ``Retry-After`` header value to add, or ``None``),
    ``hang`` (a ``trio.Event`` each request waits for, or seconds to wait, before it is
    answered; ``None`` answers at once) and ``date_unit`` (the alert dates' unit the
    validator expects), and ``decide`` (a callable ``(path, body) -> status | None``
    whose answer, when not ``None``, overrides ``status`` for that request: to refuse
    one vehicle's messages, say).  A request is recorded as it arrives, with the status
    it is (or, had the client waited, would have been) answered.  ``times`` holds each
    request's arrival as ``trio.current_time()``.

    Across its run it also checks that locations identify their devices consistently:
    one ``device_id`` per ``vid``, and never one ``device_id`` for two ``vid``
    (``device_ids`` holds what each ``vid`` came with first).
    """

    def __init__(self, *, date_unit: EpochUnit = "ms") -> None:
        self.status = 200
        self.retry_after: str | None = None
        self.hang: trio.Event | float | None = None
        self.date_unit: EpochUnit = date_unit
        self.decide: Callable[[str, Any], int | None] | None = None
        self.requests: list[Recorded] = []
        self.device_ids: dict[int, int] = {}  # vid -> the device_id it came with first
        self._vids: dict[int, int] = {}  # device_id -> the vid it came with first
        self.times: list[float] = []
        self._arrived = trio.Event()
        self.app = Starlette(
            routes=[Route(path, self._handle, methods=["POST"]) for path in VALIDATORS]
        )

    # -- what was received
    def received(self, path: str | None = None) -> list[Received]:
        """Every request to ``path`` (or to any path), in arrival order, answered with
        success or not."""
        return [r.received for r in self.requests if path is None or r.path == path]

    def delivered(self, path: str | None = None) -> list[Received]:
        """The requests to ``path`` (or any) that were answered with a 2xx status."""
        return [
            r.received
            for r in self.requests
            if (path is None or r.path == path) and 200 <= r.status < 300
        ]

    def count(self, path: str | None = None) -> int:
        """How many requests came to ``path`` (or to any path)."""
        return len(self.received(path))

    @property
    def counts(self) -> dict[str, int]:
        """Requests per path, every path listed."""
        return {path: self.count(path) for path in VALIDATORS}

    def problems(self) -> list[str]:
        """Every problem found, as ``"/json1 #1: missing field 'vid'"`` (#1 is the first
        request to that path)."""
        out: list[str] = []
        seen: dict[str, int] = {}
        for r in self.requests:
            seen[r.path] = seen.get(r.path, 0) + 1
            out += [f"{r.path} #{seen[r.path]}: {p}" for p in r.received.problems]
        return out

    async def wait_for(self, count: int, path: str | None = None) -> None:
        """Return once ``count`` requests came to ``path`` (or any); bound it with
        ``trio.fail_after``."""
        while self.count(path) < count:
            await self._arrived.wait()

    def _identities(self, path: str, body: Any) -> list[str]:
        """Problems of the locations in ``body`` with the device ids seen before."""
        if path == "/json1":
            objects = [("", body)]
        elif path == "/json2" and isinstance(body, list) and len(body) == 2:
            listed = body[1] if isinstance(body[1], list) else []
            objects = [(f"[1][{i}]: ", obj) for i, obj in enumerate(listed)]
        else:
            return []
        problems = []
        for where, obj in objects:
            if not isinstance(obj, dict):
                continue
            vid, number = obj.get("vid"), obj.get("device_id")
            if not (_is_int(vid) and _is_int(number)):
                continue  # the validator says what is wrong
            first = self.device_ids.setdefault(vid, number)
            owner = self._vids.setdefault(number, vid)
            if first != number:
                problems.append(
                    f"{where}vid {vid} came with device_id {first} before, now {number}"
                )
            if owner != vid:
                problems.append(f"{where}device_id {number} is vid {owner}'s, not vid {vid}'s")
        return problems

    # -- the app
    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        raw = await request.body()
        body: Any = None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            problems = [f"the body is not JSON: {exc}"]
        else:
            validate = VALIDATORS[path]
            problems = (
                validate(body, date_unit=self.date_unit) if path == "/alerts" else validate(body)
            )
            problems += self._identities(path, body)
        status = self.status
        if self.decide is not None:
            decided = self.decide(path, body)
            status = status if decided is None else decided
        self.times.append(trio.current_time())
        self.requests.append(
            Recorded(
                path=path,
                headers={k.lower(): v for k, v in request.headers.items()},
                raw=raw,
                received=Received(request.headers.get("webhook-id"), body, problems),
                status=status,
            )
        )
        self._arrived.set()
        self._arrived = trio.Event()
        hang = self.hang
        if isinstance(hang, trio.Event):
            await hang.wait()
        elif hang is not None:
            await trio.sleep(hang)
        headers = {"retry-after": self.retry_after} if self.retry_after is not None else None
        content = b"ok" if 200 <= status < 300 else f"receiver answers {status}".encode()
        return Response(content, status_code=status, headers=headers, media_type="text/plain")


async def serve_receiver(
    receiver: Receiver,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``receiver`` on ``port`` (0: a free one) of ``host`` until cancelled; report
    its base URL (``http://127.0.0.1:PORT``) through ``task_status.started``."""
    await serve_app(receiver.app, host=host, port=port, task_status=task_status)
