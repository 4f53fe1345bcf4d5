"""The live feed: a WebSocket at ``/api/live`` streaming typed JSON messages.

Protocol (every message is a JSON object with a ``type``):

1. Handshake.  A browser's ``Origin`` must be in ``settings.allowed_origins`` (``*``
   allows any) or be the same origin as the ``Host``; otherwise the handshake is refused
   with 403 before it is accepted.  Clients without an ``Origin`` (not browsers) pass.
2. Authentication, either with ``Authorization: Bearer gph_…`` on the handshake (a bad
   token is refused with 401 before accepting: no close code), or, for browsers that
   cannot set headers, with the first message ``{"type": "auth", "token": "gph_…"}``
   within 10 s.  A bad token or another first message is answered with an ``error``
   message (``invalid_token``, ``unauthorized``), then close code 4001; silence, 4001.
   Failed attempts count against the client's address like the API's: while it is
   throttled the handshake is refused with 429 and ``Retry-After``, and an ``auth``
   message is answered with an ``error`` (``too_many_attempts``, ``retry_after`` in
   seconds) and close code 4029.  A browser signed in to the hub (``POST /api/session``)
   needs neither: its session cookie, sent with the handshake, authenticates it (when
   there is no ``Authorization`` header); an ended session is refused with 401.  A
   socket opened so lasts as long as its session (signed out, password changed, expired:
   4001 ``session ended``) and counts as the session's use (it does not go idle).
3. ``?device_ids=1,2`` limits the feed to those devices (default: all of the caller's
   devices, and every client's for the administrator); a value that is not a list of
   ids is refused with 400 at the handshake.  Ids that are not the caller's (another
   client's, or no device) are refused once the caller is known: an ``error`` message
   ``unknown_devices`` naming them, then close code 4003.
4. Frames.  By default every frame the server sends is a JSON array of one or more
   messages (``?frames=array``): what is ready for a socket goes out together once per
   tick (``live_tick_s``, 50 ms), and a frame shared by several sockets is encoded (and
   compressed) once.  ``?frames=single`` sends one message per frame instead.
5. The server sends ``hello`` (who you are, the selection, the mode, the ping interval,
   the frame format and the number of snapshot messages that follow), then the latest
   position of each selected device as ``position`` messages with ``"snapshot": true``,
   then live messages: ``{"type": "position" | "device_status" | …, "device_id": …,
   "data": {…}}``.
6. The client may send ``{"type": "subscribe", "device_ids": [..] | null, "mode":
   "all" | "latest", "max_rate_s": 1}`` to change the subscription, every field
   optional (absent: all devices, mode ``all``); it is answered ``subscribed`` followed
   by a snapshot of the new selection, or by an ``error`` naming refused ids or the bad
   field, the subscription unchanged and the socket open.  Mode ``latest`` (for maps)
   sends at most one position per device every ``max_rate_s`` (default 1 s), always the
   newest; other messages go as they come.  The same three can be given in the URL
   (``?device_ids=1,2&mode=latest&max_rate_s=2``).  ``{"type": "ping"}`` is answered
   ``pong``.
7. Keep-alive: the server sends ``{"type": "ping"}`` every 20 s (configurable); clients
   need not answer.  The server also answers WebSocket protocol pings.
8. A client that reads too slowly is dropped (its backlog passes ``max_pending_bytes``,
   8 MiB, or a send takes over 30 s) with close code 4008 "subscriber fell behind":
   publishing never waits for a subscriber.  In mode ``latest`` the backlog is one
   position per device, so only a socket that stops reading altogether is dropped.  Inbound
   messages are limited to 64 KiB (close 1009).  At shutdown the server closes with 1001.
9. A socket lasts no longer than its right to the feed.  When its token is revoked, its
   user deleted or its client deleted, by any process (the API, the CLI, another hub
   process on the same database), the server closes it within seconds with 4001 and
   the reason ``token revoked``, ``user deleted`` or ``client deleted``; when its user's
   role changes, with 4003 ``your role changed; reconnect``.  Nothing stored after the
   change reaches it meanwhile: the socket is held from the moment the hub hears of the
   change until its token has been checked again.  Besides, every socket re-checks its
   token every ``reauth_interval`` (60 s), so a token that lapses otherwise ends it too:
   4001 ``token expired`` (or ``token no longer valid``).
10. When a device named in the selection is deleted it leaves the selection, and the
   socket, which stays open, gets ``{"type": "subscription_changed", "reason":
   "devices_deleted", "removed": [ids], "device_ids": [the selection now]}``.  The
   selection may become empty (``[]``: nothing but the messages of no device, until the
   client subscribes again); a selection of all devices (``null``) gets no notice.
11. Several hub processes on one PostgreSQL database: a socket held to any of them gets
   the positions, statuses and alerts every process commits, each device's in order
   (``hub.live_relay``), under the same rules.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio
from starlette.websockets import WebSocket

from hub.blocking import run_blocking
from hub.livefeed import (
    DEFAULT_MAX_PENDING_BYTES,
    MAX_RATE_S,
    MIN_RATE_S,
    FeedMode,
    FrameFormat,
    Subscriber,
    SubscriberLagging,
    array_text,
)
from hub.positions import position_json
from hub.store import Principal
from hub.web.auth import Access, AuthGate, bearer_token, check_access
from hub.web.errors import ApiError, error_response
from hub.web.origins import origin_allowed as origin_allowed  # re-exported
from hub.web.sessions import check_session, session_cookie

if TYPE_CHECKING:
    from hub.config import Settings
    from hub.core import Hub

log = logging.getLogger("hub.web.live")

CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_UNAUTHORIZED = 4001
CLOSE_FORBIDDEN = 4003
CLOSE_LAGGING = 4008
CLOSE_THROTTLED = 4029

SNAPSHOT_FRAME_MESSAGES = 500
"""Messages per frame when many go at once (a snapshot) in the ``array`` format."""


@dataclass(frozen=True, slots=True)
class LiveOptions:
    ping_interval: float = 20.0
    max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES
    """Bytes of messages buffered per subscriber before it counts as fallen behind."""
    auth_timeout: float = 10.0
    max_message_bytes: int = 64 * 1024
    send_timeout: float = 30.0
    """Seconds a batch may take to send before the subscriber counts as fallen behind."""
    reauth_interval: float = 60.0
    """Seconds between two checks that the socket's token still holds (a backstop: a
    revocation made by any process is acted on within seconds anyway)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveOptions:
        """The ``live_*`` settings; the rest are fixed."""
        return cls(
            ping_interval=settings.live_ping_interval,
            max_pending_bytes=settings.live_max_pending_bytes,
            auth_timeout=settings.live_auth_timeout,
            reauth_interval=settings.live_reauth_s,
        )


# -- the handshake -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Subscription:
    """What a socket asks for: its devices (``None``: all), mode and rate."""

    device_ids: list[int] | None = None
    mode: FeedMode = FeedMode.ALL
    max_rate_s: float | None = None  # mode latest only (default 1 s)

    def json(self) -> dict[str, Any]:
        ids = sorted(set(self.device_ids)) if self.device_ids is not None else None
        return {"device_ids": ids, "mode": self.mode.value, "max_rate_s": self.max_rate_s}

    @classmethod
    def parse(cls, device_ids: Any, mode: Any, max_rate_s: Any) -> Subscription:
        """From a ``subscribe`` message's fields (JSON values; ``None``: absent); an
        ``ApiError`` (400) names the first bad one."""
        if device_ids is not None and not (
            isinstance(device_ids, list)
            and all(isinstance(i, int) and not isinstance(i, bool) for i in device_ids)
        ):
            raise ApiError(400, "bad_message", "a list of device ids, or null", "device_ids")
        if mode is None:
            mode = FeedMode.ALL
        elif mode not in tuple(FeedMode):
            raise ApiError(400, "bad_message", '"all" or "latest"', "mode")
        mode = FeedMode(mode)
        if max_rate_s is not None:
            if mode is not FeedMode.LATEST:
                raise ApiError(400, "bad_message", 'only for mode "latest"', "max_rate_s")
            if (
                isinstance(max_rate_s, bool)
                or not isinstance(max_rate_s, int | float)
                or not MIN_RATE_S <= max_rate_s <= MAX_RATE_S
            ):
                raise ApiError(
                    400,
                    "bad_message",
                    f"seconds between {MIN_RATE_S:g} and {MAX_RATE_S:g}",
                    "max_rate_s",
                )
            max_rate_s = float(max_rate_s)
        elif mode is FeedMode.LATEST:
            max_rate_s = 1.0
        return cls(device_ids, mode, max_rate_s)

    @classmethod
    def from_query(cls, query: Any) -> Subscription:
        """From the handshake's ``?device_ids=1,2&mode=latest&max_rate_s=1``."""
        ids: list[int] | None = None
        text = query.get("device_ids")
        if text is not None and text.strip():
            try:
                ids = [int(part) for part in text.split(",") if part.strip()]
            except ValueError:
                raise ApiError(
                    400, "bad_request", "a comma-separated list of device ids", "device_ids"
                ) from None
        rate: Any = query.get("max_rate_s")
        if rate is not None:
            try:
                rate = float(rate)
            except ValueError:
                raise ApiError(400, "bad_request", "a number of seconds", "max_rate_s") from None
        try:
            return cls.parse(ids, query.get("mode"), rate)
        except ApiError as exc:
            raise ApiError(400, "bad_request", exc.message, exc.field) from None


def parse_frames(text: str | None) -> FrameFormat:
    """The handshake's ``?frames=array|single``."""
    if text is None:
        return FrameFormat.ARRAY
    if text not in tuple(FrameFormat):
        raise ApiError(400, "bad_request", '"array" or "single"', "frames")
    return FrameFormat(text)


async def _deny(
    ws: WebSocket,
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Refuse the handshake with an HTTP answer (or a bare close without the extension)."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(error_response(status, code, message, field, headers))
    else:
        close = {403: CLOSE_FORBIDDEN, 429: CLOSE_THROTTLED}.get(status, CLOSE_UNAUTHORIZED)
        await ws.close(close)


async def live_feed(ws: WebSocket) -> None:
    """The ``/api/live`` endpoint."""
    hub: Hub = ws.app.state.hub
    options: LiveOptions = ws.app.state.live
    allowed = hub.settings.allowed_origins
    if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), allowed):
        await _deny(ws, 403, "forbidden_origin", "this Origin may not open the live feed")
        return
    try:
        requested = Subscription.from_query(ws.query_params)
        frames = parse_frames(ws.query_params.get("frames"))
    except ApiError as exc:
        await _deny(ws, exc.status, exc.code, exc.message, exc.field)
        return
    principal: Principal | None = None
    header = ws.headers.get("authorization")
    token: str | None = None
    seen = hub.changes.seen
    cookie = session_cookie(ws.scope) if header is None else None
    if header is not None:
        token = bearer_token(header)
        try:
            principal = await AuthGate.of(ws.scope, hub).check(
                hub, ws.scope, token, "live feed handshake"
            )
        except ApiError as exc:
            await _deny(ws, exc.status, exc.code, exc.message, exc.field, exc.headers)
            return
        if not _may_use(principal):
            await _deny(ws, 401, "invalid_token", "the API token is not valid")
            return
    elif cookie is not None:
        if not origin_allowed(
            ws.headers.get("origin"), ws.headers.get("host"), allowed, wildcard=False
        ):  # "*" lets pages elsewhere use tokens, never the browser's session
            await _deny(ws, 403, "forbidden_origin", "this Origin may not use your session")
            return
        signed_in = await check_session(hub, cookie)
        if signed_in is None or not _may_use(signed_in.principal):
            await _deny(ws, 401, "invalid_session", "your session has ended; sign in again")
            return
        principal = signed_in.principal
    await ws.accept()
    session = LiveSession(ws, hub, options, frames)
    session.token, session.changes_seen = token, seen
    session.cookie = cookie if principal is not None and token is None else None
    if principal is None:
        principal = await session.authenticate()
        if principal is None:
            return
    await session.run(principal, requested)


def _may_use(principal: Principal) -> bool:
    try:
        check_access(principal, Access.USER)
    except ApiError:
        return False
    return True


# -- a connected client ------------------------------------------------------------------
def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


class LiveSession:
    """One accepted socket: authentication, subscription, and the tasks that serve it.

    The tasks (pump, ping, shutdown watch, reader) run in one cancel scope.  Whichever
    ends the session records the close code and cancels the scope; the close frame is
    sent once, after every task has stopped (a send blocked on a client that does not
    read is cancelled rather than waited for).
    """

    def __init__(
        self,
        ws: WebSocket,
        hub: Hub,
        options: LiveOptions,
        frames: FrameFormat = FrameFormat.ARRAY,
    ) -> None:
        self.ws = ws
        self.hub = hub
        self.options = options
        self.frames = frames
        self.principal: Principal | None = None
        self.token: str | None = None  # kept to re-check it (revocation, expiry)
        self.cookie: str | None = None  # or the session cookie it was opened with
        self.changes_seen: int | None = None  # the hub's change feed when it was checked
        self._lock = trio.Lock()
        self._scope = trio.CancelScope()
        self._close_with: tuple[int, str] | None = None
        self._client_gone = False

    # -- sending and closing -------------------------------------------------------
    async def send_frames(self, *frames: str) -> None:
        """Send texts that are frames already (what ``Subscriber.receive_batch`` takes)."""
        async with self._lock:
            for text in frames:
                await self.ws.send_text(text)

    async def send(self, *messages: str) -> None:
        """Send messages (JSON texts) in the socket's frame format."""
        if self.frames is FrameFormat.SINGLE:
            await self.send_frames(*messages)
        else:
            step = SNAPSHOT_FRAME_MESSAGES
            await self.send_frames(
                *(array_text(messages[i : i + step]) for i in range(0, len(messages), step))
            )

    async def send_error(self, code: str, message: str, **extra: Any) -> None:
        await self.send(_dumps({"type": "error", "code": code, "message": message, **extra}))

    def finish(self, code: int | None = None, reason: str = "") -> None:
        """End the session; ``code`` is the close code (``None``: the client has gone)."""
        if code is None:
            self._client_gone = True
        elif self._close_with is None:
            self._close_with = (code, reason)
        self._scope.cancel()

    async def _send_close(self) -> None:
        if self._client_gone or self._close_with is None:
            return
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + 5
            await self.ws.close(*self._close_with)

    # -- receiving -----------------------------------------------------------------
    async def _receive(self) -> dict[str, Any] | None:
        """The next message as a JSON object; ``None`` once the session is over.

        Non-JSON and non-object messages are answered with an error and skipped; a message
        over the size limit ends the session (1009).
        """
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                self.finish()
                return None
            text = message.get("text")
            if text is None:
                await self.send_error("bad_message", "send text frames with JSON objects")
                continue
            if len(text) > self.options.max_message_bytes:
                self.finish(CLOSE_TOO_BIG, "message too big")
                return None
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                data = None
            if not isinstance(data, dict):
                await self.send_error("bad_message", "send JSON objects with a `type`")
                continue
            return data

    async def authenticate(self) -> Principal | None:
        """Authentication by the first message (browsers cannot set headers)."""
        principal = None
        with self._scope:
            principal = await self._authenticate()
        await self._send_close()
        return principal

    async def _authenticate(self) -> Principal | None:
        data: dict[str, Any] | None = None
        with trio.move_on_after(self.options.auth_timeout) as timeout:
            data = await self._receive()
        if timeout.cancelled_caught:
            self.finish(CLOSE_UNAUTHORIZED, "authentication timed out")
            return None
        if data is None:
            return None
        token = data.get("token") if data.get("type") == "auth" else None
        if not isinstance(token, str):
            await self.send_error(
                "unauthorized", 'authenticate first: {"type": "auth", "token": "gph_…"}'
            )
            self.finish(CLOSE_UNAUTHORIZED, "unauthorized")
            return None
        self.changes_seen = self.hub.changes.seen
        try:
            principal = await AuthGate.of(self.ws.scope, self.hub).check(
                self.hub, self.ws.scope, token, "live feed auth message"
            )
        except ApiError as exc:
            if exc.status == 429:
                retry_after = int(exc.headers["Retry-After"])
                await self.send_error(exc.code, exc.message, retry_after=retry_after)
                self.finish(CLOSE_THROTTLED, "too many failed attempts")
            else:
                await self.send_error("invalid_token", "the API token is not valid")
                self.finish(CLOSE_UNAUTHORIZED, "invalid token")
            return None
        if not _may_use(principal):
            await self.send_error("invalid_token", "the API token is not valid")
            self.finish(CLOSE_UNAUTHORIZED, "invalid token")
            return None
        self.token = token
        return principal

    # -- the session -----------------------------------------------------------------
    async def _refused(self, device_ids: list[int]) -> list[int]:
        """The ids among ``device_ids`` that are not the caller's devices."""
        assert self.principal is not None
        mine = await run_blocking(
            self.hub.store.visible_device_ids, device_ids, self.principal.scope
        )
        return sorted(set(device_ids) - mine)

    async def _snapshot(self, device_ids: list[int] | None) -> list[str]:
        assert self.principal is not None
        rows = await run_blocking(self.hub.store.positions.latest, device_ids, self.principal.scope)
        return [
            _dumps(
                {
                    "type": "position",
                    "device_id": r["device_id"],
                    "data": position_json(r),
                    "snapshot": True,
                }
            )
            for r in rows
        ]

    async def run(self, principal: Principal, requested: Subscription) -> None:
        self.principal = principal
        self._scope = trio.CancelScope()
        with self._scope:
            await self._serve(principal, requested)
        await self._send_close()

    async def _serve(self, principal: Principal, requested: Subscription) -> None:
        if requested.device_ids is not None:
            refused = await self._refused(requested.device_ids)
            if refused:
                await self.send_error(
                    "unknown_devices",
                    f"not your devices: {', '.join(map(str, refused))}",
                    device_ids=refused,
                )
                self.finish(CLOSE_FORBIDDEN, "unknown device ids")
                return
        live = self.hub.live
        with live.subscribe(
            principal.scope,
            requested.device_ids,
            self.options.max_pending_bytes,
            principal,
            mode=requested.mode,
            max_rate_s=requested.max_rate_s or 1.0,
            frames=self.frames,
        ) as sub:
            if self.hub.changes.seen != self.changes_seen:
                # changes were handled since the token was checked, before this subscriber
                # could hear of them
                verdict = await self._check_access()
                if verdict is not None:
                    self.finish(*verdict)
                    return
            snapshot = await self._snapshot(requested.device_ids)
            hello = {
                "type": "hello",
                "user": {"id": principal.user_id, "name": principal.name, "role": principal.role},
                "client_id": principal.client_id,
                **requested.json(),
                "frames": self.frames.value,
                "ping_interval": self.options.ping_interval,
                "max_pending_bytes": self.options.max_pending_bytes,
                "snapshot": len(snapshot),
            }
            await self.send(_dumps(hello), *snapshot)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, sub)
                nursery.start_soon(self._ping)
                nursery.start_soon(self._watch_shutdown)
                nursery.start_soon(self._watch_access, sub)
                nursery.start_soon(self._read, sub)

    async def _pump(self, sub: Subscriber) -> None:
        while True:
            try:
                texts = await sub.receive_batch()
            except SubscriberLagging:
                self._fell_behind()
                return
            with trio.move_on_after(self.options.send_timeout) as slow:
                await self.send_frames(*texts)
            if slow.cancelled_caught:
                self._fell_behind()
                return

    def _fell_behind(self) -> None:
        user = self.principal.user_id if self.principal else "?"
        log.info("live subscriber of user %s fell behind; disconnected", user)
        self.finish(CLOSE_LAGGING, "subscriber fell behind")

    async def _ping(self) -> None:
        while True:
            await trio.sleep(self.options.ping_interval)
            await self.send('{"type":"ping"}')

    async def _watch_access(self, sub: Subscriber) -> None:
        """Re-check the token when the hub says its token, user or client changed (the
        subscriber is held meanwhile), and every ``reauth_interval`` anyway."""
        while True:
            with trio.move_on_after(self.options.reauth_interval):
                await sub.recheck_requested.wait()
            reason = sub.take_recheck()
            failures = 0
            while True:
                try:
                    verdict = await self._check_access()
                    break
                except Exception as exc:  # the database: what holds holds; try again soon
                    failures += 1
                    level = logging.WARNING if failures == 1 else logging.DEBUG
                    log.log(level, "live: cannot re-check a token (%s); trying again", exc)
                    await trio.sleep(min(5.0, self.options.reauth_interval))
            if verdict is not None:
                code, default = verdict
                own = code == CLOSE_UNAUTHORIZED and reason and self.cookie is None
                self.finish(code, reason if own else default)
                return
            sub.release()

    async def _check_access(self) -> tuple[int, str] | None:
        """Authenticate the socket's token again (``Store.check_token``, so whatever makes
        a token invalid, revocation or expiry, counts); ``None`` when it still holds as it
        did, else the close code and reason."""
        before = self.principal
        assert before is not None
        if self.cookie is not None:
            signed_in = await check_session(self.hub, self.cookie)
            if signed_in is None:
                return CLOSE_UNAUTHORIZED, "session ended"
            now = signed_in.principal
        else:
            assert self.token is not None
            check = await run_blocking(self.hub.store.check_token, self.token)
            now = check.principal
            if now is None:
                expired = check.reason == "expired token"
                return CLOSE_UNAUTHORIZED, "token expired" if expired else "token no longer valid"
        if not _may_use(now):
            return CLOSE_FORBIDDEN, "no longer allowed"
        if (now.user_id, now.role, now.client_id) != (
            before.user_id,
            before.role,
            before.client_id,
        ):
            return CLOSE_FORBIDDEN, "your role changed; reconnect"
        return None

    async def _watch_shutdown(self) -> None:
        await self.ws.app.state.closing.wait()
        self.finish(CLOSE_GOING_AWAY, "server shutting down")

    async def _read(self, sub: Subscriber) -> None:
        while True:
            data = await self._receive()
            if data is None:
                return
            kind = data.get("type")
            if kind == "ping":
                await self.send('{"type":"pong"}')
            elif kind == "subscribe":
                await self._subscribe(sub, data)
            elif kind in ("pong", "auth"):
                continue
            else:
                await self.send_error("unknown_type", f"unknown message type {kind!r}")

    async def _subscribe(self, sub: Subscriber, data: dict[str, Any]) -> None:
        try:
            wanted = Subscription.parse(
                data.get("device_ids"), data.get("mode"), data.get("max_rate_s")
            )
        except ApiError as exc:
            await self.send_error(exc.code, f"{exc.field}: {exc.message}", field=exc.field)
            return
        if wanted.device_ids is not None:
            refused = await self._refused(wanted.device_ids)
            if refused:
                await self.send_error(
                    "unknown_devices",
                    f"not your devices: {', '.join(map(str, refused))}; selection unchanged",
                    device_ids=refused,
                )
                return
        sub.set_devices(wanted.device_ids, wanted.mode, wanted.max_rate_s)
        snapshot = await self._snapshot(wanted.device_ids)
        reply = {"type": "subscribed", **wanted.json(), "snapshot": len(snapshot)}
        await self.send(_dumps(reply), *snapshot)
