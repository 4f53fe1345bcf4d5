"""``FakeMcs`` and ``FakeCheckin``: Google's FCM receiving side on loopback, for tests.

``FakeMcs`` is a trio TCP server (TLS optional, with a certificate from a CA made at run
time) speaking the server's half of MCS as ``mcs`` describes it:

* it reads the version byte and the ``LoginRequest`` and records its fields
  (``logins``), then answers ``LoginResponse`` — or an error ``LoginResponse`` when the
  ``login_error`` switch is set or the android id / security token are not the expected
  ones; ``answer_login = False`` makes it say nothing at all;
* it delivers pushes as ``DataMessageStanza``s: ``push(payload)`` wraps a
  ``DeviceUpdate`` protobuf into Find Hub's JSON, encrypts it with ``encrypt_aesgcm`` to
  the registered receiver key and auth secret (the test keys by default) and sends it;
* every push stays pending until the client acknowledges it (``acked_ids``) or lists it
  as received in a later login; a new login gets the pending ones, right after the
  ``LoginResponse`` in the same write; a second login takes over from the first
  connection, which is closed (one session per android id, as Google does);
* it answers ``HeartbeatPing`` (unless ``answer_pings`` is off), can ping the client and
  wait for the ack (``ping``), send a ``deleted_messages`` stanza, ``Close``, a
  ``StreamErrorStanza``, drop the connection (``drop``), or cut the next push half-way
  and drop the connection (``drop_mid_frame``); ``chunk_size`` writes everything in
  pieces of that many bytes, with a pause between them, so frames arrive split.

``FakeCheckin`` answers ``POST /checkin`` with an ``AndroidCheckinResponse`` and records
the requests; with ``FakeMcs(checkin=True)`` it is served alongside, and ``serve``
reports an ``McsEndpoint`` pointing at both::

    fake = FakeMcs(android_id=..., security_token=...)
    async with trio.open_nursery() as nursery:
        endpoint = await nursery.start(fake.serve)
        async with open_mcs_session(endpoint, android_id=..., security_token=...) as s:
            fake.push(device_update)
            message = await s.receive()

The running hub never imports this module.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .mcs import (
    CLOSE,
    DATA_MESSAGE,
    DELETED_MESSAGES,
    FCM_PAYLOAD_KEY,
    HEARTBEAT_ACK,
    HEARTBEAT_PING,
    IQ_STANZA,
    LOGIN_REQUEST,
    LOGIN_RESPONSE,
    MCS_VERSION,
    SELECTIVE_ACK_EXTENSION,
    STREAM_ERROR,
    FrameDecoder,
    McsEndpoint,
    McsProtocolError,
    frame,
)
from .webpush import FcmKeys, encrypt_aesgcm, fcm_keys_json, load_fcm_keys
from .wire import Fields, WireError, bytes_field, fixed64_field, message_field, varint_field

TEST_PRIVATE_SCALAR = int.from_bytes(bytes(range(1, 33)), "big")
"""The receiver key of the reference's web-push vector (§8): scalar 01..20."""
TEST_AUTH_SECRET = bytes(range(16))
DEFAULT_CATEGORY = "org.chromium.linux"
DEFAULT_SENDER = "289722593072"
DEFAULT_APP_ID = "wp:com.google.android.apps.adm#00000000-0000-4000-8000-000000000000"
LOGIN_REFUSED = (401, "authentication failed")
_CONNECTION_ERRORS = (
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    McsProtocolError,
    WireError,
    OSError,
)


def sample_fcm_keys() -> FcmKeys:
    """The receiver keys the fake encrypts to by default (the §8 vector's)."""
    return load_fcm_keys(sample_fcm_keys_json())


def sample_fcm_keys_json() -> dict[str, str]:
    """``fcm_credentials.keys`` of a test secrets.json matching ``sample_fcm_keys``."""
    private = ec.derive_private_key(TEST_PRIVATE_SCALAR, ec.SECP256R1())
    return fcm_keys_json(private, TEST_AUTH_SECRET)


def fcm_json(payload: bytes) -> bytes:
    """The JSON a Find Hub push carries: the ``DeviceUpdate`` protobuf, base64."""
    document = {"data": {FCM_PAYLOAD_KEY: base64.b64encode(payload).decode("ascii")}}
    return json.dumps(document).encode()


# -- records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginRecord:
    """The fields of a ``LoginRequest`` as the fake received them."""

    id: str
    domain: str
    user: str
    resource: str
    auth_token: str
    device_id: str
    settings: dict[str, str]
    received_persistent_ids: list[str]
    adaptive_heartbeat: bool | None
    heartbeat_stat: tuple[str, bool, int] | None
    use_rmq2: bool | None
    auth_service: int | None
    network_type: int | None
    field_numbers: list[int]
    version: int | None

    @classmethod
    def parse(cls, body: bytes, version: int | None) -> LoginRecord:
        f = Fields(body)
        stat = f.message(13)

        def opt_int(number: int) -> int | None:
            return f.int(number) if number in f else None

        return cls(
            id=f.str(1),
            domain=f.str(2),
            user=f.str(3),
            resource=f.str(4),
            auth_token=f.str(5),
            device_id=f.str(6),
            settings={s.str(1): s.str(2) for s in f.messages(8)},
            received_persistent_ids=f.strs(10),
            adaptive_heartbeat=None if 12 not in f else f.bool(12),
            heartbeat_stat=None if stat is None else (stat.str(1), stat.bool(2), stat.int(3)),
            use_rmq2=None if 14 not in f else f.bool(14),
            auth_service=opt_int(16),
            network_type=opt_int(17),
            field_numbers=f.numbers(),
            version=version,
        )


# -- test certificates ------------------------------------------------------------------


@dataclass(frozen=True)
class FakeCertificates:
    """A CA and a server certificate for ``localhost`` / ``127.0.0.1``, as PEM files."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_test_certificates(directory: Path) -> FakeCertificates:
    """Write a fresh test CA and a server certificate signed by it into ``directory``."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gpshub test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    out = FakeCertificates(
        directory / "mcs-ca.pem", directory / "mcs-cert.pem", directory / "mcs-key.pem"
    )
    out.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    out.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return out


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


# -- check-in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckinRecord:
    """An ``AndroidCheckinRequest`` as the fake received it."""

    android_id: int
    security_token: int
    version: int
    user_serial_number: int | None
    device_type: int
    chrome_platform: int
    chrome_version: str
    chrome_channel: int
    content_type: str
    field_numbers: list[int]


class FakeCheckin:
    """``POST /checkin``: answers ``AndroidCheckinResponse{stats_ok, time_msec,
    android_id, security_token}`` (the request's, or the expected ones) and records each
    request in ``requests``.  A request with other credentials than the expected ones gets
    401, an unreadable body 400; the ``status`` switch forces an error status."""

    def __init__(self, *, android_id: int | None = None, security_token: int | None = None):
        self.android_id = android_id
        self.security_token = security_token
        self.requests: list[CheckinRecord] = []
        self.status: int | None = None
        self.app = Starlette(routes=[Route("/checkin", self._checkin, methods=["POST"])])
        self.app.state.checkin = self

    async def _checkin(self, request: Request) -> Response:
        try:
            fields = Fields(await request.body())
            checkin = fields.message(4) or Fields(b"")
            build = checkin.message(13) or Fields(b"")
            record = CheckinRecord(
                android_id=fields.int(2),
                security_token=fields.int(13),
                version=fields.int(14),
                user_serial_number=fields.int(22) if 22 in fields else None,
                device_type=checkin.int(12),
                chrome_platform=build.int(1),
                chrome_version=build.str(2),
                chrome_channel=build.int(3),
                content_type=request.headers.get("content-type", ""),
                field_numbers=fields.numbers(),
            )
        except WireError:
            return Response("<html>400 Bad Request</html>", 400, media_type="text/html")
        self.requests.append(record)
        if self.status is not None:
            return Response(f"<html>{self.status}</html>", self.status, media_type="text/html")
        if (self.android_id is not None and record.android_id != self.android_id) or (
            self.security_token is not None and record.security_token != self.security_token
        ):
            return Response("<html>401 Unauthorized</html>", 401, media_type="text/html")
        body = (
            varint_field(1, True)
            + varint_field(3, int(time.time() * 1000))
            + fixed64_field(7, record.android_id)
            + fixed64_field(8, record.security_token)
        )
        return Response(body, media_type="application/x-protobuf")


def fake_checkin_app(
    *, android_id: int | None = None, security_token: int | None = None
) -> Starlette:
    """A ``FakeCheckin``'s app; the recorder is ``app.state.checkin``."""
    return FakeCheckin(android_id=android_id, security_token=security_token).app


# -- MCS --------------------------------------------------------------------------------


@dataclass
class _Connection:
    stream: trio.abc.Stream
    outbox: trio.MemorySendChannel[tuple[bytes, bool]]
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)

    def send(self, data: bytes, *, is_push: bool = False) -> None:
        # a connection already gone: a push stays pending
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            self.outbox.send_nowait((data, is_push))


class FakeMcs:
    """Google's MCS server on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        android_id: int | None = None,
        security_token: int | None = None,
        keys: FcmKeys | None = None,
        tls: bool = False,
        cert_dir: Path | str | None = None,
        checkin: bool = True,
        category: str = DEFAULT_CATEGORY,
        sender: str = DEFAULT_SENDER,
        app_id: str = DEFAULT_APP_ID,
    ) -> None:
        self.android_id = android_id
        self.security_token = security_token
        keys = keys or sample_fcm_keys()
        self.receiver_public, self.auth_secret = keys.public_key, keys.auth_secret
        self.tls = tls
        self._cert_dir = Path(cert_dir) if cert_dir is not None else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.certificates: FakeCertificates | None = None
        self.checkin = (
            FakeCheckin(android_id=android_id, security_token=security_token) if checkin else None
        )
        self.category, self.sender, self.app_id = category, sender, app_id
        self.port = 0
        self.checkin_url = "http://127.0.0.1:9/checkin"  # nothing listens there
        # switches
        self.login_error: tuple[int, str] | None = None
        self.answer_login = True
        self.answer_pings = True
        self.drop_mid_frame = False
        self.chunk_size: int | None = None
        self.chunk_pause_s = 0.001
        # records
        self.logins: list[LoginRecord] = []
        self.acked_ids: list[str] = []
        self.delivered: list[str] = []
        """Persistent ids in the order they were written to a client (repeats included)."""
        self.client_tags: list[int] = []
        self.pings_received = 0
        self.ping_acks_received = 0
        self.connections = 0
        self._pending: dict[str, bytes] = {}
        self._serial = 0
        self._conn: _Connection | None = None
        self._changed = trio.Event()

    # -- set-up -------------------------------------------------------------------------

    def register(self, receiver_public: bytes, auth_secret: bytes) -> None:
        """Encrypt later pushes to this receiver (``fcm_credentials.keys``)."""
        self.receiver_public, self.auth_secret = receiver_public, auth_secret

    @property
    def ca_file(self) -> str | None:
        """The test CA's PEM file, for ``McsEndpoint.ca_file`` (TLS only)."""
        return None if self.certificates is None else str(self.certificates.ca_file)

    def endpoint(self) -> McsEndpoint:
        return McsEndpoint(
            checkin_url=self.checkin_url,
            host="127.0.0.1",
            port=self.port,
            tls=self.tls,
            ca_file=self.ca_file,
        )

    async def serve(self, *, task_status: trio.TaskStatus[McsEndpoint] = trio.TASK_STATUS_IGNORED):
        """Listen on 127.0.0.1 (and serve the check-in app) until cancelled; report the
        ``McsEndpoint`` once bound."""
        listeners: list[Any] = list(await trio.open_tcp_listeners(0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]
        if self.tls:
            if self._cert_dir is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="fake-mcs-")
                self._cert_dir = Path(self._tmp.name)
            self.certificates = make_test_certificates(self._cert_dir)
            context = self.certificates.server_context()
            listeners = [trio.SSLListener(listener, context) for listener in listeners]
        try:
            async with trio.open_nursery() as nursery:
                if self.checkin is not None:
                    from hub.testing import serve_app

                    url = await nursery.start(serve_app, self.checkin.app)
                    self.checkin_url = f"{url}/checkin"
                await nursery.start(trio.serve_listeners, self._handle, listeners)
                task_status.started(self.endpoint())
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()

    # -- pushes ---------------------------------------------------------------------------

    def push(self, payload: bytes, *, persistent_id: str | None = None) -> str:
        """Send a Find Hub push carrying ``payload`` (a ``DeviceUpdate``); its id."""
        return self.push_json(json.loads(fcm_json(payload)), persistent_id=persistent_id)

    def push_json(self, document: Mapping[str, Any], *, persistent_id: str | None = None) -> str:
        """Send a web push whose plaintext is this JSON document (any push)."""
        raw, crypto_key, encryption = encrypt_aesgcm(
            json.dumps(document).encode(),
            receiver_public=self.receiver_public,
            auth_secret=self.auth_secret,
        )
        app_data = {"crypto-key": crypto_key, "encryption": encryption, "subtype": self.app_id}
        return self.push_raw(app_data=app_data, raw_data=raw, persistent_id=persistent_id)

    def push_raw(
        self,
        *,
        app_data: Mapping[str, str],
        raw_data: bytes = b"",
        persistent_id: str | None = None,
        category: str | None = None,
    ) -> str:
        """Send a ``DataMessageStanza`` as given (garbage included); it stays pending
        until acknowledged."""
        pid = persistent_id or self._next_id()
        body = (
            bytes_field(2, pid.rsplit("%", 1)[-1])
            + bytes_field(3, self.sender)
            + bytes_field(5, self.category if category is None else category)
            + b"".join(
                message_field(7, bytes_field(1, k) + bytes_field(2, v)) for k, v in app_data.items()
            )
            + bytes_field(9, pid)
            + varint_field(18, int(time.time() * 1000))
            + (bytes_field(21, raw_data) if raw_data else b"")
        )
        self._pending[pid] = frame(DATA_MESSAGE, body)
        if self._conn is not None:
            self.delivered.append(pid)
            self._conn.send(self._pending[pid], is_push=True)
        return pid

    def send_deleted_messages(self) -> str:
        """The stanza FCM sends when it dropped messages for this client; its id."""
        return self.push_raw(app_data={"message_type": DELETED_MESSAGES})

    @property
    def pending_ids(self) -> list[str]:
        """Pushes not yet acknowledged (delivered at the next login)."""
        return list(self._pending)

    def _next_id(self) -> str:
        self._serial += 1
        return f"0:{1_700_000_000_000_000 + self._serial}%{self._serial:016x}"

    # -- control --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def ping(self, timeout: float = 10) -> None:
        """Ping the client and wait for its ``HeartbeatAck``."""
        conn = self._require_connection()
        acks = self.ping_acks_received
        conn.send(frame(HEARTBEAT_PING))
        await self.wait_for(lambda: self.ping_acks_received > acks, timeout)

    def close(self) -> None:
        """Send ``Close`` (the client should end the session)."""
        self._require_connection().send(frame(CLOSE))

    def stream_error(self, kind: str = "conflict", text: str = "") -> None:
        body = bytes_field(1, kind) + (bytes_field(2, text) if text else b"")
        self._require_connection().send(frame(STREAM_ERROR, body))

    def drop(self) -> None:
        """Drop the current connection without a word."""
        self._require_connection().scope.cancel()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        """Wait (trio time) until ``predicate()`` holds; it is checked whenever the fake
        records something."""
        with trio.fail_after(timeout):
            while not predicate():
                await self._changed.wait()

    def _require_connection(self) -> _Connection:
        if self._conn is None:
            raise RuntimeError("no client is logged in")
        return self._conn

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- a connection -----------------------------------------------------------------------

    async def _handle(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        outbox, inbox = trio.open_memory_channel[tuple[bytes, bool]](1000)
        conn = _Connection(stream, outbox)
        try:
            with conn.scope:
                decoder = FrameDecoder(expect_version=True)
                login = await self._read_login(stream, decoder)
                if login is None:
                    return
                if not self.answer_login:
                    await trio.sleep_forever()
                refusal = self._refusal(login)
                if refusal is not None:
                    error = varint_field(1, refusal[0]) + bytes_field(2, refusal[1])
                    response = bytes_field(1, "fake-mcs") + message_field(3, error)
                    await stream.send_all(bytes([MCS_VERSION]) + frame(LOGIN_RESPONSE, response))
                    return
                self._accept(conn, login)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, conn, inbox)
                    await self._reader(conn, decoder)
                    conn.scope.cancel()
        except _CONNECTION_ERRORS:
            pass
        finally:
            if self._conn is conn:
                self._conn = None
            outbox.close()
            await trio.aclose_forcefully(stream)
            self._notify()

    async def _read_login(
        self, stream: trio.abc.Stream, decoder: FrameDecoder
    ) -> LoginRecord | None:
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return None
            for item in decoder.feed(data):
                self.client_tags.append(item.tag)
                if item.tag == LOGIN_REQUEST:
                    record = LoginRecord.parse(item.body, decoder.version)
                    self.logins.append(record)
                    self._notify()
                    return record

    def _refusal(self, login: LoginRecord) -> tuple[int, str] | None:
        if self.login_error is not None:
            return self.login_error
        if self.android_id is not None and login.user != str(self.android_id):
            return LOGIN_REFUSED
        if self.security_token is not None and login.auth_token != str(self.security_token):
            return LOGIN_REFUSED
        return None

    def _accept(self, conn: _Connection, login: LoginRecord) -> None:
        if self._conn is not None:
            self._conn.scope.cancel()  # the newer session wins
        for pid in login.received_persistent_ids:
            self._pending.pop(pid, None)
        self._conn = conn
        response = bytes_field(1, "fake-mcs") + varint_field(8, int(time.time() * 1000))
        conn.send(bytes([MCS_VERSION]) + frame(LOGIN_RESPONSE, response))
        for pid, data in self._pending.items():
            self.delivered.append(pid)
            conn.send(data, is_push=True)

    async def _writer(
        self, conn: _Connection, inbox: trio.MemoryReceiveChannel[tuple[bytes, bool]]
    ) -> None:
        try:
            await self._write_loop(conn, inbox)
        except _CONNECTION_ERRORS:
            conn.scope.cancel()

    async def _write_loop(
        self, conn: _Connection, inbox: trio.MemoryReceiveChannel[tuple[bytes, bool]]
    ) -> None:
        async for item in inbox:
            items = [item]
            while True:  # coalesce what is queued: several frames per write
                try:
                    items.append(inbox.receive_nowait())
                except trio.WouldBlock:
                    break
            out = bytearray()
            for data, is_push in items:
                if is_push and self.drop_mid_frame:
                    self.drop_mid_frame = False
                    await self._write(conn.stream, bytes(out) + data[: len(data) // 2])
                    conn.scope.cancel()
                    return
                out += data
            await self._write(conn.stream, bytes(out))

    async def _write(self, stream: trio.abc.Stream, data: bytes) -> None:
        if not self.chunk_size:
            await stream.send_all(data)
            return
        for start in range(0, len(data), self.chunk_size):
            await stream.send_all(data[start : start + self.chunk_size])
            await trio.sleep(self.chunk_pause_s)

    async def _reader(self, conn: _Connection, decoder: FrameDecoder) -> None:
        with contextlib.suppress(*_CONNECTION_ERRORS):
            await self._read_loop(conn, decoder)

    async def _read_loop(self, conn: _Connection, decoder: FrameDecoder) -> None:
        while True:
            data = await conn.stream.receive_some(65536)
            if not data:
                return
            for item in decoder.feed(data):
                self.client_tags.append(item.tag)
                if item.tag == HEARTBEAT_PING:
                    self.pings_received += 1
                    if self.answer_pings:
                        conn.send(frame(HEARTBEAT_ACK))
                elif item.tag == HEARTBEAT_ACK:
                    self.ping_acks_received += 1
                elif item.tag == IQ_STANZA:
                    self._selective_ack(item.body)
                elif item.tag == CLOSE:
                    return
                self._notify()

    def _selective_ack(self, body: bytes) -> None:
        extension = Fields(body).message(7)
        if extension is None or extension.int(1) != SELECTIVE_ACK_EXTENSION:
            return
        for pid in Fields(extension.bytes(2)).strs(1):
            self._pending.pop(pid, None)
            self.acked_ids.append(pid)
