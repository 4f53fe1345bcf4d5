"""``FakeUpstream``: the base of a platform's fake server, for tests and benchmarks.

A plugin's fake subclasses it and adds only its platform's routes; the base wraps them in
a pure ASGI layer that logs every request (``calls``, ``requests``), makes every answer
wait ``delay`` seconds, and plays the faults queued by the switches::

    class FakeAcme(FakeUpstream):
        name = "acme"

        def routes(self) -> list[BaseRoute]:
            return [Route("/api/units", self._units)]

    fake = FakeAcme(now=lambda: wall.now().timestamp())
    url = await nursery.start(serve_app, fake.app)      # hub.testing.serve_app
    fake.fail(503, times=2)                             # the next two requests
    fake.rate_limit(retry_after=30, path="/api/units")  # then one 429 on that path
    assert fake.requests["/api/units"] == 3 and fake.calls[-1].status == 429

Faults queue in the order they were switched on; a request gets the first queued fault
whose ``path`` matches it (``None``: any path; else the request's path or the name it is
counted under, see ``request_name``), and only that one.  ``after=k`` lets ``k`` matching
requests through before the fault starts (they still wait their turn in the queue).

The running hub never imports this module (it needs starlette, a testing dependency).
"""

from __future__ import annotations

import collections
import json
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar

import trio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import BaseRoute

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MALFORMED_BODY = b'{"data": [{"id": 1, "name": "cut off'
"""What ``malformed`` answers: JSON that ends in the middle of a string."""
FORM = "application/x-www-form-urlencoded"


@dataclass
class FakeCall:
    """One request the fake received, as logged before it was answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names in lower case (a repeated header: its values joined by ``, ``)."""
    body: bytes
    at: float
    """When it arrived, on the fake's clock (``now``)."""
    ended: float | None = None
    """When it was answered (or the client gave up on it), on the fake's clock."""
    name: str = ""
    """What it is counted under in ``requests`` (its path unless the fake names it)."""
    status: int | None = None
    """The status answered (``None``: none, e.g. a hang)."""
    fault: str | None = None
    """The fault it got (``"fail"``, ``"rate_limit"``, ...), if any."""
    raw_query: str = ""
    """The query string as sent (order and encoding kept; ``query`` is it parsed)."""
    started: float | None = None
    """``trio.current_time()`` when it arrived (before any ``delay``): trio's clock, which
    a test's ``MockClock`` drives, to tell whether two requests overlapped."""
    finished: float | None = None
    """``trio.current_time()`` when it was answered (or the client gave up on it)."""

    def params(self, name: str) -> list[str]:
        """The values of parameter ``name``: from the query string, then from a
        form-encoded body."""
        values = list(self.query.get(name, []))
        if self.headers.get("content-type", "").split(";")[0].strip() == FORM:
            form = urllib.parse.parse_qs(self.body.decode("utf-8", "replace"), True)
            values += form.get(name, [])
        return values


@dataclass(frozen=True, slots=True)
class FixFields:
    """What every fake's ``add_fix`` takes, as ``FakeUpstream.add_fix`` hands it to the
    fake's ``store_fix``: the fix time ``t`` (epoch seconds), the position, km/h, degrees,
    metres, the platform's extra ``params`` and when the platform ``received`` it (epoch
    seconds; ``None``: the test gave none, which a fake reads as its ``now()``, or as the
    time a held device's messages are released)."""

    t: float
    lat: float
    lon: float
    speed_kmh: float = 0.0
    course: float = 0.0
    altitude: float = 0.0
    satellites: int | None = 8
    valid: bool = True
    ignition: bool | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    received: float | None = None


@dataclass
class Fault:
    """A queued fault: what ``kind``, how many more ``times``, on which ``path``."""

    kind: str
    times: int
    path: str | None = None
    after: int = 0
    status: int = 500
    body: str | None = None
    retry_after: float | str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def matches(self, call: FakeCall) -> bool:
        return self.path is None or self.path in (call.path, call.name)


_CURRENT: ContextVar[FakeCall | None] = ContextVar("fake_upstream_call", default=None)


def current_call() -> FakeCall | None:
    """The request a fake's route is answering (its ``FakeCall`` in ``calls``), for a route
    to note what it decided (who it authenticated, say); ``None`` outside a request."""
    return _CURRENT.get()


class FakeUpstream:
    """Base of a platform fake: subclasses add routes; the base adds faults, a log, a clock.

    ``now`` is the fake's clock (epoch seconds): pass the hub's, e.g.
    ``now=lambda: wall.now().timestamp()``, so that sessions and data age with the test.
    """

    name: ClassVar[str] = "fake"

    def __init__(self, *, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.calls: list[FakeCall] = []
        self.requests: collections.Counter[str] = collections.Counter()
        self.delay = 0.0
        """Every answer waits this long (``trio.sleep``): slow answers."""
        self.faults: list[Fault] = []
        self._app: Starlette | None = None

    # -- what a subclass gives -------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        """The platform's routes (starlette ``Route``, ``Mount``, ...)."""
        return []

    def request_name(self, call: FakeCall) -> str:
        """What ``call`` is counted under in ``requests``: its path; a fake may name its
        requests otherwise (a command, a path without its prefix)."""
        return call.path

    def platform_response(self, call: FakeCall, **details: Any) -> Response:
        """The platform's own error answer for ``platform_error(**details)``."""
        raise NotImplementedError(f"{type(self).__name__} has no platform error")

    def expire_sessions(self) -> None:
        """Every session or token the fake issued is invalid from now on."""
        raise NotImplementedError(f"{type(self).__name__} has no sessions")

    def store_fix(self, upstream_id: str, fix: FixFields, **platform: Any) -> Any:
        """Store ``fix`` for the device ``upstream_id`` in the platform's own shape (what
        ``add_fix`` calls); ``platform`` are the fake's own keywords (an accuracy, a
        protocol, input bits...).  What it returns, ``add_fix`` returns."""
        raise NotImplementedError(f"{type(self).__name__} stores no fixes")

    # -- data ------------------------------------------------------------------------
    def add_fix(
        self,
        upstream_id: str,
        t: float,
        lat: float,
        lon: float,
        *,
        speed_kmh: float = 0.0,
        course: float = 0.0,
        altitude: float = 0.0,
        satellites: int | None = 8,
        valid: bool = True,
        ignition: bool | None = None,
        params: Mapping[str, Any] | None = None,
        received: float | None = None,
        **platform: Any,
    ) -> Any:
        """Store a fix of device ``upstream_id`` at ``t`` (epoch seconds), received at
        ``received`` (default: now, so a late fix is one with an old ``t``): the same
        call on every fake; ``platform`` keywords are the fake's own (see its
        ``store_fix``)."""
        fix = FixFields(
            t,
            lat,
            lon,
            speed_kmh,
            course,
            altitude,
            satellites,
            valid,
            ignition,
            dict(params or {}),
            received,
        )
        return self.store_fix(upstream_id, fix, **platform)

    # -- the app ---------------------------------------------------------------------
    @property
    def app(self) -> Starlette:
        """The ASGI app to serve: ``routes()`` behind the log and the faults."""
        if self._app is None:
            self._app = Starlette(
                routes=self.routes(), middleware=[Middleware(_FaultsAndLog, fake=self)]
            )
        return self._app

    @property
    def request_count(self) -> int:
        return sum(self.requests.values())

    # -- fault switches --------------------------------------------------------------
    def fail(
        self,
        status: int = 500,
        *,
        times: int = 1,
        path: str | None = None,
        body: str | None = None,
        after: int = 0,
    ) -> None:
        """The next ``times`` matching requests get ``status`` with ``body`` (by default
        an HTML error page, as a proxy in front of the platform sends; a ``body`` that is
        JSON goes with a JSON content type, other text as plain text)."""
        self.faults.append(Fault("fail", times, path, after, status=status, body=body))

    def slow(self, seconds: float) -> None:
        """Every answer waits ``seconds`` (``delay``) until ``slow(0)`` or ``reset_faults``."""
        self.delay = max(seconds, 0.0)

    def rate_limit(
        self,
        *,
        times: int = 1,
        retry_after: float | str | None = 2.0,
        path: str | None = None,
        after: int = 0,
    ) -> None:
        """The next ``times`` matching requests get HTTP 429 with ``Retry-After`` (seconds,
        or an HTTP date given as text; ``None``: no header)."""
        self.faults.append(Fault("rate_limit", times, path, after, retry_after=retry_after))

    def malformed(self, *, times: int = 1, path: str | None = None, after: int = 0) -> None:
        """The next ``times`` matching requests get HTTP 200 with a JSON content type and a
        body that is not JSON (cut off)."""
        self.faults.append(Fault("malformed", times, path, after))

    def hang(self, *, times: int = 1, path: str | None = None, after: int = 0) -> None:
        """The next ``times`` matching requests are never answered: the fake waits until
        the client gives up (closes the connection) or the server stops."""
        self.faults.append(Fault("hang", times, path, after))

    def platform_error(
        self, *, times: int = 1, path: str | None = None, after: int = 0, **details: Any
    ) -> None:
        """The next ``times`` matching requests get the platform's own error answer
        (``platform_response(call, **details)``, which the subclass gives)."""
        if type(self).platform_response is FakeUpstream.platform_response:
            raise NotImplementedError(f"{type(self).__name__} has no platform error")
        self.faults.append(Fault("platform_error", times, path, after, details=details))

    def reset_faults(self) -> None:
        """Forget the queued faults; answers are no longer delayed."""
        self.faults.clear()
        self.delay = 0.0

    # -- plumbing --------------------------------------------------------------------
    def take_fault(self, call: FakeCall) -> Fault | None:
        """The fault ``call`` gets (consumed from the queue), if any."""
        for fault in self.faults:
            if not fault.matches(call):
                continue
            if fault.after > 0:
                fault.after -= 1
                return None
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            return fault
        return None

    def fault_response(self, call: FakeCall, fault: Fault) -> Response:
        """The answer for ``fault`` (not ``hang``); a subclass may adapt one kind, e.g. a
        platform that signals its rate limit in a 200 body."""
        if fault.kind == "fail":
            if fault.body is not None:
                kind = "application/json" if _is_json(fault.body) else "text/plain"
                return Response(fault.body, fault.status, media_type=kind)
            title = f"{fault.status} {_phrase(fault.status)}"
            page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
            return Response(page, fault.status, media_type="text/html")
        if fault.kind == "rate_limit":
            headers = {}
            if fault.retry_after is not None:
                value = fault.retry_after
                headers["Retry-After"] = value if isinstance(value, str) else f"{value:g}"
            return Response("Too Many Requests", 429, headers, media_type="text/plain")
        if fault.kind == "malformed":
            return Response(MALFORMED_BODY, 200, media_type="application/json")
        if fault.kind == "platform_error":
            return self.platform_response(call, **fault.details)
        raise ValueError(f"unknown fault {fault.kind!r}")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class _FaultsAndLog:
    """The pure ASGI layer of a ``FakeUpstream``: log, delay, faults, then the routes."""

    def __init__(self, app: ASGIApp, fake: FakeUpstream) -> None:
        self.app, self.fake = app, fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fake = self.fake
        body, disconnected = await _read_body(receive)
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", []):
            name, text = key.decode("latin-1").lower(), value.decode("latin-1")
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
        raw_query = scope.get("query_string", b"").decode("latin-1")
        query = urllib.parse.parse_qs(raw_query, True)
        call = FakeCall(scope["method"], scope["path"], query, headers, body, fake.now())
        call.raw_query, call.started = raw_query, trio.current_time()
        _CURRENT.set(call)
        call.name = fake.request_name(call)
        fake.calls.append(call)
        fake.requests[call.name] += 1

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                call.status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # before the client can see the answer complete
                call.ended, call.finished = fake.now(), trio.current_time()
            await send(message)

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            if fake.delay > 0:
                await trio.sleep(fake.delay)
            fault = fake.take_fault(call)
            if fault is None:
                await self.app(scope, replay, logged_send)
                return
            call.fault = fault.kind
            if fault.kind == "hang":
                while not disconnected:
                    disconnected = (await receive())["type"] == "http.disconnect"
                return
            await fake.fault_response(call, fault)(scope, replay, logged_send)
        finally:
            if call.ended is None:
                call.ended = fake.now()
            if call.finished is None:
                call.finished = trio.current_time()


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole request body, and whether the client disconnected meanwhile."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False
