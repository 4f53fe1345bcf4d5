"""Web push "aesgcm": the reference's vector (§8), multi-record round trips, bad input."""

from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gpshub_findhub.webpush import (
    FcmKeys,
    WebPushError,
    _derive,
    _record_nonce,
    b64url_decode,
    b64url_encode,
    decrypt_aesgcm,
    encrypt_aesgcm,
    fcm_keys_json,
    load_fcm_keys,
    public_bytes,
)

RECEIVER = ec.derive_private_key(int.from_bytes(bytes(range(1, 33)), "big"), ec.SECP256R1())
SENDER = ec.derive_private_key(int.from_bytes(bytes(range(0x21, 0x41)), "big"), ec.SECP256R1())
AUTH = bytes(range(16))
SALT = bytes(range(0x64, 0x74))
PLAINTEXT = b'{"data": {"com.google.android.apps.adm.FCM_PAYLOAD": "CgQIAhoA"}}'
RAW_DATA = bytes.fromhex(
    "7f7553aa331119515baec382174880b319cd9d8fa50c7d5bd4adf327ef24c9c1681d06f3539905d7ac76be68"
    "a0f42d2a9d23d4ad7620166d1d1079f4309959804fe99008372e08c6bb5f505074ce489ace2e16"
)
CRYPTO_KEY = (
    "dh=BB8UAUa_sbJR-E9N2-DUzc_Xev2YSpUg41eUAh-DErue7JlaCLH6dwTfPcwLUKlmUmP7dxH5X5-KRJxQluR8iSs"
)
ENCRYPTION = "salt=ZGVmZ2hpamtsbW5vcHFycw"


def decrypt(raw: bytes, crypto_key: str = CRYPTO_KEY, encryption: str = ENCRYPTION, **kw) -> bytes:
    kw.setdefault("private_key", RECEIVER)
    kw.setdefault("auth_secret", AUTH)
    return decrypt_aesgcm(raw, crypto_key=crypto_key, encryption=encryption, **kw)


def encrypt(plaintext: bytes, **kw) -> tuple[bytes, str, str]:
    return encrypt_aesgcm(plaintext, receiver_public=public_bytes(RECEIVER), auth_secret=AUTH, **kw)


# -- the reference vector ------------------------------------------------------------------


def test_reference_vector_decrypts() -> None:
    assert decrypt(RAW_DATA) == PLAINTEXT


def test_reference_vector_encrypts_byte_for_byte() -> None:
    raw, crypto_key, encryption = encrypt(PLAINTEXT, sender_private=SENDER, salt=SALT)
    assert raw == RAW_DATA
    assert crypto_key == CRYPTO_KEY
    assert encryption == ENCRYPTION


@pytest.mark.parametrize(
    ("crypto_key", "encryption"),
    [
        (CRYPTO_KEY + ";p256ecdsa=BAAA", ENCRYPTION + ";rs=4096"),
        ("keyid=p256dh;" + CRYPTO_KEY, "keyid=p256dh; " + ENCRYPTION),
        (CRYPTO_KEY + ",p256ecdsa=BAAA", ENCRYPTION + "=="),  # padded base64 is fine too
        (CRYPTO_KEY.replace("dh=", "DH="), ENCRYPTION.replace("salt=", 'Salt="') + '"'),
    ],
)
def test_header_parameters_around_dh_and_salt(crypto_key: str, encryption: str) -> None:
    assert decrypt(RAW_DATA, crypto_key, encryption) == PLAINTEXT


# -- records and padding --------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4093, 4094, 4095, 10_000, 3 * 4094])
def test_round_trip_over_records(size: int) -> None:
    plaintext = bytes(i * 7 % 251 for i in range(size))
    raw, crypto_key, encryption = encrypt(plaintext)
    records = size // 4094 + 1  # a full last record is followed by an empty one
    assert len(raw) == size + records * (2 + 16)
    assert decrypt(raw, crypto_key, encryption) == plaintext


def test_records_use_their_own_nonce() -> None:
    plaintext = bytes(range(256)) * 40  # 10240 bytes: three records
    raw, crypto_key, encryption = encrypt(plaintext)
    first, second = raw[:4112], raw[4112:8224]
    swapped = second + first + raw[8224:]
    with pytest.raises(WebPushError, match="record 0: authentication failed"):
        decrypt(swapped, crypto_key, encryption)
    assert decrypt(raw, crypto_key, encryption) == plaintext


def test_smaller_record_size_from_the_header() -> None:
    plaintext = b"x" * 100
    raw, crypto_key, encryption = encrypt(plaintext, record_size=32)
    assert encryption.endswith(";rs=32")
    assert len(raw) == 100 + 4 * 18  # 30 bytes of data per record
    assert decrypt(raw, crypto_key, encryption) == plaintext


def test_padding_is_removed() -> None:
    raw, crypto_key, encryption = encrypt(b"hello", pad=300)
    assert len(raw) == 2 + 300 + 5 + 16
    assert decrypt(raw, crypto_key, encryption) == b"hello"


def _sealed(records: list[bytes]) -> tuple[bytes, str, str]:
    """Records sealed as a sender would, whatever their content (for bad padding)."""
    key, nonce = _derive(
        shared=SENDER.exchange(ec.ECDH(), RECEIVER.public_key()),
        auth_secret=AUTH,
        salt=SALT,
        receiver_public=public_bytes(RECEIVER),
        sender_public=public_bytes(SENDER),
    )
    raw = b"".join(
        AESGCM(key).encrypt(_record_nonce(nonce, i), record, None)
        for i, record in enumerate(records)
    )
    return raw, f"dh={b64url_encode(public_bytes(SENDER))}", f"salt={b64url_encode(SALT)}"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (struct.pack(">H", 3) + b"\x00\x01\x00data", "padding is not zeros"),
        (struct.pack(">H", 10) + b"\x00\x00", "padding longer than the record"),
        (b"\x00", "too short"),
    ],
)
def test_bad_padding_refused(record: bytes, message: str) -> None:
    raw, crypto_key, encryption = _sealed([record])
    with pytest.raises(WebPushError, match=message):
        decrypt(raw, crypto_key, encryption)


def test_sealed_helper_matches_the_vector() -> None:
    raw, crypto_key, encryption = _sealed([b"\x00\x00" + PLAINTEXT])
    assert (raw, crypto_key, encryption) == (RAW_DATA, CRYPTO_KEY, ENCRYPTION)


# -- refusals ---------------------------------------------------------------------------------


def test_tampered_ciphertext_refused() -> None:
    tampered = RAW_DATA[:-1] + bytes([RAW_DATA[-1] ^ 1])
    with pytest.raises(WebPushError, match="authentication failed"):
        decrypt(tampered)


def test_wrong_auth_secret_refused() -> None:
    with pytest.raises(WebPushError, match="authentication failed"):
        decrypt(RAW_DATA, auth_secret=bytes(16))


def test_wrong_receiver_key_refused() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(WebPushError, match="authentication failed"):
        decrypt(RAW_DATA, private_key=other)


@pytest.mark.parametrize(
    ("crypto_key", "encryption", "message"),
    [
        ("p256ecdsa=BAAA", ENCRYPTION, "no dh parameter"),
        (CRYPTO_KEY, "rs=4096", "no salt parameter"),
        ("dh=!!!", ENCRYPTION, "dh is not base64url"),
        (CRYPTO_KEY, "salt=*", "salt is not base64url"),
        (CRYPTO_KEY, "salt=" + b64url_encode(bytes(8)), "salt of 8 bytes"),
        ("dh=" + b64url_encode(b"\x04" + bytes(64)), ENCRYPTION, "not a point on P-256"),
        ("dh=" + b64url_encode(bytes(33)), ENCRYPTION, "not an uncompressed P-256 point"),
        (CRYPTO_KEY, ENCRYPTION + ";rs=2", "bad record size"),
        (CRYPTO_KEY, ENCRYPTION + ";rs=x", "bad record size"),
    ],
)
def test_bad_headers_refused(crypto_key: str, encryption: str, message: str) -> None:
    with pytest.raises(WebPushError, match=message):
        decrypt(RAW_DATA, crypto_key, encryption)


@pytest.mark.parametrize("raw", [b"", RAW_DATA[:17], RAW_DATA + b"\x00" * 5])
def test_cut_or_extended_data_refused(raw: bytes) -> None:
    with pytest.raises(WebPushError):
        decrypt(raw)


def test_errors_are_value_errors() -> None:
    assert issubclass(WebPushError, ValueError)


# -- secrets.json keys ----------------------------------------------------------------------


def test_load_fcm_keys() -> None:
    keys = load_fcm_keys(fcm_keys_json(RECEIVER, AUTH))
    assert isinstance(keys, FcmKeys)
    assert keys.public_key == public_bytes(RECEIVER) and len(keys.public_key) == 65
    assert keys.auth_secret == AUTH
    assert keys.private_key.private_numbers() == RECEIVER.private_numbers()
    text = repr(keys)
    assert "auth_secret" not in text and "private_key" not in text
    assert decrypt(RAW_DATA, private_key=keys.private_key, auth_secret=keys.auth_secret)


def test_load_fcm_keys_accepts_padding_and_standard_alphabet() -> None:
    raw = fcm_keys_json(RECEIVER, AUTH)
    padded = {name: value + "=" * (-len(value) % 4) for name, value in raw.items()}
    standard = {name: value.replace("-", "+").replace("_", "/") for name, value in padded.items()}
    assert load_fcm_keys(padded).public_key == load_fcm_keys(standard).public_key


def _with(**changes: object) -> dict[str, object]:
    keys: dict[str, object] = dict(fcm_keys_json(RECEIVER, AUTH))
    for name, value in changes.items():
        if value is None:
            del keys[name]
        else:
            keys[name] = value
    return keys


P384 = ec.generate_private_key(ec.SECP384R1())
OTHER = ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (_with(private=None), "fcm_credentials.keys.private: missing"),
        (_with(public=5), "fcm_credentials.keys.public: not a string"),
        (_with(secret="###"), "fcm_credentials.keys.secret: not base64url"),
        (
            _with(private=b64url_encode(b"not DER")),
            "fcm_credentials.keys.private: not a P-256 private key",
        ),
        (
            _with(private=fcm_keys_json(P384, AUTH)["private"]),  # type: ignore[arg-type]
            "fcm_credentials.keys.private: not a P-256 private key",
        ),
        (
            _with(public=b64url_encode(bytes(65))),
            "fcm_credentials.keys.public: not an uncompressed",
        ),
        (
            _with(public=fcm_keys_json(OTHER, AUTH)["public"]),
            "fcm_credentials.keys.public: does not belong to fcm_credentials.keys.private",
        ),
        (
            _with(secret=b64url_encode(bytes(12))),
            "fcm_credentials.keys.secret: 12 bytes, expected 16",
        ),
        ("nope", "fcm_credentials.keys: not an object"),
    ],
)
def test_load_fcm_keys_names_the_bad_key(keys: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        load_fcm_keys(keys)  # type: ignore[arg-type]
    secret_values = fcm_keys_json(RECEIVER, AUTH).values()
    assert not any(value in str(caught.value) for value in secret_values)


def test_b64url_decode() -> None:
    assert b64url_decode("ZGVmZ2hpamtsbW5vcHFycw") == bytes(range(0x64, 0x74))
    with pytest.raises(ValueError):
        b64url_decode("a")
