"""``FakeFlespi``: an in-memory flespi REST API for tests and benchmarks.

It serves what the plugin uses, as flespi documents it (``upstream-apis.md`` section 2):

* ``Authorization: FlespiToken <token>`` on every request (401 without the right token,
  403 when the token lacks gw/devices access);
* ``GET /auth/info``;
* ``GET /gw/devices/{selector}`` with ``?fields=``: selectors ``all``, ids, comma lists of
  ids, ``field=<wildcard mask>`` (``configuration.ident=35630*``) and ``{expression}``;
* ``GET /gw/devices/{selector}/messages?data=<url-encoded JSON>`` with ``from``, ``to``
  (inclusive, floats allowed), ``count``, ``reverse``, ``fields`` and ``filter`` (a flespi
  expression, see ``gpshub_flespi.expressions``): messages of every selected device merged
  and ordered by ``timestamp``; an unknown key (``limit``!) or bad JSON gets 400 with a
  schema hint in ``reason``; messages older than a device's ``messages_ttl`` are gone;
* ``GET /gw/devices/{selector}/telemetry/all`` (or ``/telemetry/a,b``): the latest value
  of each parameter as ``{"value": ..., "ts": ...}``, kept whatever the messages TTL;
* answers in the ``{"result": [...]}`` envelope, errors as ``{"errors": [{"code",
  "reason"}]}``; unknown ids in a multi-selector as ``errors`` entries with an ``id``
  next to the result (``missing_mode = "errors"``) or as a 404 (``"404"``).

A unit out of coverage: ``hold(unit)`` keeps its messages in its black box, ``release(unit)``
uploads them all at once, received then.

It is a ``hub.fake_upstream.FakeUpstream``: the base's fault switches queue in order
(``fail``, ``rate_limit``, ``malformed``, ``hang``, ``platform_error(status, code,
reason)`` for flespi's own ``errors`` body) and ``delay`` (``slow``) slows every answer;
``expire_sessions()`` makes the token stop working, ``set_token()`` sets another,
``deny_access()`` takes its gw/devices ACL away (403), ``requests_per_minute`` answers 429
beyond a per-minute budget.  ``requests`` counts requests by endpoint
(``/gw/devices/messages``), ``calls`` logs them::

    fake = FakeFlespi(now=lambda: hub.clock.now().timestamp())
    unit = fake.add_unit("Truck 7", imei="356307042441013", plate="ABC-123")
    fake.add_fix(unit, t, 14.6, -90.5, speed_kmh=42.0)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_app, fake.app)   # or await gpshub_serve(fake)
        credentials, options = fake.credentials(url), fake.options(url)

This module ships with the plugin so other code (the hub's benchmark) can use it; the
running hub never imports it.
"""

from __future__ import annotations

import heapq
import math
import re
import time
import urllib.parse
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from itertools import islice
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gpshub_flespi.expressions import ExpressionError, compile_expression, compile_filter
from hub.fake_upstream import FakeCall, FakeUpstream, FixFields

DEFAULT_TOKEN = "FakeFlespiToken0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"  # noqa: S105 (a test token of the fake)
MESSAGE_KEYS = frozenset(
    {"from", "to", "count", "reverse", "fields", "filter", "method", "generalize"}
)
FIRST_DEVICE_ID = 4_200_001
DEFAULT_TTL = 31_536_000  # flespi's default messages TTL: one year
ENDPOINT = re.compile(r"/gw/devices/[^/]+(/messages|/telemetry)?(/[^/]+)?")

Handler = Callable[[Request], Awaitable[Response]]


class _Refusal(Exception):
    """An error answer: HTTP ``status`` with flespi's ``errors`` body."""

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        code: int = 1,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.errors = [{"code": code, "reason": reason, **extra}]
        self.headers = dict(headers or {})


@dataclass
class FakeDevice:
    """One flespi device: its properties, its messages (sorted by ``timestamp``) and its
    telemetry (the latest value and time of every parameter)."""

    id: int
    name: str
    ident: str | None
    metadata: dict[str, Any]
    device_type_id: int = 744
    messages_ttl: int = DEFAULT_TTL
    connected: bool = True
    cid: int = 123456
    times: list[float] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    telemetry: dict[str, dict[str, Any]] = field(default_factory=dict)

    def item(self) -> dict[str, Any]:
        """The device as ``GET /gw/devices`` shows it (every field)."""
        configuration: dict[str, Any] = {"settings_polling": "once"}
        if self.ident is not None:
            configuration["ident"] = self.ident
        return {
            "id": self.id,
            "name": self.name,
            "cid": self.cid,
            "device_type_id": self.device_type_id,
            "configuration": configuration,
            "enabled": True,
            "messages_ttl": self.messages_ttl,
            "messages_rotate": 0,
            "media_ttl": 86400,
            "media_rotate": 0,
            "metadata": dict(self.metadata),
            "connected": self.connected,
        }

    def store(self, sort_time: float, message: dict[str, Any]) -> None:
        i = bisect_right(self.times, sort_time)
        self.times.insert(i, sort_time)
        self.messages.insert(i, message)

    def window(self, lo: float, hi: float, now: float) -> tuple[int, int]:
        """The index range of the stored messages with ``lo <= timestamp <= hi`` that
        the TTL has not removed yet."""
        if self.messages_ttl <= 0:
            return 0, 0
        lo = max(lo, now - self.messages_ttl)
        return bisect_left(self.times, lo), bisect_right(self.times, hi)

    def update_telemetry(self, message: Mapping[str, Any]) -> None:
        ts = message.get("timestamp")
        if not isinstance(ts, int | float) or isinstance(ts, bool):
            return
        telemetry = self.telemetry
        for key, value in message.items():
            old = telemetry.get(key)
            if old is None or old["ts"] <= ts:
                telemetry[key] = {"value": value, "ts": ts}
        if "position.latitude" in message and "position.longitude" in message:
            old = telemetry.get("position")
            if old is None or old["ts"] <= ts:
                composite = {
                    key.removeprefix("position."): value
                    for key, value in message.items()
                    if key.startswith("position.")
                }
                telemetry["position"] = {"value": composite, "ts": ts}


class FakeFlespi(FakeUpstream):
    """A flespi account in memory with a Starlette ``app`` serving its REST API.

    ``now`` gives the server's time in epoch seconds: the default receive time of new
    messages, messages TTL and the per-minute request budget follow it.
    """

    name = "flespi"

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.time,
        token: str = DEFAULT_TOKEN,
        cid: int = 123456,
        missing_mode: Literal["errors", "404"] = "errors",
        strict_keys: bool = True,
        requests_per_minute: int | None = None,
    ) -> None:
        super().__init__(now=now)
        self.token = token
        self.cid = cid
        self.label = "gpshub"
        self.missing_mode: Literal["errors", "404"] = missing_mode
        self.strict_keys = strict_keys
        self.requests_per_minute = requests_per_minute
        self.access_denied = False
        self.devices: dict[int, FakeDevice] = {}
        self.queries: deque[tuple[str, str, dict[str, Any] | None]] = deque(maxlen=1000)
        self._next_id = FIRST_DEVICE_ID
        self._minute: int | None = None
        self._minute_count = 0
        self._held: dict[int, list[tuple[float, dict[str, Any], float | None]]] = {}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/auth/info", self._wrap("/auth/info", self._auth_info)),
            Route("/gw/devices/{selector}", self._wrap("/gw/devices", self._devices)),
            Route(
                "/gw/devices/{selector}/messages",
                self._wrap("/gw/devices/messages", self._messages),
            ),
            Route(
                "/gw/devices/{selector}/telemetry/{params}",
                self._wrap("/gw/devices/telemetry", self._telemetry),
            ),
        ]

    def request_name(self, call: FakeCall) -> str:
        """A call by its endpoint: ``/gw/devices/1,2/messages`` is ``/gw/devices/messages``."""
        match = ENDPOINT.fullmatch(call.path)
        if match is None:
            return call.path
        return "/gw/devices" + (match.group(1) or "")

    @property
    def urls(self) -> list[str]:
        """The path and query string of every request."""
        return [
            c.path + (f"?{urllib.parse.urlencode(c.query, doseq=True)}" if c.query else "")
            for c in self.calls
        ]

    @property
    def authorizations(self) -> list[str | None]:
        """The ``Authorization`` header of every request."""
        return [c.headers.get("authorization") for c in self.calls]

    # -- account contents ----------------------------------------------------------------
    def add_unit(
        self,
        name: str,
        *,
        imei: str | None = None,
        plate: str | None = None,
        messages_ttl: int = DEFAULT_TTL,
        metadata: Mapping[str, Any] | None = None,
        device_type_id: int = 744,
    ) -> str:
        """Register a device; its id (as text).  ``imei`` becomes ``configuration.ident``,
        ``plate`` ``metadata.plate``; ``messages_ttl`` 0 keeps no messages at all."""
        device_id = self._next_id
        self._next_id += 1
        meta = dict(metadata or {})
        if plate is not None:
            meta["plate"] = plate
        self.devices[device_id] = FakeDevice(
            id=device_id,
            name=name,
            ident=imei,
            metadata=meta,
            device_type_id=device_type_id,
            messages_ttl=messages_ttl,
            cid=self.cid,
        )
        return str(device_id)

    def device(self, unit: str | int) -> FakeDevice:
        return self.devices[int(unit)]

    def rename(self, unit: str, name: str) -> None:
        self.device(unit).name = name

    def set_plate(self, unit: str, plate: str | None) -> None:
        meta = self.device(unit).metadata
        if plate is None:
            meta.pop("plate", None)
        else:
            meta["plate"] = plate

    def remove_unit(self, unit: str) -> None:
        del self.devices[int(unit)]

    def store_fix(
        self,
        unit: str,
        fix: FixFields,
    ) -> dict[str, Any]:
        """Store a position message at device time ``t`` (epoch seconds, fractions kept),
        received at ``received`` (default: now).  A late message is one with an old ``t``.
        Returns the stored message."""
        message: dict[str, Any] = {
            "position.latitude": fix.lat,
            "position.longitude": fix.lon,
            "position.altitude": fix.altitude,
            "position.speed": fix.speed_kmh,
            "position.direction": fix.course,
            "position.satellites": fix.satellites,
            "position.valid": fix.valid,
        }
        if fix.ignition is not None:
            message["engine.ignition.status"] = fix.ignition
        message.update(fix.params or {})
        return self.add_message(unit, fix.t, message, received=fix.received)

    def add_message(
        self,
        unit: str,
        t: float,
        params: Mapping[str, Any],
        *,
        received: float | None = None,
    ) -> dict[str, Any]:
        """Store any message (with or without a position) at device time ``t``."""
        device = self.device(unit)
        message: dict[str, Any] = {
            "channel.id": 1001,
            "device.id": device.id,
            "device.name": device.name,
            "device.type.id": device.device_type_id,
            "peer": "192.0.2.10:40112",
            "protocol.id": 14,
            "timestamp": t,
            "server.timestamp": self.now() if received is None else received,
        }
        if device.ident is not None:
            message["ident"] = device.ident
        message.update(params)
        if device.id in self._held:
            self._held[device.id].append((float(t), message, received))
            return message
        device.store(float(t), message)
        device.update_telemetry(message)
        return message

    def hold(self, unit: str) -> None:
        """The unit is out of coverage: its messages from now on stay in its black box (not
        stored, telemetry unchanged) until ``release``."""
        self._held.setdefault(int(unit), [])

    def release(self, unit: str) -> list[dict[str, Any]]:
        """The unit is back: it uploads its black box, every held message at once, received
        (``server.timestamp``) now unless a message was given its own receive time."""
        device = self.device(unit)
        now = self.now()
        released = []
        for t, message, received in self._held.pop(device.id, []):
            message["server.timestamp"] = now if received is None else received
            device.store(t, message)
            device.update_telemetry(message)
            released.append(message)
        return released

    def add_raw(self, unit: str, record: Any, *, sort_time: float) -> None:
        """Store ``record`` verbatim (broken records for parser tests) at ``sort_time``."""
        self.device(unit).store(sort_time, record)

    def message_count(self, unit: str) -> int:
        return len(self.device(unit).messages)

    # -- what a connection needs -----------------------------------------------------------
    def credentials(self, url: str) -> dict[str, Any]:
        return {"token": self.token}

    def options(self, url: str) -> dict[str, Any]:
        return {"base_url": url}

    # -- faults ------------------------------------------------------------------------------
    def platform_response(
        self, call: FakeCall, *, status: int = 400, code: int = 2, reason: str = "bad request"
    ) -> Response:
        """``platform_error``: flespi's ``errors`` body with ``status``."""
        return _json(status, {"errors": [{"code": code, "reason": reason}]})

    def expire_sessions(self) -> None:
        """The token stops working (deleted or expired): every request gets 401."""
        self.token = DEFAULT_TOKEN[::-1] if self.token == DEFAULT_TOKEN else DEFAULT_TOKEN

    def set_token(self, token: str) -> None:
        self.token = token

    def deny_access(self, denied: bool = True) -> None:
        """The token is valid but has no ACL for gw/devices: those calls get 403."""
        self.access_denied = denied

    # -- serving -----------------------------------------------------------------------------
    def _wrap(self, endpoint: str, handler: Callable[[Request], Any]) -> Handler:
        async def serve(request: Request) -> Response:
            try:
                self._budget()
                self._authorise(request, endpoint)
                status, body = handler(request)
            except _Refusal as exc:
                return _json(exc.status, {"errors": exc.errors}, exc.headers)
            return _json(status, body)

        return serve

    def _budget(self) -> None:
        """429 beyond ``requests_per_minute`` (flespi's per-minute REST budget)."""
        if self.requests_per_minute is None:
            return
        now = self.now()
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self._minute_count = minute, 0
        self._minute_count += 1
        if self._minute_count > self.requests_per_minute:
            wait = max(1, math.ceil((minute + 1) * 60 - now))
            raise _Refusal(
                429,
                "too many REST API calls per minute",
                code=429,
                headers={"Retry-After": str(wait)},
            )

    def _authorise(self, request: Request, endpoint: str) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme != "FlespiToken" or token.strip() != self.token:
            raise _Refusal(401, "Unauthorized: the token is invalid or expired", code=4)
        if self.access_denied and endpoint.startswith("/gw/"):
            raise _Refusal(403, "Forbidden: the token has no access to gw/devices", code=5)

    def _auth_info(self, request: Request) -> tuple[int, dict[str, Any]]:
        info = {
            "id": 77001,
            "cid": self.cid,
            "info": self.label,
            "enabled": True,
            "expire": 0,
            "ttl": 31536000,
            "access": {"type": 1},
        }
        return 200, {"result": [info]}

    def _devices(self, request: Request) -> tuple[int, dict[str, Any]]:
        devices, missing = self._select(request.path_params["selector"])
        fields = _fields(request.query_params.get("fields"))
        items = [_project(d.item(), fields) for d in devices]
        return self._answer(items, missing)

    def _messages(self, request: Request) -> tuple[int, dict[str, Any]]:
        devices, missing = self._select(request.path_params["selector"])
        data = self._data(request.query_params.get("data"))
        self.queries.append(("messages", request.path_params["selector"], data))
        lo = float(data.get("from", 0))
        hi = float(data.get("to", math.inf))
        reverse = bool(data.get("reverse", False))
        count = data.get("count")
        keep = compile_filter(data["filter"]) if "filter" in data else None
        fields = _fields(data.get("fields"))
        now = self.now()
        found: Iterable[dict[str, Any]] = _merged(devices, lo, hi, now, reverse)
        if keep is not None:
            found = (m for m in found if isinstance(m, dict) and keep(m))
        if count is not None:
            found = islice(found, int(count))
        items = [_project(m, fields) for m in found]
        return self._answer(items, missing)

    def _telemetry(self, request: Request) -> tuple[int, dict[str, Any]]:
        devices, missing = self._select(request.path_params["selector"])
        wanted = request.path_params["params"]
        names = None if wanted == "all" else set(_fields(wanted) or ())
        items = [
            {
                "id": d.id,
                "telemetry": {
                    k: dict(v) for k, v in d.telemetry.items() if names is None or k in names
                },
            }
            for d in devices
        ]
        return self._answer(items, missing)

    def _answer(self, items: list[Any], missing: list[Any]) -> tuple[int, dict[str, Any]]:
        if not missing:
            return 200, {"result": items}
        errors = [{"id": m, "code": 7, "reason": f"device {m} not found"} for m in missing]
        if self.missing_mode == "404":
            return 404, {"errors": errors}
        return 200, {"result": items, "errors": errors}

    def _select(self, selector: str) -> tuple[list[FakeDevice], list[Any]]:
        """The devices a selector names, and the ids it names that do not exist."""
        if selector == "all":
            return [self.devices[k] for k in sorted(self.devices)], []
        if selector.startswith("{") and selector.endswith("}"):
            try:
                expr = compile_filter(selector[1:-1])
            except ExpressionError as exc:
                raise _Refusal(400, f"selector: {exc}", code=2) from None
            chosen = [d for _, d in sorted(self.devices.items()) if expr(_flat(d.item()))]
            return chosen, []
        if "=" in selector:
            name, _, mask = selector.partition("=")
            chosen = [
                d
                for _, d in sorted(self.devices.items())
                if (value := _flat(d.item()).get(name)) is not None
                and fnmatchcase(str(value), mask)
            ]
            return chosen, []
        found: list[FakeDevice] = []
        missing: list[Any] = []
        seen: set[int] = set()
        for part in selector.split(","):
            if not part.strip().isdigit():
                raise _Refusal(400, f"selector: {part!r} is not a device id", code=2)
            device_id = int(part)
            if device_id in seen:
                continue
            seen.add(device_id)
            if device_id in self.devices:
                found.append(self.devices[device_id])
            else:
                missing.append(device_id)
        if len(seen) == 1 and missing:
            raise _Refusal(404, f"device {missing[0]} not found", code=7, id=missing[0])
        return found, missing

    def _data(self, raw: str | None) -> dict[str, Any]:
        """The ``data`` query parameter, checked as flespi's schema would."""
        if raw is None:
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Refusal(400, "data: the value is not valid JSON", code=2) from None
        if not isinstance(data, dict):
            raise _Refusal(400, "data: must be a JSON object", code=2)
        unknown = sorted(set(data) - MESSAGE_KEYS)
        if unknown and self.strict_keys:
            allowed = ", ".join(sorted(MESSAGE_KEYS))
            raise _Refusal(
                400,
                f"data: property '{unknown[0]}' is not allowed by the schema; "
                f"allowed properties: {allowed}",
                code=2,
            )
        for key in ("from", "to"):
            if key in data and not _is_number(data[key]):
                raise _Refusal(400, f"data.{key}: must be a number (unix seconds)", code=2)
        if "count" in data and not (
            _is_number(data["count"]) and data["count"] >= 1 and data["count"] == int(data["count"])
        ):
            raise _Refusal(400, "data.count: must be a positive integer", code=2)
        if "reverse" in data and not isinstance(data["reverse"], bool):
            raise _Refusal(400, "data.reverse: must be a boolean", code=2)
        for key in ("fields", "filter"):
            if key in data and not isinstance(data[key], str):
                raise _Refusal(400, f"data.{key}: must be a string", code=2)
        if "filter" in data:
            try:
                compile_expression(data["filter"])
            except ExpressionError as exc:
                raise _Refusal(400, f"data.filter: {exc}", code=2) from None
        return data


def _merged(
    devices: list[FakeDevice], lo: float, hi: float, now: float, reverse: bool
) -> Iterator[dict[str, Any]]:
    """The messages of ``devices`` within ``[lo, hi]`` in ``timestamp`` order (newest
    first when ``reverse``), lazily: a ``count`` stops the merge early."""
    streams = []
    for d in devices:
        a, b = d.window(lo, hi, now)
        if a < b:
            streams.append(_stream(d, range(b - 1, a - 1, -1) if reverse else range(a, b), reverse))
    for *_, message in heapq.merge(*streams):
        yield message


def _stream(
    device: FakeDevice, order: range, reverse: bool
) -> Iterator[tuple[float, int, int, Any]]:
    times, messages, sign = device.times, device.messages, -1.0 if reverse else 1.0
    for i in order:
        yield sign * times[i], device.id, i if not reverse else -i, messages[i]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fields(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    return [f.strip() for f in raw.split(",") if f.strip()]


def _project(item: Any, fields: list[str] | None) -> Any:
    if fields is None or not isinstance(item, dict):
        return item
    return {k: item[k] for k in fields if k in item}


def _flat(item: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"configuration": {"ident": x}}`` as ``{"configuration.ident": x}``."""
    out: dict[str, Any] = {}
    for key, value in item.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}."))
        else:
            out[name] = value
    return out


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


__all__ = ["DEFAULT_TOKEN", "FakeDevice", "FakeFlespi"]
