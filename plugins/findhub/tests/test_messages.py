"""Nova's messages: byte-exact requests, lenient-but-strict decoding, round trips."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpshub_findhub.messages import (
    STATUS_AGGREGATED,
    STATUS_CROWDSOURCED,
    STATUS_LAST_KNOWN,
    STATUS_SEMANTIC,
    DeviceMetadata,
    DeviceUpdate,
    MessageError,
    RawReport,
    decode_device_update,
    decode_devices_list,
    device_type_name,
    encode_device_metadata,
    encode_device_update,
    encode_devices_list,
    encode_list_devices_request,
    encode_locate_request,
)
from gpshub_findhub.wire import (
    Fields,
    WireError,
    bytes_field,
    float_field,
    message_field,
    varint_field,
)

CANONIC = "677db4d7-0000-234b-ab3f-14c14efd1b80"
REQUEST_UUID = "66666666-6666-6666-6666-666666666666"
CLIENT_UUID = "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb"


def test_list_devices_request_is_the_reference_bytes() -> None:
    assert encode_list_devices_request("11111111-2222-4333-8444-555555555555").hex() == (
        "0a2808021a2431313131313131312d323232322d343333332d383434342d353535353535353535353535"
    )


def test_locate_request_is_the_reference_155_bytes() -> None:
    body = encode_locate_request(
        canonic_id=CANONIC,
        request_uuid=REQUEST_UUID,
        client_uuid=CLIENT_UUID,
        fcm_token="FCMTOKEN",
        high_traffic_time=1732120060,
    )
    expected = (
        "0a2c10021a280a260a24"
        + CANONIC.encode().hex()
        + "120df2010a120608fc9bf8b90618021a5c0802"
        + "1224"
        + REQUEST_UUID.encode().hex()
        + "1a24"
        + CLIENT_UUID.encode().hex()
        + "220a0a0846434d544f4b454e3001"
    )
    assert len(body) == 155
    assert body.hex() == expected


def test_locate_request_reads_back_by_field_number() -> None:
    """What a fake Nova does with it: the fields a server needs are where they belong."""
    body = encode_locate_request(
        canonic_id="abc",
        request_uuid="req",
        client_uuid="cli",
        fcm_token="tok",
        high_traffic_time=5,
    )
    top = Fields(body)
    scope, action, meta = top.message(1), top.message(2), top.message(3)
    assert scope is not None and action is not None and meta is not None
    device = scope.message(3)
    assert device is not None
    canonic = device.message(1)
    assert canonic is not None and canonic.str(1) == "abc"
    locate = action.message(30)
    assert locate is not None and locate.int(3) == 2
    assert meta.str(2) == "req" and meta.str(3) == "cli"
    token = meta.message(4)
    assert token is not None and token.str(1) == "tok"


@pytest.mark.parametrize(
    ("value", "name"),
    [(0, "unknown"), (3, "keys"), (20, "phone"), (26, "earbuds"), (6, "type 6"), (27, "type 27")],
)
def test_device_type_name(value: int, name: str) -> None:
    assert device_type_name(value) == name


# -- devices ---------------------------------------------------------------------------

TAG = DeviceMetadata(
    canonic_id=CANONIC,
    identifier_type=2,
    name="Test Tag",
    device_type=3,
    manufacturer="Acme",
    model="T1",
    fast_pair_model_id="abc123",
    pair_date=1700000000,
    encrypted_eik=bytes(range(60)),
    owner_key_version=1,
    shared_with=("friend@example.com",),
    image_url="https://example.com/tag.png",
    reports=(
        RawReport(
            timestamp=1758000000,
            status=STATUS_LAST_KNOWN,
            encrypted_location=b"\x00" * 40,
            is_own_report=True,
            accuracy=12.0,
        ),
        RawReport(
            timestamp=1757990000,
            status=STATUS_CROWDSOURCED,
            public_key_random=b"\x92" * 20,
            encrypted_location=b"\x18" * 37,
            device_time_offset=8704000,
            accuracy=40.0,
        ),
        RawReport(timestamp=1757980000, status=STATUS_SEMANTIC, place_name="Home"),
        RawReport(timestamp=1757970000, status=STATUS_AGGREGATED, accuracy=0.5),
        RawReport(timestamp=0, status=99),  # unknown status, no time: kept as is
    ),
)
PHONE = DeviceMetadata(canonic_id="phone-1", identifier_type=1, name="Pixel", device_type=20)
BARE = DeviceMetadata(canonic_id="bare")


def test_devices_round_trip() -> None:
    devices = [TAG, PHONE, BARE]
    assert decode_devices_list(encode_devices_list(devices)) == devices


def test_device_update_round_trip() -> None:
    for update in (
        DeviceUpdate(request_uuid=REQUEST_UUID, response_time=1758000001, device=TAG),
        DeviceUpdate(request_uuid="", response_time=None, device=PHONE),
        DeviceUpdate(request_uuid="r", response_time=0, device=BARE),
    ):
        assert decode_device_update(encode_device_update(update)) == update


def test_edge_values_round_trip() -> None:
    device = DeviceMetadata(
        canonic_id="x",
        device_type=0,
        pair_date=-5,
        owner_key_version=-1,
        reports=(RawReport(timestamp=0, status=0, device_time_offset=0xFFFFFFFF),),
    )
    assert decode_devices_list(encode_devices_list([device])) == [device]


def _ids(*values: str) -> bytes:
    return b"".join(message_field(1, bytes_field(1, v)) for v in values)


def test_phones_take_the_first_phone_id_and_trackers_their_own() -> None:
    phone = message_field(
        1,
        message_field(1, message_field(2, _ids("phone-a", "phone-b")))
        + varint_field(2, 1)
        + message_field(3, _ids("other")),
    )
    tracker = message_field(
        1,
        message_field(1, message_field(2, _ids("phone-x")))
        + varint_field(2, 2)
        + message_field(3, _ids("tracker-1")),
    )
    body = message_field(2, phone) + message_field(2, tracker)
    assert [d.canonic_id for d in decode_devices_list(body)] == ["phone-a", "tracker-1"]


def test_a_device_without_canonic_id_is_skipped() -> None:
    nameless = message_field(1, varint_field(2, 2)) + bytes_field(5, "ghost")
    body = (
        message_field(2, nameless)
        + message_field(2, b"")
        + message_field(2, encode_device_metadata(BARE))
    )
    assert decode_devices_list(body) == [BARE]
    assert decode_devices_list(b"") == []


def test_unknown_fields_and_enum_values_are_kept_or_ignored() -> None:
    entry = (
        message_field(1, message_field(3, _ids("d")) + varint_field(2, 7))
        + message_field(4, message_field(1, message_field(2, varint_field(2, 27))))
        + bytes_field(5, "Thing")
        + bytes_field(77, b"\x01\x02")  # unknown to us
    )
    (device,) = decode_devices_list(message_field(2, entry) + varint_field(9, 1))
    assert device.identifier_type == 7
    assert device.device_type == 27
    assert device.name == "Thing"
    assert device.owner_key_version is None and device.pair_date is None
    assert device.reports == ()


def test_owner_only_access_is_not_shared() -> None:
    access = message_field(3, bytes_field(1, "me@example.com") + varint_field(4, True))
    access += message_field(3, bytes_field(1, "you@example.com") + varint_field(2, True))
    entry = message_field(1, message_field(3, _ids("d"))) + message_field(4, access)
    (device,) = decode_devices_list(message_field(2, entry))
    assert device.shared_with == ("you@example.com",)


def test_network_locations_pair_with_their_timestamps() -> None:
    def located(accuracy: float) -> bytes:
        return message_field(10, float_field(3, accuracy)) + varint_field(11, 3)

    latest = (
        message_field(5, located(1.0))
        + message_field(5, located(2.0))
        + message_field(6, varint_field(1, 100))
        # the second network location has no timestamp: it gets 0
    )
    info = message_field(2, message_field(3, message_field(4, latest)))
    entry = message_field(1, message_field(3, _ids("d"))) + message_field(4, info)
    (device,) = decode_devices_list(message_field(2, entry))
    assert [(r.timestamp, r.accuracy) for r in device.reports] == [(100, 1.0), (0, 2.0)]


def test_response_time_as_a_bare_integer_is_accepted() -> None:
    body = (
        message_field(1, bytes_field(2, "u"))
        + message_field(2, varint_field(1, 1758000001))
        + message_field(3, encode_device_metadata(BARE))
    )
    update = decode_device_update(body)
    assert update.response_time == 1758000001 and update.device == BARE
    assert decode_device_update(b"") == DeviceUpdate("", None, DeviceMetadata(canonic_id=""))


@pytest.mark.parametrize(
    "body",
    [
        b"\x12\x05abc",  # entry cut short
        b"\x12\x02\x0a\x05",  # identifierInformation cut short
        message_field(2, message_field(1, message_field(3, b"\x0a\x02\xff\xff"))),  # ids cut
        message_field(2, bytes_field(5, b"\xff\xfe")),  # a name that is not UTF-8
        message_field(2, varint_field(1, 3)),  # identifierInformation as an integer
        message_field(2, message_field(4, message_field(2, b"\x1a\x03\x22\x01"))),
        b"\x17",  # wire type 7
    ],
)
def test_garbage_raises_a_message_error_saying_where(body: bytes) -> None:
    with pytest.raises(MessageError, match="DevicesList") as caught:
        decode_devices_list(body)
    assert isinstance(caught.value, WireError)


def test_device_update_garbage() -> None:
    with pytest.raises(MessageError, match="DeviceUpdate"):
        decode_device_update(b"\x1a\x10\x0a")
    with pytest.raises(MessageError, match="DeviceUpdate"):
        decode_device_update(message_field(3, message_field(4, b"\x0a\x01")))


# -- garbage never escapes as anything but a MessageError -------------------------------

_VALID = encode_devices_list([TAG, PHONE, BARE])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_a_message_error(body: bytes) -> None:
    for decode in (decode_devices_list, decode_device_update):
        with contextlib.suppress(MessageError):
            decode(body)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_VALID) - 1), st.integers(1, 255), st.integers(0, len(_VALID)))
def test_a_mangled_list_decodes_or_raises_a_message_error(
    position: int, flip: int, cut: int
) -> None:
    body = bytearray(_VALID)
    body[position] ^= flip
    for mangled in (bytes(body), bytes(body[:cut])):
        try:
            devices = decode_devices_list(mangled)
        except MessageError:
            continue
        assert all(isinstance(d, DeviceMetadata) and d.canonic_id for d in devices)
