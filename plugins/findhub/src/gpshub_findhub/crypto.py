"""Find Hub's end-to-end encryption, with ``cryptography`` and a little integer arithmetic.

The key hierarchy (reference §5):

* the account's **owner key** (32 bytes, ``owner_key`` in secrets.json) decrypts each
  tracker's **EIK** (ephemeral identity key, 32 bytes): AES-256-CBC for a 48-byte blob,
  AES-256-GCM for a 60-byte one (``decrypt_eik``);
* an **own report** (uploaded by the owner's own devices) is AES-256-GCM under SHA-256 of
  the EIK (``decrypt_own_report``);
* a **finder report** (crowdsourced) is ECIES on secp160r1: the tracker's rotating key
  ``r`` comes from the EIK and its clock (``compute_eid``), the finder's ephemeral point
  ``S`` travels as its x-coordinate ``Sx``, the AES key is HKDF-SHA256 of ``(r·S).x`` and
  the cipher is AES-EAX (``decrypt_finder_report``);
* the plaintext of both is a protobuf ``Location`` (``decode_location``).

``cryptography`` has neither secp160r1 nor EAX: the curve is done here in Jacobian
coordinates on Python integers, EAX is CMAC + CTR. Every failure raises ``EikError`` or
``ReportDecryptError`` (both ``ValueError``) with a message that never contains key
material.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gpshub_findhub.wire import Fields, WireError, fixed32_field, signed32, varint_field

MCU_FAST_PAIR_MODEL_ID = "003200"
"""``fastPairModelId`` of DIY microcontroller trackers: their EIK blob is stored with every
bit inverted and their time counter is always 0."""

KEY_SIZE = 32
EID_SIZE = 20
TAG_SIZE = 16
GCM_IV_SIZE = 12
CBC_IV_SIZE = 16
EIK_CBC_SIZE = CBC_IV_SIZE + KEY_SIZE  # 48
EIK_GCM_SIZE = GCM_IV_SIZE + KEY_SIZE + TAG_SIZE  # 60
ROTATION_BITS = 10
"""K: an EID rotates every 2**K = 1024 seconds of the tracker's clock."""


class EikError(ValueError):
    """A tracker's encrypted identity key that cannot be decrypted with the owner key."""


class ReportDecryptError(ValueError):
    """A location report that does not decrypt (bad tag, bad key, malformed bytes)."""


# -- secp160r1 (SEC 2, §2.4.1) --------------------------------------------------------

P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF7FFFFFFF
A = P - 3
B = 0x1C97BEFC54BD7A8B65ACF89F81D4D4ADC565FA45
GX = 0x4A96B5688EF573284664698968C38BB913CBFC82
GY = 0x23A628553168947D59DCC912042351377AC5FB32
N = 0x0100000000000000000001F4C8F927AED3CA752257

Point = tuple[int, int]
_Jacobian = tuple[int, int, int]  # (X, Y, Z) for the affine (X/Z², Y/Z³); Z = 0 at infinity
_INFINITY: _Jacobian = (1, 1, 0)


def _double(pt: _Jacobian) -> _Jacobian:
    x, y, z = pt
    if z == 0 or y == 0:
        return _INFINITY
    # a = -3: M = 3(X - Z²)(X + Z²)
    zz = z * z % P
    m = 3 * (x - zz) * (x + zz) % P
    yy = y * y % P
    s = 4 * x * yy % P
    x3 = (m * m - 2 * s) % P
    y3 = (m * (s - x3) - 8 * yy * yy) % P
    z3 = 2 * y * z % P
    return x3, y3, z3


def _add(p1: _Jacobian, p2: _Jacobian) -> _Jacobian:
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == 0:
        return p2
    if z2 == 0:
        return p1
    z1z1 = z1 * z1 % P
    z2z2 = z2 * z2 % P
    u1 = x1 * z2z2 % P
    u2 = x2 * z1z1 % P
    s1 = y1 * z2 * z2z2 % P
    s2 = y2 * z1 * z1z1 % P
    h = (u2 - u1) % P
    r = (s2 - s1) % P
    if h == 0:
        return _double(p1) if r == 0 else _INFINITY
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - s1 * hhh) % P
    z3 = h * z1 * z2 % P
    return x3, y3, z3


def _to_affine(pt: _Jacobian) -> Point | None:
    x, y, z = pt
    if z == 0:
        return None
    zinv = pow(z, -1, P)
    zinv2 = zinv * zinv % P
    return x * zinv2 % P, y * zinv2 * zinv % P


def _window_table(point: Point, width: int) -> list[_Jacobian]:
    """``[0·Q, 1·Q, …, (2**width − 1)·Q]`` for ``Q = point``, in Jacobian coordinates."""
    base: _Jacobian = (point[0], point[1], 1)
    table = [_INFINITY, base]
    for _ in range(2, 1 << width):
        table.append(_add(table[-1], base))
    return table


_WINDOW = 4


def _multiply_with(table: list[_Jacobian], k: int) -> _Jacobian:
    """``k·Q`` by fixed 4-bit windows over ``_window_table(Q)``."""
    acc = _INFINITY
    mask = (1 << _WINDOW) - 1
    for shift in range((k.bit_length() + _WINDOW - 1) // _WINDOW * _WINDOW - _WINDOW, -1, -_WINDOW):
        for _ in range(_WINDOW):
            acc = _double(acc)
        digit = (k >> shift) & mask
        if digit:
            acc = _add(acc, table[digit])
    return acc


def _add_affine(p1: _Jacobian, q: Point) -> _Jacobian:
    """``p1 + q`` with ``q`` affine (Z = 1): three multiplications fewer than ``_add``."""
    x1, y1, z1 = p1
    if z1 == 0:
        return q[0], q[1], 1
    z1z1 = z1 * z1 % P
    u2 = q[0] * z1z1 % P
    s2 = q[1] * z1 * z1z1 % P
    h = (u2 - x1) % P
    r = (s2 - y1) % P
    if h == 0:
        return _double(p1) if r == 0 else _INFINITY
    hh = h * h % P
    hhh = h * hh % P
    v = x1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - y1 * hhh) % P
    return x3, y3, h * z1 % P


@functools.cache
def _generator_comb() -> tuple[tuple[Point, ...], ...]:
    """``rows[i][d] = d·16**i·G`` (affine; ``d`` 1…15 at index ``d − 1``) for each of
    the 41 nibbles of a scalar mod n: ``k·G`` is then 41 additions and no doubling.
    Built on first use (615 points, ≈ 12 ms), not at import."""
    rows = []
    base: _Jacobian = (GX, GY, 1)
    for _ in range((N.bit_length() + _WINDOW - 1) // _WINDOW):
        multiples = [base]
        for _ in range(2, 1 << _WINDOW):
            multiples.append(_add(multiples[-1], base))
        row = [_to_affine(m) for m in multiples]
        rows.append(tuple(point for point in row if point is not None))
        assert len(rows[-1]) == len(multiples)  # d·16**i < n: never the infinity
        for _ in range(_WINDOW):
            base = _double(base)
    return tuple(rows)


def _multiply_generator(k: int) -> _Jacobian:
    acc = _INFINITY
    mask = (1 << _WINDOW) - 1
    for row in _generator_comb():
        digit = k & mask
        if digit:
            acc = _add_affine(acc, row[digit - 1])
        k >>= _WINDOW
    return acc


def scalar_mult(k: int, point: Point | None = None) -> Point | None:
    """``k·point`` on secp160r1 (``point`` defaults to the generator G, which uses a
    precomputed comb); ``None`` is the point at infinity. Not constant-time: it only
    ever handles keys this process already holds in the clear, on a host it trusts."""
    k %= N
    if k == 0:
        return None
    if point is None:
        return _to_affine(_multiply_generator(k))
    return _to_affine(_multiply_with(_window_table(point, _WINDOW), k))


def is_on_curve(point: Point) -> bool:
    x, y = point
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def lift_x(x: int) -> Point:
    """The curve point with x-coordinate ``x`` and an even y (p ≡ 3 mod 4, so the square
    root is one exponentiation)."""
    if not 0 <= x < P:
        raise ReportDecryptError("the finder's public point is out of range")
    rhs = (x * x * x + A * x + B) % P
    y = pow(rhs, (P + 1) // 4, P)
    if y * y % P != rhs:
        raise ReportDecryptError("the finder's public point is not on secp160r1")
    return x, (y if y % 2 == 0 else P - y)


def _int20(value: int) -> bytes:
    return value.to_bytes(EID_SIZE, "big")


# -- the tracker's rotating key --------------------------------------------------------


def _check_key(key: bytes, what: str, error: type[ValueError]) -> None:
    if len(key) != KEY_SIZE:
        raise error(f"{what} must be {KEY_SIZE} bytes, got {len(key)}")


def _rotating_scalar(eik: bytes, t: int) -> int:
    """``r``: AES-256-ECB under the EIK of the 32-byte block built from the tracker's
    clock with its low K bits cleared, as one big-endian integer, mod n."""
    _check_key(eik, "an EIK", ReportDecryptError)
    t &= 0xFFFFFFFF & ~((1 << ROTATION_BITS) - 1)
    stamp = bytes([ROTATION_BITS]) + t.to_bytes(4, "big")
    block = b"\xff" * 11 + stamp + b"\x00" * 11 + stamp
    encryptor = Cipher(algorithms.AES(eik), modes.ECB()).encryptor()  # noqa: S305 - the scheme's PRF
    r = int.from_bytes(encryptor.update(block) + encryptor.finalize(), "big") % N
    if r == 0:  # pragma: no cover - probability 2**-160
        raise ReportDecryptError("degenerate rotating key")
    return r


def _eid_point(eik: bytes, t: int) -> tuple[int, Point]:
    r = _rotating_scalar(eik, t)
    point = scalar_mult(r)
    assert point is not None  # r is in [1, n)
    return r, point


def compute_eid(eik: bytes, t: int) -> bytes:
    """The tracker's 20-byte ephemeral id (``R.x``) at time counter ``t``; it changes
    every 1024 s of the tracker's clock."""
    return _int20(_eid_point(eik, t)[1][0])


# -- AES-EAX from CMAC and CTR ---------------------------------------------------------


def _omac(key: bytes, tweak: int, data: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(bytes(15) + bytes([tweak]) + data)
    return mac.finalize()


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return cipher.update(data) + cipher.finalize()


def eax_encrypt(key: bytes, nonce: bytes, plaintext: bytes, header: bytes = b"") -> bytes:
    """AES-EAX: ``ciphertext || tag`` (16-byte tag)."""
    n = _omac(key, 0, nonce)
    h = _omac(key, 1, header)
    ciphertext = _ctr(key, n, plaintext)
    c = _omac(key, 2, ciphertext)
    tag = bytes(a ^ b ^ d for a, b, d in zip(n, h, c, strict=True))
    return ciphertext + tag


def eax_decrypt(key: bytes, nonce: bytes, data: bytes, header: bytes = b"") -> bytes:
    """AES-EAX of ``ciphertext || tag``; a wrong tag raises ``ReportDecryptError``."""
    if len(data) < TAG_SIZE:
        raise ReportDecryptError(f"EAX input of {len(data)} bytes is shorter than its tag")
    ciphertext, tag = data[:-TAG_SIZE], data[-TAG_SIZE:]
    n = _omac(key, 0, nonce)
    h = _omac(key, 1, header)
    c = _omac(key, 2, ciphertext)
    expected = bytes(a ^ b ^ d for a, b, d in zip(n, h, c, strict=True))
    if not hmac.compare_digest(expected, tag):
        raise ReportDecryptError("the report's authentication tag does not match")
    return _ctr(key, n, ciphertext)


# -- finder reports (ECIES on secp160r1) -----------------------------------------------


def _report_key(shared_x: int) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=b"")
    return hkdf.derive(_int20(shared_x))


def decrypt_finder_report(eik: bytes, encrypted_location: bytes, sx: bytes, t: int) -> bytes:
    """The plaintext of a crowdsourced report: ``encrypted_location`` is ``ct || tag``,
    ``sx`` the finder's 20-byte ``publicKeyRandom``, ``t`` the report's
    ``deviceTimeOffset`` (0 for MCU trackers)."""
    if len(sx) != EID_SIZE:
        raise ReportDecryptError(f"a finder key of {len(sx)} bytes is not secp160r1 (20)")
    r, point_r = _eid_point(eik, t)
    shared = scalar_mult(r, lift_x(int.from_bytes(sx, "big")))
    if shared is None:  # pragma: no cover - S has prime order n and 0 < r < n
        raise ReportDecryptError("degenerate shared point")
    nonce = _int20(point_r[0])[12:] + sx[12:]
    return eax_decrypt(_report_key(shared[0]), nonce, encrypted_location)


def encrypt_finder_report(
    eik: bytes, t: int, plaintext: bytes, sender_random: bytes
) -> tuple[bytes, bytes]:
    """What a finder uploads, for fakes and tests: ``(ct || tag, Sx)``. ``sender_random``
    is the finder's ephemeral secret, read as a signed big-endian integer mod n."""
    s = int.from_bytes(sender_random, "big", signed=True) % N
    if s == 0:
        raise ValueError("the sender's random scalar is 0 mod n")
    point_s = scalar_mult(s)
    _, point_r = _eid_point(eik, t)
    shared = scalar_mult(s, point_r)
    assert point_s is not None and shared is not None
    sx = _int20(point_s[0])
    nonce = _int20(point_r[0])[12:] + sx[12:]
    return eax_encrypt(_report_key(shared[0]), nonce, plaintext), sx


# -- own reports -----------------------------------------------------------------------


def _own_key(eik: bytes) -> bytes:
    _check_key(eik, "an EIK", ReportDecryptError)
    return hashlib.sha256(eik).digest()


def decrypt_own_report(eik: bytes, blob: bytes) -> bytes:
    """An own report: AES-256-GCM under SHA-256(EIK) of ``IV(12) || ct || tag(16)``."""
    if len(blob) < GCM_IV_SIZE + TAG_SIZE:
        raise ReportDecryptError(f"an own report of {len(blob)} bytes is too short")
    try:
        return AESGCM(_own_key(eik)).decrypt(blob[:GCM_IV_SIZE], blob[GCM_IV_SIZE:], None)
    except InvalidTag:
        raise ReportDecryptError("the own report's authentication tag does not match") from None


def encrypt_own_report(eik: bytes, plaintext: bytes, iv: bytes) -> bytes:
    """What an owner's phone uploads, for fakes and tests: ``iv || ct || tag``."""
    if len(iv) != GCM_IV_SIZE:
        raise ValueError(f"the IV must be {GCM_IV_SIZE} bytes")
    return iv + AESGCM(_own_key(eik)).encrypt(iv, plaintext, None)


# -- the EIK ---------------------------------------------------------------------------


def _invert(blob: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in blob)


def decrypt_eik(encrypted: bytes, owner_key: bytes, *, bit_inverted: bool = False) -> bytes:
    """A tracker's 32-byte EIK from its ``encryptedIdentityKey``.

    48 bytes: AES-256-CBC, IV first, no padding — unauthenticated, so a wrong owner key
    gives a wrong EIK here and only the reports can tell. 60 bytes: AES-256-GCM, IV first,
    tag last — a wrong owner key raises ``EikError``. ``bit_inverted`` for MCU trackers.
    """
    _check_key(owner_key, "the owner key", EikError)
    if bit_inverted:
        encrypted = _invert(encrypted)
    if len(encrypted) == EIK_CBC_SIZE:
        decryptor = Cipher(
            algorithms.AES(owner_key), modes.CBC(encrypted[:CBC_IV_SIZE])
        ).decryptor()
        return decryptor.update(encrypted[CBC_IV_SIZE:]) + decryptor.finalize()
    if len(encrypted) == EIK_GCM_SIZE:
        try:
            return AESGCM(owner_key).decrypt(encrypted[:GCM_IV_SIZE], encrypted[GCM_IV_SIZE:], None)
        except InvalidTag:
            raise EikError("the identity key does not decrypt with this owner key") from None
    raise EikError(
        f"an encrypted identity key of {len(encrypted)} bytes"
        f" (expected {EIK_CBC_SIZE} or {EIK_GCM_SIZE})"
    )


def encrypt_eik(
    eik: bytes,
    owner_key: bytes,
    *,
    form: Literal["gcm", "cbc"] = "gcm",
    iv: bytes | None = None,
    bit_inverted: bool = False,
) -> bytes:
    """An ``encryptedIdentityKey`` as Google stores it, for fakes and tests (a random IV
    unless given)."""
    _check_key(eik, "an EIK", ValueError)
    _check_key(owner_key, "the owner key", ValueError)
    if form == "gcm":
        iv = iv if iv is not None else os.urandom(GCM_IV_SIZE)
        if len(iv) != GCM_IV_SIZE:
            raise ValueError(f"a GCM IV is {GCM_IV_SIZE} bytes")
        blob = iv + AESGCM(owner_key).encrypt(iv, eik, None)
    elif form == "cbc":
        iv = iv if iv is not None else os.urandom(CBC_IV_SIZE)
        if len(iv) != CBC_IV_SIZE:
            raise ValueError(f"a CBC IV is {CBC_IV_SIZE} bytes")
        encryptor = Cipher(algorithms.AES(owner_key), modes.CBC(iv)).encryptor()
        blob = iv + encryptor.update(eik) + encryptor.finalize()
    else:
        raise ValueError(f"unknown EIK form {form!r}")
    return _invert(blob) if bit_inverted else blob


# -- the plaintext ---------------------------------------------------------------------


def encode_location(lat: float, lon: float, alt: int | float) -> bytes:
    """``Location{1 latitude sfixed32 ×1e-7°, 2 longitude sfixed32, 3 altitude int32 m}``,
    zero fields left out as protobuf does."""
    out = b""
    lat_e7, lon_e7, alt_m = round(lat * 1e7), round(lon * 1e7), round(alt)
    if lat_e7:
        out += fixed32_field(1, lat_e7)
    if lon_e7:
        out += fixed32_field(2, lon_e7)
    if alt_m:
        out += varint_field(3, alt_m)
    return out


def decode_location(plaintext: bytes) -> tuple[float, float, int]:
    """``(latitude°, longitude°, altitude m)`` from a decrypted ``Location``; a plaintext
    that is not one, or out of range, raises ``ReportDecryptError``."""
    try:
        fields = Fields(plaintext)
        lat = signed32(fields.int(1)) / 1e7
        lon = signed32(fields.int(2)) / 1e7
        alt = signed32(fields.int(3))
    except WireError as exc:
        raise ReportDecryptError(f"the decrypted report is not a Location: {exc}") from None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ReportDecryptError(f"the decrypted Location is out of range ({lat}, {lon})")
    return lat, lon, alt
