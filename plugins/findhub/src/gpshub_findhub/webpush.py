"""Web Push message encryption, legacy "aesgcm" flavour, as FCM delivers Find Hub's pushes.

The MCS ``DataMessageStanza`` of a web-push registration carries the ciphertext in
``raw_data`` and two header strings in ``app_data``: ``crypto-key`` (``dh=<sender's P-256
point>``, base64url) and ``encryption`` (``salt=<16 bytes>``, base64url, optionally
``rs=<record size>``).  The recipe (draft-ietf-webpush-encryption-04 with
draft-ietf-httpbis-encryption-encoding-03, the scheme ``http_ece`` calls "aesgcm"):

* ``shared = ECDH(receiver private, sender public)``;
* ``ikm = HKDF-SHA256(salt=auth secret, ikm=shared, info="Content-Encoding: auth\\0", 32)``;
* ``context = "P-256\\0" || u16(65) || receiver public || u16(65) || sender public``;
* ``key = HKDF(salt, ikm, "Content-Encoding: aesgcm\\0" || context, 16)`` and
  ``nonce = HKDF(salt, ikm, "Content-Encoding: nonce\\0" || context, 12)``;
* the ciphertext is a sequence of records of ``rs + 16`` bytes (the last one shorter),
  record *i* sealed with AES-128-GCM under ``nonce`` whose last 8 bytes are XORed with
  *i* (big-endian); each plaintext record is ``u16(padding length) || zeros || data``.

Everything is done with ``cryptography``.  ``load_fcm_keys`` reads the receiver's keys from
secrets.json (``fcm_credentials.keys``); ``encrypt_aesgcm`` is the sender's side, for fakes.
No error message carries key material.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

DEFAULT_RECORD_SIZE = 4096
TAG_SIZE = 16
PAD_HEADER = 2
POINT_SIZE = 65
SALT_SIZE = 16
AUTH_SECRET_SIZE = 16
MAX_RECORD_SIZE = 1 << 24
_KEYS_PATH = "fcm_credentials.keys"


class WebPushError(ValueError):
    """A push that cannot be decrypted: bad headers, wrong keys, tampered or cut data."""


@dataclass(frozen=True)
class FcmKeys:
    """The receiving side of a web-push registration (secrets.json's
    ``fcm_credentials.keys``).  ``repr`` shows only the public key."""

    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    public_key: bytes
    """The uncompressed P-256 point (65 bytes) the sender encrypts to."""
    auth_secret: bytes = field(repr=False)
    """The 16-byte authentication secret shared with the sender."""


# -- helpers ------------------------------------------------------------------------------


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding (the standard alphabet is accepted too);
    ``ValueError`` for anything else."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    stripped = text.strip().rstrip("=")
    try:
        return base64.b64decode(
            stripped + "=" * (-len(stripped) % 4), altchars=b"-_", validate=True
        )
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, as web-push headers carry it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_bytes(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed point (``04 || x || y``) of a P-256 key."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _header_params(header: str) -> dict[str, str]:
    """``name=value`` parameters of a ``Crypto-Key``/``Encryption`` header; ``;`` and
    ``,`` both separate them, the first occurrence of a name wins."""
    params: dict[str, str] = {}
    for item in re.split(r"[;,]", header):
        name, sep, value = item.partition("=")
        if sep:
            params.setdefault(name.strip().lower(), value.strip().strip('"'))
    return params


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _derive(
    *,
    shared: bytes,
    auth_secret: bytes,
    salt: bytes,
    receiver_public: bytes,
    sender_public: bytes,
) -> tuple[bytes, bytes]:
    """The content key (16 bytes) and base nonce (12 bytes)."""
    ikm = _hkdf(auth_secret, shared, b"Content-Encoding: auth\x00", 32)
    context = (
        b"P-256\x00"
        + struct.pack(">H", len(receiver_public))
        + receiver_public
        + struct.pack(">H", len(sender_public))
        + sender_public
    )
    key = _hkdf(salt, ikm, b"Content-Encoding: aesgcm\x00" + context, 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00" + context, 12)
    return key, nonce


def _record_nonce(base: bytes, counter: int) -> bytes:
    (mask,) = struct.unpack(">Q", base[4:])
    return base[:4] + struct.pack(">Q", mask ^ counter)


def _load_point(data: bytes, what: str) -> ec.EllipticCurvePublicKey:
    if len(data) != POINT_SIZE or data[0] != 4:
        raise WebPushError(f"{what}: not an uncompressed P-256 point ({len(data)} bytes)")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    except ValueError:
        raise WebPushError(f"{what}: not a point on P-256") from None


def _record_size(params: Mapping[str, str]) -> int:
    raw = params.get("rs")
    if raw is None:
        return DEFAULT_RECORD_SIZE
    if not raw.isdigit() or not PAD_HEADER < int(raw) <= MAX_RECORD_SIZE:
        raise WebPushError(f"encryption: bad record size {raw[:20]!r}")
    return int(raw)


# -- receiving ----------------------------------------------------------------------------


def decrypt_aesgcm(
    raw_data: bytes,
    *,
    crypto_key: str,
    encryption: str,
    private_key: ec.EllipticCurvePrivateKey,
    auth_secret: bytes,
) -> bytes:
    """The plaintext of an "aesgcm" push, padding removed.

    ``crypto_key`` and ``encryption`` are the header strings as MCS ``app_data`` carries
    them (``dh=…``, ``salt=…``, possibly with other parameters).  Raises ``WebPushError``.
    """
    key_params, enc_params = _header_params(crypto_key), _header_params(encryption)
    if "dh" not in key_params:
        raise WebPushError("crypto-key: no dh parameter")
    if "salt" not in enc_params:
        raise WebPushError("encryption: no salt parameter")
    try:
        sender_public = b64url_decode(key_params["dh"])
    except ValueError:
        raise WebPushError("crypto-key: dh is not base64url") from None
    try:
        salt = b64url_decode(enc_params["salt"])
    except ValueError:
        raise WebPushError("encryption: salt is not base64url") from None
    if len(salt) != SALT_SIZE:
        raise WebPushError(f"encryption: salt of {len(salt)} bytes, expected {SALT_SIZE}")
    rs = _record_size(enc_params)
    sender = _load_point(sender_public, "crypto-key: dh")
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
        private_key.curve, ec.SECP256R1
    ):
        raise WebPushError("the receiver's key is not a P-256 private key")
    key, base_nonce = _derive(
        shared=private_key.exchange(ec.ECDH(), sender),
        auth_secret=auth_secret,
        salt=salt,
        receiver_public=public_bytes(private_key),
        sender_public=sender_public,
    )
    if not raw_data:
        raise WebPushError("empty ciphertext")
    aead, chunk, out = AESGCM(key), rs + TAG_SIZE, bytearray()
    for counter, start in enumerate(range(0, len(raw_data), chunk)):
        record = raw_data[start : start + chunk]
        if len(record) < TAG_SIZE + PAD_HEADER:
            raise WebPushError(f"record {counter}: {len(record)} bytes is too short")
        try:
            plain = aead.decrypt(_record_nonce(base_nonce, counter), bytes(record), None)
        except InvalidTag:
            raise WebPushError(
                f"record {counter}: authentication failed (wrong keys or altered data)"
            ) from None
        (pad,) = struct.unpack_from(">H", plain)
        if PAD_HEADER + pad > len(plain):
            raise WebPushError(f"record {counter}: padding longer than the record")
        if any(plain[PAD_HEADER : PAD_HEADER + pad]):
            raise WebPushError(f"record {counter}: padding is not zeros")
        out += plain[PAD_HEADER + pad :]
    return bytes(out)


def load_fcm_keys(keys: Mapping[str, Any]) -> FcmKeys:
    """secrets.json's ``fcm_credentials.keys`` (``public``: base64url 65-byte point,
    ``private``: base64url PKCS#8 DER of a P-256 key, ``secret``: base64url 16 bytes).

    A missing or bad value raises ``ValueError`` naming the key, e.g.
    ``fcm_credentials.keys.private: not a P-256 private key``; never the value.
    """
    if not isinstance(keys, Mapping):
        raise ValueError(f"{_KEYS_PATH}: not an object")
    raw: dict[str, bytes] = {}
    for name in ("public", "private", "secret"):
        value = keys.get(name)
        if value is None:
            raise ValueError(f"{_KEYS_PATH}.{name}: missing")
        if not isinstance(value, str):
            raise ValueError(f"{_KEYS_PATH}.{name}: not a string")
        try:
            raw[name] = b64url_decode(value)
        except ValueError:
            raise ValueError(f"{_KEYS_PATH}.{name}: not base64url") from None
    try:
        private = serialization.load_der_private_key(raw["private"], password=None)
    except (ValueError, TypeError):
        private = None
    if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
        private.curve, ec.SECP256R1
    ):
        raise ValueError(f"{_KEYS_PATH}.private: not a P-256 private key")
    try:
        public = _load_point(raw["public"], f"{_KEYS_PATH}.public")
    except WebPushError as exc:
        raise ValueError(str(exc)) from None
    if public_bytes(public) != public_bytes(private):
        raise ValueError(f"{_KEYS_PATH}.public: does not belong to {_KEYS_PATH}.private")
    if len(raw["secret"]) != AUTH_SECRET_SIZE:
        raise ValueError(
            f"{_KEYS_PATH}.secret: {len(raw['secret'])} bytes, expected {AUTH_SECRET_SIZE}"
        )
    return FcmKeys(private_key=private, public_key=raw["public"], auth_secret=raw["secret"])


def fcm_keys_json(private_key: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> dict[str, str]:
    """``fcm_credentials.keys`` as secrets.json holds them, for the given key and secret."""
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {
        "public": b64url_encode(public_bytes(private_key)),
        "private": b64url_encode(der),
        "secret": b64url_encode(auth_secret),
    }


# -- sending (fakes) ----------------------------------------------------------------------


def encrypt_aesgcm(
    plaintext: bytes,
    *,
    receiver_public: bytes,
    auth_secret: bytes,
    sender_private: ec.EllipticCurvePrivateKey | None = None,
    salt: bytes | None = None,
    record_size: int = DEFAULT_RECORD_SIZE,
    pad: int = 0,
) -> tuple[bytes, str, str]:
    """Encrypt a push the way an "aesgcm" sender does: ``(raw_data, crypto_key,
    encryption)``, the last two as ``app_data`` header strings.

    A fresh sender key and salt are drawn unless given.  ``pad`` zero bytes of padding go
    into the first record.  As the draft asks, a plaintext that fills its last record
    exactly is followed by an empty record, so a cut at a record boundary shows.
    """
    if not PAD_HEADER < record_size <= MAX_RECORD_SIZE:
        raise ValueError(f"record size {record_size} out of range")
    if not 0 <= pad <= record_size - PAD_HEADER:
        raise ValueError(f"padding {pad} does not fit a record of {record_size}")
    receiver = _load_point(receiver_public, "receiver_public")
    sender_private = sender_private or ec.generate_private_key(ec.SECP256R1())
    salt = os.urandom(SALT_SIZE) if salt is None else salt
    if len(salt) != SALT_SIZE:
        raise ValueError(f"salt of {len(salt)} bytes, expected {SALT_SIZE}")
    sender_public = public_bytes(sender_private)
    key, base_nonce = _derive(
        shared=sender_private.exchange(ec.ECDH(), receiver),
        auth_secret=auth_secret,
        salt=salt,
        receiver_public=receiver_public,
        sender_public=sender_public,
    )
    aead, out = AESGCM(key), bytearray()
    pos, counter, first = 0, 0, True
    while True:
        this_pad = pad if first else 0
        room = record_size - PAD_HEADER - this_pad
        data = plaintext[pos : pos + room]
        record = struct.pack(">H", this_pad) + bytes(this_pad) + data
        out += aead.encrypt(_record_nonce(base_nonce, counter), record, None)
        pos, counter, first = pos + len(data), counter + 1, False
        if len(data) < room:  # a short (possibly empty) record ends the message
            break
    headers = f"salt={b64url_encode(salt)}"
    if record_size != DEFAULT_RECORD_SIZE:
        headers += f";rs={record_size}"
    return bytes(out), f"dh={b64url_encode(sender_public)}", headers
