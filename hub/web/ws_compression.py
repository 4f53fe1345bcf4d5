"""permessage-deflate (RFC 7692) on the WebSockets hypercorn serves.

Every browser offers permessage-deflate, and hypercorn accepts it with wsproto's stock
extension: each socket compresses each message with its own zlib stream ("context
takeover").  A live frame shared by 100 dashboards is then compressed 100 times, and the
compression, not the sending, becomes the hub's cost per viewer.

The ``live_compression`` setting chooses:

``shared`` (default)
    The hub answers with ``server_no_context_takeover``, which the RFC lets a server add
    to any offer: each message is compressed on its own, so the same frame compresses
    to the same bytes for every socket, and a small cache keyed by the frame's bytes
    compresses it once for all of them.  Compression ratio is a little lower than with
    context takeover (each frame starts with an empty dictionary); a 50 ms frame of
    positions is large enough for that not to matter much.
``per-socket``
    Hypercorn's stock behaviour: the best ratio, a compression per socket and message.
    For a few viewers on slow links.
``off``
    Never negotiated: frames go uncompressed (loopback, or a proxy that compresses).

Hypercorn has no option for its WebSocket extensions: ``install`` replaces the
extension class its handshake instantiates, for the whole process.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import FrameDecoder, FrameProtocol, Opcode, RsvBits

CHOICES = ("shared", "per-socket", "off")
CACHE_ENTRIES = 256
"""Compressed frames kept: one tick's shared frames, with room for sockets' own ones."""
CACHE_MIN_BYTES = 1024
"""Smaller messages (pings, replies) are compressed each time rather than cached."""


class CompressionStats:
    """What the shared cache did (for tests and ``bench/live.py``)."""

    compressed = 0  # messages compressed
    reused = 0  # messages sent compressed from the cache

    @classmethod
    def reset(cls) -> None:
        cls.compressed = cls.reused = 0


_cache: OrderedDict[tuple[int, bytes], bytes] = OrderedDict()


def _compress(data: bytes, bits: int) -> bytes:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -bits)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    CompressionStats.compressed += 1
    return out[:-4]  # RFC 7692 7.2.1: the trailing 00 00 ff ff goes


class SharedDeflate(PerMessageDeflate):
    """permessage-deflate without server context takeover, compressing each distinct
    message once for every socket (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(server_no_context_takeover=True)

    def accept(self, offer: str) -> bool | str | None:
        # _parse_params may read server_no_context_takeover from the offer: it is on anyway
        self.server_no_context_takeover = True
        return super().accept(offer)

    def frame_outbound(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        if proto.client or opcode not in (Opcode.TEXT, Opcode.BINARY) or not fin:
            return super().frame_outbound(proto, opcode, rsv, data, fin)
        rsv = RsvBits(True, rsv[1], rsv[2])
        bits = self.server_max_window_bits
        if len(data) < CACHE_MIN_BYTES:
            return rsv, _compress(data, bits)
        key = (bits, data)
        out = _cache.get(key)
        if out is None:
            out = _cache[key] = _compress(data, bits)
            if len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
        else:
            _cache.move_to_end(key)
            CompressionStats.reused += 1
        return rsv, out


class NoDeflate(PerMessageDeflate):
    """permessage-deflate refused: the handshake answers without it."""

    def accept(self, offer: str) -> bool | str | None:
        return None


def install(choice: str) -> None:
    """Make hypercorn's WebSocket handshakes use ``choice`` (one of ``CHOICES``)."""
    from hypercorn.protocol import ws_stream

    classes = {"shared": SharedDeflate, "per-socket": PerMessageDeflate, "off": NoDeflate}
    if choice not in classes:
        raise ValueError(f"live_compression: {choice!r} is not one of {', '.join(CHOICES)}")
    ws_stream.PerMessageDeflate = classes[choice]  # type: ignore[attr-defined,misc]
