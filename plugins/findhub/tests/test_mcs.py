"""The FCM/MCS client against ``FakeMcs``: login, pushes, acks, heartbeats, drops, TLS."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio.testing import MockClock

from gpshub_findhub.fake_mcs import FakeMcs, fcm_json, sample_fcm_keys, sample_fcm_keys_json
from gpshub_findhub.mcs import (
    CHROME_VERSION,
    DATA_MESSAGE,
    HEARTBEAT_PING,
    IQ_STANZA,
    LOGIN_REQUEST,
    MAX_PERSISTENT_IDS,
    FrameDecoder,
    McsCheckinError,
    McsClosed,
    McsConnectError,
    McsEndpoint,
    McsError,
    McsLoginError,
    McsMessage,
    McsPayloadError,
    McsProtocolError,
    checkin,
    checkin_request,
    decode_fcm_payload,
    frame,
    guarded_connector,
    login_request,
    open_mcs_session,
)
from gpshub_findhub.webpush import encrypt_aesgcm
from gpshub_findhub.wire import Fields, bytes_field, message_field, varint_field
from hub.errors import CannotConnect, UpdateFailed
from hub.netguard import OutboundPolicy
from hub.testing import LOOPBACK

ANDROID_ID = 4_123_456_789_012_345_678
SECURITY_TOKEN = 9_876_543_210_987_654_321
KEYS = sample_fcm_keys()
UPDATE = bytes.fromhex("0a0408021a00")  # stands for a DeviceUpdate protobuf


@pytest.fixture
def fake() -> FakeMcs:
    return FakeMcs(android_id=ANDROID_ID, security_token=SECURITY_TOKEN, checkin=False)


@pytest.fixture
async def endpoint(nursery: trio.Nursery, fake: FakeMcs) -> McsEndpoint:
    return await nursery.start(fake.serve)


def session(endpoint: McsEndpoint, **kw: Any) -> Any:
    kw.setdefault("android_id", ANDROID_ID)
    kw.setdefault("security_token", SECURITY_TOKEN)
    return open_mcs_session(endpoint, **kw)


async def receive(s: Any, timeout: float = 5) -> McsMessage:
    with trio.fail_after(timeout):
        return await s.receive()


# -- framing ----------------------------------------------------------------------------------


def test_frames_split_across_reads_and_several_per_read() -> None:
    stream = bytes([41]) + frame(3, b"login") + frame(0) + frame(8, b"x" * 300) + frame(1)
    whole = FrameDecoder(expect_version=True)
    frames = whole.feed(stream)
    assert [(f.tag, f.body) for f in frames] == [(3, b"login"), (0, b""), (8, b"x" * 300), (1, b"")]
    assert whole.version == 41
    bytewise = FrameDecoder(expect_version=True)
    got = [f for i in range(len(stream)) for f in bytewise.feed(stream[i : i + 1])]
    assert got == frames


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes([37, 3, 0]), "unsupported MCS version 37"),
        (bytes([41, 8]) + b"\xff" * 5, "frame length longer than 5 bytes"),
        (bytes([41, 8, 0x80, 0x80, 0x80, 0x01]), "too large"),
    ],
)
def test_bad_framing_refused(data: bytes, message: str) -> None:
    with pytest.raises(McsProtocolError, match=message):
        FrameDecoder(expect_version=True).feed(data)


# -- login --------------------------------------------------------------------------------------


async def test_login_fields_exact(fake: FakeMcs, endpoint: McsEndpoint) -> None:
    async with session(endpoint, persistent_ids=["0:1%a", "0:2%b"]) as s:
        assert s.server_version == 41
    (login,) = fake.logins
    assert login.version == 41
    assert login.id == CHROME_VERSION
    assert login.domain == "mcs.android.com"
    assert login.user == login.resource == str(ANDROID_ID)
    assert login.auth_token == str(SECURITY_TOKEN)
    assert login.device_id == f"android-{ANDROID_ID:x}"
    assert login.settings == {"new_vc": "1"}
    assert login.received_persistent_ids == ["0:1%a", "0:2%b"]
    assert login.adaptive_heartbeat is False
    assert login.heartbeat_stat == ("", True, 10_000)
    assert login.use_rmq2 is True
    assert login.auth_service == 2
    assert login.network_type == 1
    assert login.field_numbers == [1, 2, 3, 4, 5, 6, 8, 10, 12, 13, 14, 16, 17]
    assert fake.client_tags[0] == LOGIN_REQUEST


def test_login_request_bytes() -> None:
    body = login_request(0x1234, 77, ["p"])
    assert Fields(body).str(6) == "android-1234"
    assert body.startswith(bytes_field(1, CHROME_VERSION) + bytes_field(2, "mcs.android.com"))
    assert body.endswith(
        bytes.fromhex("6000")
        + message_field(13, bytes.fromhex("0a00") + bytes.fromhex("1001") + varint_field(3, 10_000))
        + bytes.fromhex("7001800102880101")
    )


async def test_login_error(fake: FakeMcs, endpoint: McsEndpoint) -> None:
    fake.login_error = (401, "bad token")
    with pytest.raises(McsLoginError, match=r"error 401\): bad token") as caught:
        async with session(endpoint):
            pass
    assert caught.value.code == 401
    assert isinstance(caught.value, UpdateFailed)


async def test_wrong_security_token_refused(
    endpoint: McsEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(McsLoginError) as caught:
        async with session(endpoint, security_token=SECURITY_TOKEN + 1):
            pass
    secret = str(SECURITY_TOKEN + 1)
    assert secret not in str(caught.value) and secret not in caplog.text


async def test_login_timeout(fake: FakeMcs, endpoint: McsEndpoint, gpshub_clock: MockClock) -> None:
    fake.answer_login = False
    start = trio.current_time()
    with pytest.raises(McsConnectError, match=r"no MCS login answer .* within 30 s"):
        async with session(endpoint):
            pass
    assert trio.current_time() - start == pytest.approx(30)


async def test_connection_refused() -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    with pytest.raises(McsConnectError, match="cannot connect") as caught:
        async with session(McsEndpoint(host="127.0.0.1", port=port, tls=False)):
            pass
    assert isinstance(caught.value, CannotConnect)


async def test_guarded_connector_applies_the_outbound_policy(endpoint: McsEndpoint) -> None:
    with pytest.raises(McsConnectError, match="loopback"):
        async with session(endpoint, connect=guarded_connector(OutboundPolicy())):
            pass
    async with session(endpoint, connect=guarded_connector(LOOPBACK)) as s:
        assert not s.closed


async def test_ids_are_checked() -> None:
    with pytest.raises(ValueError, match="android_id"):
        async with open_mcs_session(McsEndpoint(), android_id=0, security_token=1):
            pass


# -- pushes and acks ------------------------------------------------------------------------


async def test_pushes_received_decrypted_and_acked(fake: FakeMcs, endpoint: McsEndpoint) -> None:
    queued = fake.push(UPDATE)  # while no client is connected: delivered after login
    async with session(endpoint) as s:
        first = await receive(s)
        live = fake.push(UPDATE + b"\x01")
        second = await receive(s)
        await fake.wait_for(lambda: len(fake.acked_ids) == 2)
    assert (first.persistent_id, second.persistent_id) == (queued, live)
    assert decode_fcm_payload(first, KEYS) == UPDATE
    assert decode_fcm_payload(second, KEYS) == UPDATE + b"\x01"
    assert first.category == "org.chromium.linux" and first.from_ == "289722593072"
    assert first.app_data["crypto-key"].startswith("dh=")
    assert first.app_data["encryption"].startswith("salt=")
    assert fake.acked_ids == [queued, live]
    assert fake.pending_ids == []
    assert s.persistent_ids == [queued, live]
    assert fake.client_tags.count(IQ_STANZA) == 2


async def test_deleted_messages_skipped_but_acked(fake: FakeMcs, endpoint: McsEndpoint) -> None:
    async with session(endpoint) as s:
        deleted = fake.send_deleted_messages()
        pushed = fake.push(UPDATE)
        message = await receive(s)
        await fake.wait_for(lambda: len(fake.acked_ids) == 2)
    assert message.persistent_id == pushed
    assert fake.acked_ids == [deleted, pushed]
    assert s.skipped == 1
    assert s.persistent_ids == [pushed]


class RecordingStream(trio.abc.HalfCloseableStream):
    """A TCP stream that records the size of each read."""

    def __init__(self, inner: trio.SocketStream) -> None:
        self.inner, self.reads = inner, list[int]()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await self.inner.receive_some(max_bytes)
        self.reads.append(len(data))
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_split_frames(fake: FakeMcs, endpoint: McsEndpoint) -> None:
    fake.chunk_size = 16  # a pause of 1 ms after each piece
    ids = [fake.push(UPDATE + bytes([i])) for i in range(3)]
    streams: list[RecordingStream] = []

    async def connect(host: str, port: int) -> trio.abc.Stream:
        streams.append(RecordingStream(await trio.open_tcp_stream(host, port)))
        return streams[-1]

    async with session(endpoint, connect=connect) as s:
        got = [await receive(s) for _ in ids]
    assert max(streams[0].reads) <= 16 and len(streams[0].reads) > 3 * 10
    assert [m.persistent_id for m in got] == ids
    assert [decode_fcm_payload(m, KEYS) for m in got] == [UPDATE + bytes([i]) for i in range(3)]


async def test_several_frames_in_one_write(fake: FakeMcs, endpoint: McsEndpoint) -> None:
    ids = [fake.push(UPDATE) for _ in range(5)]  # sent with the LoginResponse in one write
    async with session(endpoint) as s:
        got = [await receive(s) for _ in ids]
    assert [m.persistent_id for m in got] == ids


async def test_persistent_ids_sent_at_login_are_not_delivered(
    fake: FakeMcs, endpoint: McsEndpoint
) -> None:
    old, new = fake.push(UPDATE), fake.push(UPDATE)
    async with session(endpoint, persistent_ids=[old]) as s:
        message = await receive(s)
    assert message.persistent_id == new
    assert fake.logins[0].received_persistent_ids == [old]
    assert s.persistent_ids == [old, new]


async def test_redelivered_known_id_is_acked_not_handed_out(
    fake: FakeMcs, endpoint: McsEndpoint
) -> None:
    async with session(endpoint, persistent_ids=["0:7%seen"]) as s:
        fake.push(UPDATE, persistent_id="0:7%seen")  # the server did not get our ack
        fresh = fake.push(UPDATE)
        assert (await receive(s)).persistent_id == fresh
        await fake.wait_for(lambda: len(fake.acked_ids) == 2)
    assert fake.acked_ids == ["0:7%seen", fresh]


async def test_persistent_ids_are_bounded(fake: FakeMcs, endpoint: McsEndpoint) -> None:
    old = [f"0:{i}%old" for i in range(MAX_PERSISTENT_IDS + 50)]
    async with session(endpoint, persistent_ids=old) as s:
        assert s.persistent_ids == old[-MAX_PERSISTENT_IDS:]
        pushed = fake.push(UPDATE)
        await receive(s)
    assert len(s.persistent_ids) == MAX_PERSISTENT_IDS
    assert s.persistent_ids[-1] == pushed and s.persistent_ids[0] == old[51]
    assert fake.logins[0].received_persistent_ids == old[-MAX_PERSISTENT_IDS:]


# -- heartbeats -----------------------------------------------------------------------------


async def test_server_ping_answered(fake: FakeMcs, endpoint: McsEndpoint) -> None:
    async with session(endpoint) as s:
        await fake.ping()
        await fake.ping()
        assert s.pings_answered == 2
    assert fake.ping_acks_received == 2


async def test_client_pings_when_idle(
    fake: FakeMcs, endpoint: McsEndpoint, gpshub_clock: MockClock
) -> None:
    async with session(endpoint, heartbeat_s=20) as s:
        await trio.sleep(19)
        assert fake.pings_received == 0
        await trio.sleep(2)
        assert fake.pings_received == 1 and s.pings_sent == 1
        await trio.sleep(20)  # answered each time: the session lives on
        assert fake.pings_received == 2 and not s.closed
        fake.push(UPDATE)
        await receive(s)  # traffic resets the idle timer
        await trio.sleep(15)
        assert fake.pings_received == 2


async def test_unanswered_ping_ends_the_session(
    fake: FakeMcs, endpoint: McsEndpoint, gpshub_clock: MockClock
) -> None:
    fake.answer_pings = False
    async with session(endpoint, heartbeat_s=20) as s:
        start = trio.current_time()
        with pytest.raises(McsClosed, match="no answer to a heartbeat within 20 s"):
            await receive(s, 100)
        assert trio.current_time() - start == pytest.approx(40)
    assert fake.client_tags.count(HEARTBEAT_PING) == 1


# -- the end of a session -------------------------------------------------------------------


async def test_drop_mid_stream_then_redelivery(fake: FakeMcs, endpoint: McsEndpoint) -> None:
    async with session(endpoint) as s:
        acked = fake.push(UPDATE)
        assert (await receive(s)).persistent_id == acked
        await fake.wait_for(lambda: fake.acked_ids == [acked])
        fake.drop_mid_frame = True
        unacked = fake.push(UPDATE + b"\x02")
        with pytest.raises(McsClosed):
            await receive(s)
        with pytest.raises(McsClosed):
            await receive(s)  # and it stays closed
    assert fake.pending_ids == [unacked]
    async with session(endpoint, persistent_ids=s.persistent_ids) as again:
        message = await receive(again)
        assert message.persistent_id == unacked
        assert decode_fcm_payload(message, KEYS) == UPDATE + b"\x02"
        await fake.wait_for(lambda: fake.pending_ids == [])
    assert fake.logins[1].received_persistent_ids == [acked]
    assert fake.delivered == [acked, unacked, unacked]


async def test_messages_before_a_drop_are_still_handed_out(
    fake: FakeMcs, endpoint: McsEndpoint
) -> None:
    async with session(endpoint) as s:
        first = fake.push(UPDATE)
        await fake.ping()  # answered after the push frame was read: the client has it
        fake.drop()
        assert (await receive(s)).persistent_id == first
        with pytest.raises(McsClosed):
            await receive(s)
    assert first in s.persistent_ids


@pytest.mark.parametrize("how", ["close", "stream_error"])
async def test_close_and_stream_error_end_the_session(
    fake: FakeMcs, endpoint: McsEndpoint, how: str
) -> None:
    async with session(endpoint) as s:
        getattr(fake, how)()
        with pytest.raises(McsClosed, match="closed the session" if how == "close" else "conflict"):
            await receive(s)


async def test_second_login_takes_over(fake: FakeMcs, endpoint: McsEndpoint) -> None:
    async with session(endpoint) as first, session(endpoint) as second:
        with pytest.raises(McsClosed):
            await receive(first)
        pushed = fake.push(UPDATE)
        assert (await receive(second)).persistent_id == pushed


async def test_receive_after_the_block_raises(endpoint: McsEndpoint) -> None:
    async with session(endpoint) as s:
        pass
    with pytest.raises(McsClosed):
        await s.receive()


async def test_body_errors_propagate_unwrapped(endpoint: McsEndpoint) -> None:
    with pytest.raises(KeyError):
        async with session(endpoint):
            raise KeyError("mine")


async def test_garbage_data_message_is_skipped(fake: FakeMcs, endpoint: McsEndpoint) -> None:
    async with session(endpoint) as s:
        fake._conn.send(frame(DATA_MESSAGE, b"\xff\xff\xff"))  # type: ignore[union-attr]
        pushed = fake.push(UPDATE)
        assert (await receive(s)).persistent_id == pushed


async def test_garbage_framing_ends_the_session(fake: FakeMcs, endpoint: McsEndpoint) -> None:
    async with session(endpoint) as s:
        fake._conn.send(bytes([8]) + b"\xff" * 6)  # type: ignore[union-attr]
        with pytest.raises(McsProtocolError):
            await receive(s)


# -- TLS ----------------------------------------------------------------------------------------


async def test_tls_with_the_test_ca(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake = FakeMcs(tls=True, cert_dir=tmp_path, checkin=False)
    endpoint = await nursery.start(fake.serve)
    assert endpoint.tls and endpoint.ca_file == str(tmp_path / "mcs-ca.pem")
    async with session(endpoint) as s:
        pushed = fake.push(UPDATE)
        message = await receive(s)
        await fake.ping()
    assert message.persistent_id == pushed
    assert decode_fcm_payload(message, KEYS) == UPDATE
    without_ca = McsEndpoint(host="127.0.0.1", port=endpoint.port, tls=True)
    with pytest.raises(McsConnectError, match="TLS"):
        async with session(without_ca):
            pass
    plain = McsEndpoint(host="127.0.0.1", port=endpoint.port, tls=False)
    with pytest.raises(McsError):
        async with session(plain, login_timeout_s=5):
            pass


# -- check-in ---------------------------------------------------------------------------------


@pytest.fixture
async def with_checkin(nursery: trio.Nursery) -> tuple[FakeMcs, McsEndpoint]:
    fake = FakeMcs(android_id=ANDROID_ID, security_token=SECURITY_TOKEN)
    return fake, await nursery.start(fake.serve)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_checkin_request(
    with_checkin: tuple[FakeMcs, McsEndpoint], http: httpx.AsyncClient
) -> None:
    fake, endpoint = with_checkin
    await checkin(http, endpoint.checkin_url, ANDROID_ID, SECURITY_TOKEN)
    assert fake.checkin is not None
    (record,) = fake.checkin.requests
    assert record.android_id == ANDROID_ID
    assert record.security_token == SECURITY_TOKEN
    assert record.version == 3 and record.user_serial_number == 0
    assert record.device_type == 3  # DEVICE_CHROME_BROWSER
    assert (record.chrome_platform, record.chrome_version, record.chrome_channel) == (
        3,
        CHROME_VERSION,
        1,
    )
    assert record.content_type == "application/x-protobuf"
    assert record.field_numbers == [2, 4, 13, 14, 22]


def test_checkin_request_bytes() -> None:
    body = checkin_request(1, 2)
    assert body.hex() == (
        "1001"  # 2 id
        + "2216"
        + "6003"
        + "6a12"
        + "0803"
        + "120c"
        + CHROME_VERSION.encode().hex()
        + "1801"
        + "69"
        + "0200000000000000"  # 13 security_token, fixed64
        + "7003"  # 14 version
        + "b00100"  # 22 user_serial_number
    )


async def test_checkin_answer_from_the_fake(
    with_checkin: tuple[FakeMcs, McsEndpoint], http: httpx.AsyncClient
) -> None:
    _, endpoint = with_checkin
    response = await http.post(
        endpoint.checkin_url, content=checkin_request(ANDROID_ID, SECURITY_TOKEN)
    )
    fields = Fields(response.content)
    assert fields.bool(1) and fields.int(7) == ANDROID_ID and fields.int(8) == SECURITY_TOKEN


async def test_checkin_errors(
    with_checkin: tuple[FakeMcs, McsEndpoint], http: httpx.AsyncClient
) -> None:
    fake, endpoint = with_checkin
    assert fake.checkin is not None
    with pytest.raises(McsCheckinError, match="HTTP 401") as caught:
        await checkin(http, endpoint.checkin_url, ANDROID_ID, SECURITY_TOKEN + 1)
    assert caught.value.status == 401
    fake.checkin.status = 503
    with pytest.raises(McsCheckinError, match="HTTP 503"):
        await checkin(http, endpoint.checkin_url, ANDROID_ID, SECURITY_TOKEN)
    with pytest.raises(McsConnectError, match=r"GCM check-in at 127\.0\.0\.1 failed"):
        await checkin(http, "http://127.0.0.1:9/checkin", ANDROID_ID, SECURITY_TOKEN)


# -- push content -------------------------------------------------------------------------------


def message_with(plaintext: bytes, **app_data: str) -> McsMessage:
    raw, crypto_key, encryption = encrypt_aesgcm(
        plaintext, receiver_public=KEYS.public_key, auth_secret=KEYS.auth_secret
    )
    data = {"crypto-key": crypto_key, "encryption": encryption, **app_data}
    return McsMessage(persistent_id="0:1%x", app_data=data, raw_data=raw)


def test_decode_fcm_payload() -> None:
    assert decode_fcm_payload(message_with(fcm_json(UPDATE)), KEYS) == UPDATE
    urlsafe = json.dumps(
        {
            "data": {
                "com.google.android.apps.adm.FCM_PAYLOAD": base64.urlsafe_b64encode(b"\xfb\xff")
                .decode()
                .rstrip("=")
            }
        }
    )
    assert decode_fcm_payload(message_with(urlsafe.encode()), KEYS) == b"\xfb\xff"


@pytest.mark.parametrize("document", [{"notification": {}}, {"data": {"other": "x"}}])
def test_other_pushes_give_none(document: dict[str, Any]) -> None:
    assert decode_fcm_payload(message_with(json.dumps(document).encode()), KEYS) is None


@pytest.mark.parametrize(
    ("plaintext", "message"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"data": 5}', "data is not an object"),
        (b'{"data": {"com.google.android.apps.adm.FCM_PAYLOAD": 5}}', "is not a string"),
        (b'{"data": {"com.google.android.apps.adm.FCM_PAYLOAD": "%%%"}}', "is not base64"),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_garbage_content_raises_payload_error(plaintext: bytes, message: str) -> None:
    with pytest.raises(McsPayloadError, match=message):
        decode_fcm_payload(message_with(plaintext), KEYS)


def test_undecryptable_push_raises_payload_error() -> None:
    message = message_with(fcm_json(UPDATE))
    last = message.raw_data[-1] ^ 0xFF  # always another byte (b"\x00" was its own 1 in 256)
    broken = McsMessage(
        message.persistent_id, message.app_data, message.raw_data[:-1] + bytes([last])
    )
    with pytest.raises(McsPayloadError, match="cannot be decrypted"):
        decode_fcm_payload(broken, KEYS)
    with pytest.raises(McsPayloadError, match="not a web push"):
        decode_fcm_payload(McsMessage("0:2%y", {}, b"raw"), KEYS)


def test_sample_keys_match_the_secrets_json_form() -> None:
    raw = sample_fcm_keys_json()
    assert set(raw) == {"public", "private", "secret"}
    assert KEYS.auth_secret == bytes(range(16))
