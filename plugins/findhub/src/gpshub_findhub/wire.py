"""The Protocol Buffers wire format, as far as Find Hub's messages need it.

Google's Nova and MCS endpoints speak protobuf, but the messages involved are few and
small, so the plugin encodes and decodes them by field number instead of generating code
from ``.proto`` files: no build step, no ``protobuf`` runtime, and every field we use is
named where it is read (``messages``, ``mcs``).

Encoding is a concatenation of fields::

    body = varint_field(1, 2) + bytes_field(3, "an id")
    request = message_field(1, body)

Decoding gives a ``Fields`` view keyed by field number; unknown fields are kept and
ignored, as protobuf does, and a truncated or malformed buffer raises ``WireError``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT, I64, LEN, I32 = 0, 1, 2, 5
_MAX_VARINT_BYTES = 10


class WireError(ValueError):
    """A buffer that is not a well-formed protobuf message."""


# -- encoding -------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """A base-128 varint; a negative value is sent as its 64-bit two's complement, as
    protobuf does for ``int32``/``int64``."""
    if value < 0:
        value += 1 << 64
    if value >= 1 << 64:
        raise ValueError(f"{value} does not fit in 64 bits")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return encode_varint(number << 3 | wire_type)


def varint_field(number: int, value: int | bool) -> bytes:
    """An ``int32``/``int64``/``uint32``/``uint64``/``bool``/enum field."""
    return _key(number, VARINT) + encode_varint(int(value))


def bytes_field(number: int, value: bytes | str) -> bytes:
    """A ``bytes`` or ``string`` field (strings are UTF-8)."""
    data = value.encode() if isinstance(value, str) else value
    return _key(number, LEN) + encode_varint(len(data)) + data


def message_field(number: int, body: bytes) -> bytes:
    """An embedded message: ``body`` is the message's own encoding."""
    return bytes_field(number, body)


def fixed32_field(number: int, value: int) -> bytes:
    """A ``fixed32`` (0 … 2³²−1) or ``sfixed32`` (−2³¹ … 2³¹−1) field."""
    return _key(number, I32) + struct.pack("<I", value & 0xFFFFFFFF)


def fixed64_field(number: int, value: int) -> bytes:
    """A ``fixed64`` or ``sfixed64`` field."""
    return _key(number, I64) + struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF)


def float_field(number: int, value: float) -> bytes:
    return _key(number, I32) + struct.pack("<f", value)


# -- decoding -------------------------------------------------------------------------


def decode_varint(buf: bytes, pos: int = 0) -> tuple[int, int]:
    """The varint at ``buf[pos:]`` and the position after it."""
    result = shift = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise WireError("truncated varint")
        byte = buf[pos + i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos + i + 1
        shift += 7
    raise WireError("varint longer than 10 bytes")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """``(number, wire type, value)`` for each field of ``buf`` in order: an ``int`` for
    varint and fixed fields (unsigned), ``bytes`` for length-delimited ones."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = decode_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        value: int | bytes
        if wire_type == VARINT:
            value, pos = decode_varint(buf, pos)
        elif wire_type == LEN:
            size, pos = decode_varint(buf, pos)
            if pos + size > end:
                raise WireError(f"field {number}: {size} bytes announced, {end - pos} left")
            value, pos = bytes(buf[pos : pos + size]), pos + size
        elif wire_type == I32:
            if pos + 4 > end:
                raise WireError(f"field {number}: truncated fixed32")
            (value,), pos = struct.unpack_from("<I", buf, pos), pos + 4
        elif wire_type == I64:
            if pos + 8 > end:
                raise WireError(f"field {number}: truncated fixed64")
            (value,), pos = struct.unpack_from("<Q", buf, pos), pos + 8
        else:
            raise WireError(f"field {number}: unsupported wire type {wire_type}")
        yield number, wire_type, value


def signed32(value: int) -> int:
    """An ``int32``/``sfixed32`` from its unsigned wire value."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def signed64(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value & (1 << 63) else value


class Fields:
    """A decoded message: its fields by number, each a list of raw values in order.

    Accessors take the *last* value of a singular field (protobuf's rule) and return the
    field's default when it is absent; a value of the wrong wire type raises ``WireError``
    naming the field, so garbage never passes for data.
    """

    __slots__ = ("_fields",)

    def __init__(self, buf: bytes) -> None:
        fields: dict[int, list[tuple[int, int | bytes]]] = {}
        for number, wire_type, value in iter_fields(buf):
            fields.setdefault(number, []).append((wire_type, value))
        self._fields = fields

    def __contains__(self, number: int) -> bool:
        return number in self._fields

    def numbers(self) -> list[int]:
        return sorted(self._fields)

    def _values(self, number: int, wire_types: tuple[int, ...]) -> list[int | bytes]:
        out = []
        for wire_type, value in self._fields.get(number, ()):
            if wire_type not in wire_types:
                raise WireError(f"field {number}: wire type {wire_type}, expected {wire_types}")
            out.append(value)
        return out

    def ints(self, number: int) -> list[int]:
        """All values of a repeated integer field (packed or not)."""
        out: list[int] = []
        for wire_type, value in self._fields.get(number, ()):
            if wire_type == LEN:  # packed
                assert isinstance(value, bytes)
                pos = 0
                while pos < len(value):
                    item, pos = decode_varint(value, pos)
                    out.append(item)
            elif wire_type in (VARINT, I32, I64):
                assert isinstance(value, int)
                out.append(value)
            else:  # pragma: no cover - iter_fields refuses other types
                raise WireError(f"field {number}: not an integer")
        return out

    def int(self, number: int, default: int = 0) -> int:
        """A varint or fixed field, unsigned (see ``signed32``/``signed64``)."""
        values = self.ints(number)
        return values[-1] if values else default

    def bool(self, number: int) -> bool:
        return bool(self.int(number))

    def float(self, number: int, default: float = 0.0) -> float:
        """A ``float`` (fixed32) field."""
        values = self._values(number, (I32,))
        if not values:
            return default
        raw = values[-1]
        assert isinstance(raw, int)
        return struct.unpack("<f", struct.pack("<I", raw))[0]

    def bytes(self, number: int, default: bytes = b"") -> bytes:
        values = self.bytes_list(number)
        return values[-1] if values else default

    def bytes_list(self, number: int) -> list[bytes]:
        return [v for v in self._values(number, (LEN,)) if isinstance(v, bytes)]

    def str(self, number: int, default: str = "") -> str:
        raw = self.bytes(number)
        if not raw:
            return default
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise WireError(f"field {number}: not UTF-8 text") from None

    def strs(self, number: int) -> list[str]:
        try:
            return [raw.decode() for raw in self.bytes_list(number)]
        except UnicodeDecodeError:
            raise WireError(f"field {number}: not UTF-8 text") from None

    def message(self, number: int) -> Fields | None:
        """An embedded message, or ``None`` when absent."""
        values = self.bytes_list(number)
        return Fields(values[-1]) if values else None

    def messages(self, number: int) -> list[Fields]:
        """All values of a repeated message field."""
        return [Fields(raw) for raw in self.bytes_list(number)]

    def __repr__(self) -> str:
        return f"Fields({self._fields!r})"
