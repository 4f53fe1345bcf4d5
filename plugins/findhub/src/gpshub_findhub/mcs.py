"""The receiving end of Firebase Cloud Messaging: GCM check-in and an MCS session, in trio.

Find Hub answers a locate request with a push, so the plugin keeps (or opens per poll) a
session with Google's Mobile Connection Server, as an Android/Chrome GCM client does:

1. ``checkin`` — ``POST`` an ``AndroidCheckinRequest`` (protobuf) to the check-in URL with
   the registration's android id and security token; done before each session.
2. ``open_mcs_session`` — TCP (TLS by default) to ``mtalk.google.com:5228``; the client
   sends the protocol version byte (41), then frames of ``tag byte || varint length ||
   protobuf``: first a ``LoginRequest``, answered by a ``LoginResponse`` (after the
   server's own version byte).  Then the server sends ``DataMessageStanza``s, one per push;
   each is acknowledged with a selective ack (an ``IqStanza`` carrying extension 12), so
   the server does not deliver it again.  Either side may ping (``HeartbeatPing``,
   answered by ``HeartbeatAck``); the client pings after ``heartbeat_s`` without
   incoming traffic and gives the connection up when nothing comes back.
3. ``decode_fcm_payload`` — a push's ``raw_data`` is a web push ("aesgcm", ``webpush``);
   its JSON plaintext holds the ``DeviceUpdate`` protobuf, base64, under
   ``data["com.google.android.apps.adm.FCM_PAYLOAD"]``.

Messages the server queued while no client was connected arrive right after the login;
the ids of the pushes already handed out are sent in the login (``received_persistent_id``)
so that they are not delivered again, and ``McsSession.persistent_ids`` keeps the newest
200 for the plugin to save.  Field numbers follow Chromium's ``mcs.proto`` and
``checkin.proto`` (reference §4.3).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import trio

from hub.errors import CannotConnect, UpdateFailed
from hub.netguard import OutboundPolicy, system_resolver

from .webpush import FcmKeys, WebPushError, b64url_decode, decrypt_aesgcm
from .wire import Fields, WireError, bytes_field, encode_varint, fixed64_field, message_field
from .wire import varint_field as _varint

log = logging.getLogger(__name__)

MCS_VERSION = 41
MIN_SERVER_VERSION = 38
CHROME_VERSION = "94.0.4606.51"
DOMAIN = "mcs.android.com"
MAX_FRAME = 1 << 20
"""Largest frame accepted (a push is at most a few KiB)."""
MAX_PERSISTENT_IDS = 200
INBOX_SIZE = 1024
RECV_SIZE = 65536
FCM_PAYLOAD_KEY = "com.google.android.apps.adm.FCM_PAYLOAD"
DELETED_MESSAGES = "deleted_messages"
SELECTIVE_ACK_EXTENSION = 12
IQ_SET = 1

# Frame tags (mcs.proto)
HEARTBEAT_PING = 0
HEARTBEAT_ACK = 1
LOGIN_REQUEST = 2
LOGIN_RESPONSE = 3
CLOSE = 4
IQ_STANZA = 7
DATA_MESSAGE = 8
STREAM_ERROR = 10

Connector = Callable[[str, int], Awaitable[trio.abc.Stream]]
"""Opens the TCP connection to ``(host, port)``; TLS, if on, is added on top."""


# -- errors -------------------------------------------------------------------------------


class McsError(UpdateFailed):
    """Something went wrong talking to FCM (check-in, MCS, a push's content)."""


class McsConnectError(McsError, CannotConnect):
    """The MCS server could not be reached, refused TLS, or did not answer the login in time."""


class McsCheckinError(McsError):
    """The check-in endpoint answered with an error status (``status``)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"GCM check-in refused: HTTP {status}")
        self.status = status


class McsLoginError(McsError):
    """The MCS server refused the login (``code`` from its ``ErrorInfo``): the android id
    and security token of ``fcm_credentials.gcm`` are not (or no longer) valid."""

    def __init__(self, code: int, detail: str = "") -> None:
        text = f"MCS login refused (error {code})"
        super().__init__(f"{text}: {detail}" if detail else text)
        self.code = code


class McsClosed(McsError):
    """The session is over: the connection dropped or the server closed it.  Open a new one."""


class McsProtocolError(McsClosed):
    """The server sent bytes that are not MCS framing; the session was given up."""


class McsPayloadError(McsError):
    """A push whose content cannot be read (not a web push, wrong keys, not JSON, ...)."""


# -- endpoint and messages ---------------------------------------------------------------


@dataclass(frozen=True)
class McsEndpoint:
    """Where the check-in and the MCS session go: Google's by default, a fake in tests."""

    checkin_url: str = "https://android.clients.google.com/checkin"
    host: str = "mtalk.google.com"
    port: int = 5228
    tls: bool = True
    ca_file: str | None = None
    """A PEM file of CA certificates to trust instead of the system's (a test CA)."""


@dataclass(frozen=True)
class McsMessage:
    """One push (``DataMessageStanza``)."""

    persistent_id: str
    app_data: dict[str, str]
    raw_data: bytes = field(repr=False)
    category: str = ""
    from_: str = ""


def frame(tag: int, body: bytes = b"") -> bytes:
    """One MCS frame (without the version byte)."""
    return bytes([tag]) + encode_varint(len(body)) + body


@dataclass(frozen=True)
class Frame:
    tag: int
    body: bytes


class FrameDecoder:
    """Cuts a byte stream into frames, whatever the reads' boundaries: ``feed`` returns
    the frames completed by ``data`` and keeps the rest.  With ``expect_version`` the
    stream starts with the version byte (what each side sends first)."""

    def __init__(self, *, expect_version: bool, max_size: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._need_version = expect_version
        self._max = max_size
        self.version: int | None = None

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        buf = self._buf
        while True:
            if self._need_version:
                if not buf:
                    break
                if buf[0] < MIN_SERVER_VERSION:
                    raise McsProtocolError(f"unsupported MCS version {buf[0]}")
                self.version = buf[0]
                del buf[0]
                self._need_version = False
            size, pos = _frame_size(buf)
            if size is None:
                break
            if size > self._max:
                raise McsProtocolError(f"frame of {size} bytes (tag {buf[0]}) is too large")
            if len(buf) < pos + size:
                break
            frames.append(Frame(buf[0], bytes(buf[pos : pos + size])))
            del buf[: pos + size]
        return frames


def _frame_size(buf: bytearray) -> tuple[int | None, int]:
    """The body size of the frame at the start of ``buf`` and where its body starts, or
    ``(None, 0)`` if the header is not complete yet."""
    size = shift = 0
    for i in range(1, 6):
        if i >= len(buf):
            return None, 0
        byte = buf[i]
        size |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return size, i + 1
        shift += 7
    raise McsProtocolError("frame length longer than 5 bytes")


def login_request(android_id: int, security_token: int, persistent_ids: Iterable[str]) -> bytes:
    """The ``LoginRequest`` body (every field an Android/Chrome GCM client sends)."""
    heartbeat_stat = bytes_field(1, "") + _varint(2, True) + _varint(3, 10_000)
    return (
        bytes_field(1, CHROME_VERSION)
        + bytes_field(2, DOMAIN)
        + bytes_field(3, str(android_id))
        + bytes_field(4, str(android_id))
        + bytes_field(5, str(security_token))
        + bytes_field(6, f"android-{android_id:x}")
        + message_field(8, bytes_field(1, "new_vc") + bytes_field(2, "1"))
        + b"".join(bytes_field(10, pid) for pid in persistent_ids)
        + _varint(12, False)
        + message_field(13, heartbeat_stat)
        + _varint(14, True)
        + _varint(16, 2)  # auth_service: ANDROID_ID
        + _varint(17, 1)  # network_type
    )


def selective_ack(persistent_ids: Sequence[str]) -> bytes:
    """The ``IqStanza`` body acknowledging pushes by persistent id."""
    ack = b"".join(bytes_field(1, pid) for pid in persistent_ids)
    extension = _varint(1, SELECTIVE_ACK_EXTENSION) + bytes_field(2, ack)
    return _varint(2, IQ_SET) + bytes_field(3, "") + message_field(7, extension)


def parse_data_message(body: bytes) -> McsMessage:
    """A ``DataMessageStanza``; ``WireError`` if it is not one."""
    fields = Fields(body)
    app_data: dict[str, str] = {}
    for item in fields.messages(7):
        app_data[item.str(1)] = item.str(2)
    return McsMessage(
        persistent_id=fields.str(9),
        app_data=app_data,
        raw_data=fields.bytes(21),
        category=fields.str(5),
        from_=fields.str(3),
    )


def _check_id(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 1 << 64:
        raise ValueError(f"{name}: not a 64-bit unsigned number")
    return value


# -- check-in ----------------------------------------------------------------------------


def checkin_request(android_id: int, security_token: int) -> bytes:
    """The ``AndroidCheckinRequest`` body of a Chrome-browser GCM client."""
    chrome_build = _varint(1, 3) + bytes_field(2, CHROME_VERSION) + _varint(3, 1)
    checkin_proto = _varint(12, 3) + message_field(13, chrome_build)  # DEVICE_CHROME_BROWSER
    return (
        _varint(2, android_id)
        + message_field(4, checkin_proto)
        + fixed64_field(13, security_token)
        + _varint(14, 3)
        + _varint(22, 0)
    )


async def checkin(http: httpx.AsyncClient, url: str, android_id: int, security_token: int) -> None:
    """Check the GCM registration in, as a client does before each MCS session.

    A non-2xx answer raises ``McsCheckinError``; no answer, ``McsConnectError``.
    """
    body = checkin_request(
        _check_id("android_id", android_id), _check_id("security_token", security_token)
    )
    host = urlsplit(url).hostname or url
    try:
        response = await http.post(
            url, content=body, headers={"Content-Type": "application/x-protobuf"}
        )
    except httpx.HTTPError as exc:
        raise McsConnectError(f"GCM check-in at {host} failed: {type(exc).__name__}") from exc
    if not response.is_success:
        raise McsCheckinError(response.status_code)


# -- the session -------------------------------------------------------------------------


class McsSession:
    """A logged-in MCS connection; get it from ``open_mcs_session``.

    ``await receive()`` gives the next push and acknowledges it; pushes the session has
    handed out before (or that were passed in as already received) are acknowledged
    again and skipped, so a redelivery never reaches the caller twice.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        persistent_ids: Sequence[str],
        heartbeat_s: float,
        heartbeat_timeout_s: float,
        logger: logging.Logger,
    ) -> None:
        self._stream = stream
        self._heartbeat_s = heartbeat_s
        self._heartbeat_timeout_s = heartbeat_timeout_s
        self._log = logger
        self._send_lock = trio.Lock()
        self._decoder = FrameDecoder(expect_version=True)
        self._backlog: list[Frame] = []
        self._inbox_send, self._inbox_recv = trio.open_memory_channel[McsMessage](INBOX_SIZE)
        self._ids: dict[str, None] = dict.fromkeys(list(persistent_ids)[-MAX_PERSISTENT_IDS:])
        self._queued: set[str] = set()
        self._error: McsClosed | None = None
        self._bg_scope = trio.CancelScope()
        self._last_rx = trio.current_time()
        self.server_version: int | None = None
        self.pings_sent = 0
        """Heartbeat pings this client sent (after ``heartbeat_s`` without traffic)."""
        self.pings_answered = 0
        """Heartbeat pings from the server this client acknowledged."""
        self.skipped = 0
        """Stanzas acknowledged but not handed out (``deleted_messages``, duplicates)."""

    @property
    def persistent_ids(self) -> list[str]:
        """The ids to pass to the next session (and keep in state): those passed in and
        those handed out by ``receive``, the newest ``MAX_PERSISTENT_IDS``, oldest first."""
        return list(self._ids)

    @property
    def closed(self) -> bool:
        return self._error is not None

    async def receive(self) -> McsMessage:
        """The next push, acknowledged to the server.  ``McsClosed`` once the session is
        over (the pushes that arrived before are handed out first)."""
        try:
            message = await self._inbox_recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise self._error or McsClosed("the MCS session is closed") from None
        pid = message.persistent_id
        if pid:
            self._queued.discard(pid)
            self._remember(pid)
            # if the ack cannot go out, the id goes into the next login: no replay
            with contextlib.suppress(McsClosed):
                await self._send(frame(IQ_STANZA, selective_ack([pid])))
        return message

    # -- internals ------------------------------------------------------------------------

    def _remember(self, pid: str) -> None:
        self._ids.pop(pid, None)
        self._ids[pid] = None
        while len(self._ids) > MAX_PERSISTENT_IDS:
            del self._ids[next(iter(self._ids))]

    def _fail(self, error: McsClosed, level: int = logging.INFO) -> None:
        if self._error is None:
            self._error = error
            self._log.log(level, "MCS session ended: %s", error)
        self._inbox_send.close()
        self._bg_scope.cancel()

    async def _send(self, data: bytes) -> None:
        async with self._send_lock:
            if self._error is not None:
                raise self._error
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self._fail(McsClosed(f"MCS connection lost: {type(exc).__name__}"))
                raise self._error from None  # type: ignore[misc]

    async def _receive_frames(self) -> list[Frame]:
        data = await self._stream.receive_some(RECV_SIZE)
        if not data:
            raise McsClosed("the MCS server closed the connection")
        self._last_rx = trio.current_time()
        return self._decoder.feed(data)

    async def _login(self, android_id: int, security_token: int) -> None:
        request = login_request(android_id, security_token, self._ids)
        await self._send(bytes([MCS_VERSION]) + frame(LOGIN_REQUEST, request))
        while True:
            frames = await self._receive_frames()
            self.server_version = self._decoder.version
            for i, item in enumerate(frames):
                if item.tag == LOGIN_RESPONSE:
                    self._check_login(item.body)
                    self._backlog = frames[i + 1 :]
                    return
                if item.tag in (CLOSE, STREAM_ERROR):
                    raise McsClosed("the MCS server ended the session before the login answer")
                if item.tag == HEARTBEAT_PING:
                    await self._send(frame(HEARTBEAT_ACK))

    def _check_login(self, body: bytes) -> None:
        try:
            fields = Fields(body)
            error = fields.message(3)
            if error is not None:
                raise McsLoginError(error.int(1), error.str(2)[:200])
        except WireError as exc:
            raise McsProtocolError(f"unreadable LoginResponse: {exc}") from None

    async def _run_background(self) -> None:
        with self._bg_scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_loop)
                nursery.start_soon(self._heartbeat_loop)

    async def _read_loop(self) -> None:
        try:
            for item in self._backlog:
                await self._handle(item)
            self._backlog = []
            while True:
                for item in await self._receive_frames():
                    await self._handle(item)
        except McsClosed as exc:
            self._fail(exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._fail(McsClosed(f"MCS connection lost: {type(exc).__name__}"))
        except Exception as exc:  # a bug must not take the caller's nursery down
            self._log.exception("MCS reader failed")
            self._fail(McsProtocolError(f"MCS reader failed: {type(exc).__name__}"))

    async def _heartbeat_loop(self) -> None:
        while True:
            await trio.sleep_until(self._last_rx + self._heartbeat_s)
            if trio.current_time() < self._last_rx + self._heartbeat_s:
                continue  # traffic arrived meanwhile
            sent_at = trio.current_time()
            try:
                await self._send(frame(HEARTBEAT_PING))
            except McsClosed:
                return
            self.pings_sent += 1
            await trio.sleep_until(sent_at + self._heartbeat_timeout_s)
            if self._last_rx < sent_at:
                self._fail(
                    McsClosed(f"no answer to a heartbeat within {self._heartbeat_timeout_s:g} s")
                )
                return

    async def _handle(self, item: Frame) -> None:
        tag = item.tag
        if tag == HEARTBEAT_PING:
            await self._send(frame(HEARTBEAT_ACK))
            self.pings_answered += 1
        elif tag == DATA_MESSAGE:
            await self._handle_data(item.body)
        elif tag == CLOSE:
            raise McsClosed("the MCS server closed the session")
        elif tag == STREAM_ERROR:
            try:
                kind = Fields(item.body).str(1)[:100]
            except WireError:
                kind = "unreadable"
            raise McsClosed(f"MCS stream error: {kind or 'unspecified'}")
        # HeartbeatAck, IqStanza and anything else: the traffic itself is the news

    async def _handle_data(self, body: bytes) -> None:
        try:
            message = parse_data_message(body)
        except WireError as exc:
            # Without its id it cannot be acknowledged; the server will offer it again.
            self._log.warning("skipped an unreadable MCS data message: %s", exc)
            return
        pid = message.persistent_id
        duplicate = bool(pid) and (pid in self._ids or pid in self._queued)
        if message.app_data.get("message_type") == DELETED_MESSAGES or duplicate:
            self.skipped += 1
            if pid:
                await self._send(frame(IQ_STANZA, selective_ack([pid])))
            return
        if pid:
            self._queued.add(pid)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._inbox_send.send(message)  # fails only when the session is closing


@functools.lru_cache(maxsize=8)
def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


async def _open_stream(endpoint: McsEndpoint, connect: Connector | None) -> trio.abc.Stream:
    where = f"{endpoint.host}:{endpoint.port}"
    try:
        tcp = await (connect or trio.open_tcp_stream)(endpoint.host, endpoint.port)
    except McsError:
        raise
    except OSError as exc:
        raise McsConnectError(f"cannot connect to MCS at {where}: {exc}") from None
    if not endpoint.tls:
        return tcp
    try:
        context = _tls_context(endpoint.ca_file)
    except (OSError, ssl.SSLError) as exc:
        await trio.aclose_forcefully(tcp)
        raise McsConnectError(f"cannot load the MCS CA file: {exc}") from None
    stream = trio.SSLStream(tcp, context, server_hostname=endpoint.host)
    try:
        await stream.do_handshake()
    except (trio.BrokenResourceError, OSError) as exc:
        await trio.aclose_forcefully(tcp)
        reason = exc.__cause__ or exc
        raise McsConnectError(f"TLS with MCS at {where} failed: {reason}") from None
    return stream


@asynccontextmanager
async def open_mcs_session(
    endpoint: McsEndpoint,
    *,
    android_id: int,
    security_token: int,
    persistent_ids: Sequence[str] = (),
    heartbeat_s: float = 20,
    heartbeat_timeout_s: float | None = None,
    login_timeout_s: float = 30,
    connect: Connector | None = None,
    logger: logging.Logger | None = None,
) -> AsyncIterator[McsSession]:
    """Connect and log in to MCS; the session lives for the ``async with`` block.

    ``persistent_ids``: pushes already received (sent in the login so the server does
    not deliver them again).  The connection is given up when nothing arrives within
    ``heartbeat_timeout_s`` (default: ``heartbeat_s``) of a ping.  ``connect`` replaces
    ``trio.open_tcp_stream`` (``guarded_connector`` vets the address first).  Raises
    ``McsConnectError`` (unreachable, TLS, no login answer within ``login_timeout_s``),
    ``McsLoginError`` or ``McsProtocolError``.
    """
    _check_id("android_id", android_id)
    _check_id("security_token", security_token)
    where = f"{endpoint.host}:{endpoint.port}"
    try:
        with trio.fail_after(login_timeout_s):
            stream = await _open_stream(endpoint, connect)
            session = McsSession(
                stream,
                persistent_ids=persistent_ids,
                heartbeat_s=heartbeat_s,
                heartbeat_timeout_s=heartbeat_timeout_s or heartbeat_s,
                logger=logger or log,
            )
            try:
                await session._login(android_id, security_token)
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
    except trio.TooSlowError:
        raise McsConnectError(
            f"no MCS login answer from {where} within {login_timeout_s:g} s"
        ) from None
    except McsProtocolError:
        raise
    except McsClosed as exc:
        raise McsConnectError(f"MCS at {where} dropped the login: {exc}") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise McsConnectError(f"MCS at {where} dropped the login: {type(exc).__name__}") from None
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session._run_background)
            try:
                yield session
            except BaseException as exc:  # re-raised below, not wrapped in a group
                body_error = exc
            finally:
                session._fail(McsClosed("the MCS session is closed"), logging.DEBUG)
                nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(stream)
    if body_error is not None:
        raise body_error


def guarded_connector(policy: OutboundPolicy) -> Connector:
    """A ``connect`` for ``open_mcs_session`` that applies the hub's outbound policy:
    the host is resolved once, every address must be allowed, and the connection goes to
    a vetted address (the MCS host is an option a user can set)."""

    async def connect(host: str, port: int) -> trio.abc.Stream:
        try:
            addresses = await system_resolver(host, port)
        except OSError as exc:
            raise McsConnectError(f"cannot resolve {host}: {exc}") from None
        for address in addresses:
            try:
                policy.check_address(address, host=host)
            except Exception as exc:  # BlockedAddress, or not an IP address
                raise McsConnectError(f"MCS at {host}:{port} refused: {exc}") from None
        error: OSError = OSError(f"no addresses for {host}")
        for address in addresses:
            try:
                return await trio.open_tcp_stream(address, port)
            except OSError as exc:
                error = exc
        raise error

    return connect


# -- push content ------------------------------------------------------------------------


def decode_fcm_payload(message: McsMessage, keys: FcmKeys) -> bytes | None:
    """The ``DeviceUpdate`` protobuf a Find Hub push carries, or ``None`` for another push.

    Decrypts ``raw_data`` (web push "aesgcm" with ``keys``), reads the JSON and
    base64-decodes ``data["com.google.android.apps.adm.FCM_PAYLOAD"]``.  Anything
    unreadable raises ``McsPayloadError``.
    """
    crypto_key = message.app_data.get("crypto-key")
    encryption = message.app_data.get("encryption")
    if crypto_key is None or encryption is None:
        raise McsPayloadError("push without crypto-key/encryption: not a web push")
    try:
        plain = decrypt_aesgcm(
            message.raw_data,
            crypto_key=crypto_key,
            encryption=encryption,
            private_key=keys.private_key,
            auth_secret=keys.auth_secret,
        )
    except WebPushError as exc:
        raise McsPayloadError(f"push cannot be decrypted: {exc}") from None
    try:
        document = json.loads(plain)
    except (ValueError, RecursionError):
        raise McsPayloadError("push content is not JSON") from None
    if not isinstance(document, dict):
        raise McsPayloadError("push content is not a JSON object")
    data = document.get("data")
    if data is None:
        return None
    if not isinstance(data, dict):
        raise McsPayloadError("push content: data is not an object")
    payload = data.get(FCM_PAYLOAD_KEY)
    if payload is None:
        return None
    if not isinstance(payload, str):
        raise McsPayloadError(f"push content: {FCM_PAYLOAD_KEY} is not a string")
    try:
        return b64url_decode(payload)
    except ValueError:
        raise McsPayloadError(f"push content: {FCM_PAYLOAD_KEY} is not base64") from None


__all__ = [
    "CHROME_VERSION",
    "FCM_PAYLOAD_KEY",
    "MAX_PERSISTENT_IDS",
    "MCS_VERSION",
    "Connector",
    "FrameDecoder",
    "McsCheckinError",
    "McsClosed",
    "McsConnectError",
    "McsEndpoint",
    "McsError",
    "McsLoginError",
    "McsMessage",
    "McsPayloadError",
    "McsProtocolError",
    "McsSession",
    "checkin",
    "checkin_request",
    "decode_fcm_payload",
    "frame",
    "guarded_connector",
    "login_request",
    "open_mcs_session",
    "parse_data_message",
    "selective_ack",
]
