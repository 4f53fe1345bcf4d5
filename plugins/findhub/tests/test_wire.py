"""The protobuf wire codec: byte-exact encodings and careful decoding."""

from __future__ import annotations

import pytest

from gpshub_findhub.wire import (
    Fields,
    WireError,
    bytes_field,
    decode_varint,
    encode_varint,
    fixed32_field,
    fixed64_field,
    float_field,
    message_field,
    signed32,
    signed64,
    varint_field,
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),
        (300, "ac02"),
        (1732120060, "fc9bf8b906"),
        (-1, "ffffffffffffffffff01"),
    ],
)
def test_varint_round_trip(value: int, encoded: str) -> None:
    assert encode_varint(value).hex() == encoded
    decoded, pos = decode_varint(bytes.fromhex(encoded))
    assert pos == len(encoded) // 2
    assert signed64(decoded) == value


def test_list_request_is_byte_identical_to_protobuf() -> None:
    """The devices-list request of the reference, with request id 1111…5555."""
    payload = varint_field(1, 2) + bytes_field(3, "11111111-2222-4333-8444-555555555555")
    assert message_field(1, payload).hex() == (
        "0a2808021a24" + "31313131313131312d323232322d343333332d383434342d353535353535353535353535"
    )


def test_decode_nested_and_repeated_fields() -> None:
    inner = bytes_field(1, "a") + bytes_field(1, "b")
    buf = (
        varint_field(2, 7)
        + message_field(3, inner)
        + message_field(3, bytes_field(1, "c"))
        + fixed32_field(4, -5)
        + float_field(5, 12.5)
        + fixed64_field(6, 2**40)
        + varint_field(7, -3)
        + bytes_field(99, b"\x00\xff")  # unknown to the reader: kept, ignored
    )
    fields = Fields(buf)
    assert fields.int(2) == 7
    assert [m.strs(1) for m in fields.messages(3)] == [["a", "b"], ["c"]]
    assert fields.message(3) is not None and fields.message(3).str(1) == "c"  # last wins
    assert signed32(fields.int(4)) == -5
    assert fields.float(5) == 12.5
    assert fields.int(6) == 2**40
    assert signed32(fields.int(7)) == -3
    assert fields.message(8) is None and fields.str(8) == "" and fields.int(8) == 0
    assert 99 in fields and fields.numbers() == [2, 3, 4, 5, 6, 7, 99]


def test_packed_repeated_ints() -> None:
    packed = bytes_field(4, encode_varint(3) + encode_varint(270) + encode_varint(1))
    assert Fields(packed + varint_field(4, 9)).ints(4) == [3, 270, 1, 9]


@pytest.mark.parametrize(
    ("hexbuf", "fragment"),
    [
        ("0a05616263", "5 bytes announced, 3 left"),
        ("08", "truncated varint"),
        ("08ffffffffffffffffffff01", "longer than 10 bytes"),
        ("0d0102", "truncated fixed32"),
        ("0b", "unsupported wire type 3"),
        ("00", "field number 0"),
    ],
)
def test_malformed_buffers_raise_wire_error(hexbuf: str, fragment: str) -> None:
    with pytest.raises(WireError, match=fragment):
        Fields(bytes.fromhex(hexbuf))


def test_wrong_wire_type_names_the_field() -> None:
    fields = Fields(varint_field(5, 1))
    with pytest.raises(WireError, match="field 5"):
        fields.str(5)
    with pytest.raises(WireError, match="field 1: not UTF-8"):
        Fields(bytes_field(1, b"\xff\xfe")).str(1)
