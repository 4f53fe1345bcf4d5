"""Find Hub's crypto against every vector of the reference (§8)."""

from __future__ import annotations

import pytest

from gpshub_findhub.crypto import (
    GX,
    GY,
    MCU_FAST_PAIR_MODEL_ID,
    EikError,
    N,
    P,
    ReportDecryptError,
    compute_eid,
    decode_location,
    decrypt_eik,
    decrypt_finder_report,
    decrypt_own_report,
    eax_decrypt,
    eax_encrypt,
    encode_location,
    encrypt_eik,
    encrypt_finder_report,
    encrypt_own_report,
    is_on_curve,
    lift_x,
    scalar_mult,
)

EIK = bytes(range(32))  # 00..1f
EIK2 = bytes.fromhex("030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dc")
OWNER_KEY = bytes(range(100, 132))  # 0x64..0x83
T = 8704000  # 0x84D000, a multiple of 1024
SENDER = bytes(range(1, 33))  # 01..20
SX = bytes.fromhex("92038871819a59e7eee4011b8bff4b55dd3cd5d3")

HELLO = b"Hello FMDN JS port! 0123456789AB"
HELLO_CT = bytes.fromhex(
    "5df30b087854b00fb264958a150770c314b9cd81eff891a846f61ed0c4b4a74b"
    "5497608711fc5186d0ced5c8d6bfa228"
)
LATLON = b"lat:52.5200,lon:13.4050"
LATLON_SENDER = bytes.fromhex("010e1b2835424f5c697683909daab7c4d1deebf805121f2c394653606d7a8794")
LATLON_CT = bytes.fromhex(
    "bbc512a1acd58f8e4d887ddaa1139f25fc87d2c60b90b69b60f56e7ed7df1a66ad358e0a9270c5"
)
LATLON_SX = bytes.fromhex("182e1e7821caa7286708a3a33145f157d6ef4f50")

LOCATION_BERLIN = bytes.fromhex("0d80ea4d1f15d070fd071822")  # Location(52.52, 13.405, 34)
OWN_REPORT = bytes.fromhex(
    "00000000000000000000000097c8a5abfd7573856c815397d5b3fb0c6a18af19e456aa043984d0eb"
)
EIK_GCM = bytes.fromhex(
    "000102030405060708090a0b9faa3a4fb948c7ee951a94c39a9786bdf9062f833916c632df0bf310"
    "4ff15fff4fee80556fc8d5df0a6506fe396006a4"
)
EIK_CBC = bytes.fromhex(
    "0000000000000000000000000000000008d2bd0b8c324259659323c916820567"
    "045d22fa3f13bb3f12950fb4ae074b7e"
)
FINDER_CT = bytes.fromhex(
    "189626bd0b6136dc102fad3db9d8ff539932135edee43817d168ace88b60d094063ee8687c"
)


# -- the curve -------------------------------------------------------------------------


def test_generator_is_on_the_curve_and_has_order_n() -> None:
    assert is_on_curve((GX, GY))
    assert scalar_mult(1) == (GX, GY)
    assert scalar_mult(N) is None
    assert scalar_mult(N - 1) == (GX, (-GY) % P)


def test_scalar_mult_is_a_homomorphism() -> None:
    a, b = 0x1234567890ABCDEF, 0xFEDCBA0987654321
    pa = scalar_mult(a)
    assert pa is not None and is_on_curve(pa)
    # b·(a·G) = (a·b)·G, with both the generator's table and a fresh point's
    assert scalar_mult(b, pa) == scalar_mult(a * b)
    assert scalar_mult(2) == scalar_mult(1, scalar_mult(2)) == scalar_mult(N + 2)


def test_lift_x_finds_the_point_or_refuses() -> None:
    point = scalar_mult(12345)
    assert point is not None
    lifted = lift_x(point[0])
    assert lifted[0] == point[0] and lifted[1] % 2 == 0 and is_on_curve(lifted)
    assert lifted[1] in (point[1], (-point[1]) % P)
    # x = 0 is off the curve iff b is not a square; find an x that is off for sure
    off = next(x for x in range(1, 50) if not _on_curve_x(x))
    with pytest.raises(ReportDecryptError, match="not on secp160r1"):
        lift_x(off)
    with pytest.raises(ReportDecryptError, match="out of range"):
        lift_x(2**160)


def _on_curve_x(x: int) -> bool:
    try:
        lift_x(x)
    except ReportDecryptError:
        return False
    return True


# -- EIDs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("eik", "t", "eid"),
    [
        (EIK, T, "9d8188455646a1b02ef769bf9845f095c1e79499"),
        (EIK2, 1758000000, "85c98e079a2b8df8bc226cf20deebeaae1484314"),
    ],
)
def test_eid_vectors(eik: bytes, t: int, eid: str) -> None:
    assert compute_eid(eik, t).hex() == eid


def test_eid_rotates_every_1024_seconds() -> None:
    eid = compute_eid(EIK, T)
    assert compute_eid(EIK, T + 1023) == eid
    assert compute_eid(EIK, T + 1024) != eid
    assert compute_eid(EIK, T - 1) != eid


def test_eid_refuses_a_wrong_size_key() -> None:
    with pytest.raises(ReportDecryptError, match="32 bytes"):
        compute_eid(EIK[:16], T)


# -- finder reports --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("eik", "t", "message", "sender", "ct", "sx"),
    [
        (EIK, T, HELLO, SENDER, HELLO_CT, SX),
        (EIK2, 1758000000, LATLON, LATLON_SENDER, LATLON_CT, LATLON_SX),
    ],
)
def test_finder_report_vectors(
    eik: bytes, t: int, message: bytes, sender: bytes, ct: bytes, sx: bytes
) -> None:
    assert encrypt_finder_report(eik, t, message, sender) == (ct, sx)
    assert decrypt_finder_report(eik, ct, sx, t) == message
    # any time in the same 1024-s window gives the same key
    assert decrypt_finder_report(eik, ct, sx, t | 0x3FF) == message


def test_finder_location_vector() -> None:
    plaintext = encode_location(48.4, 9.9, -3)
    assert encrypt_finder_report(EIK, T, plaintext, SENDER) == (FINDER_CT, SX)
    assert decode_location(decrypt_finder_report(EIK, FINDER_CT, SX, T)) == (48.4, 9.9, -3)


@pytest.mark.parametrize("position", [0, 5, -1])
def test_a_tampered_finder_report_is_refused(position: int) -> None:
    tampered = bytearray(HELLO_CT)
    tampered[position] ^= 0x01
    with pytest.raises(ReportDecryptError, match="tag does not match"):
        decrypt_finder_report(EIK, bytes(tampered), SX, T)


def test_a_finder_report_with_the_wrong_key_time_or_point_is_refused() -> None:
    with pytest.raises(ReportDecryptError):
        decrypt_finder_report(EIK2, HELLO_CT, SX, T)
    with pytest.raises(ReportDecryptError):
        decrypt_finder_report(EIK, HELLO_CT, SX, T + 1024)
    with pytest.raises(ReportDecryptError):
        decrypt_finder_report(EIK, HELLO_CT, LATLON_SX, T)
    with pytest.raises(ReportDecryptError, match="20"):
        decrypt_finder_report(EIK, HELLO_CT, bytes(32), T)
    with pytest.raises(ReportDecryptError, match="shorter than its tag"):
        decrypt_finder_report(EIK, HELLO_CT[:15], SX, T)


def test_eax_round_trip_with_header() -> None:
    key, nonce = bytes(range(32)), bytes(16)
    sealed = eax_encrypt(key, nonce, b"payload", b"header")
    assert eax_decrypt(key, nonce, sealed, b"header") == b"payload"
    with pytest.raises(ReportDecryptError):
        eax_decrypt(key, nonce, sealed, b"other")
    assert eax_decrypt(key, nonce, eax_encrypt(key, nonce, b"")) == b""


# -- own reports -----------------------------------------------------------------------


def test_own_report_vector() -> None:
    assert encrypt_own_report(EIK, LOCATION_BERLIN, bytes(12)) == OWN_REPORT
    assert decrypt_own_report(EIK, OWN_REPORT) == LOCATION_BERLIN


def test_a_tampered_or_short_own_report_is_refused() -> None:
    tampered = OWN_REPORT[:-1] + bytes([OWN_REPORT[-1] ^ 1])
    with pytest.raises(ReportDecryptError, match="tag does not match"):
        decrypt_own_report(EIK, tampered)
    with pytest.raises(ReportDecryptError, match="tag does not match"):
        decrypt_own_report(EIK2, OWN_REPORT)
    with pytest.raises(ReportDecryptError, match="too short"):
        decrypt_own_report(EIK, OWN_REPORT[:27])


# -- the EIK ---------------------------------------------------------------------------


def test_eik_vectors_both_forms() -> None:
    assert encrypt_eik(EIK, OWNER_KEY, form="gcm", iv=bytes(range(12))) == EIK_GCM
    assert encrypt_eik(EIK, OWNER_KEY, form="cbc", iv=bytes(16)) == EIK_CBC
    assert decrypt_eik(EIK_GCM, OWNER_KEY) == EIK
    assert decrypt_eik(EIK_CBC, OWNER_KEY) == EIK


def test_eik_bit_inverted_for_mcu_trackers() -> None:
    assert MCU_FAST_PAIR_MODEL_ID == "003200"
    inverted = bytes(b ^ 0xFF for b in EIK_GCM)
    assert encrypt_eik(EIK, OWNER_KEY, iv=bytes(range(12)), bit_inverted=True) == inverted
    assert decrypt_eik(inverted, OWNER_KEY, bit_inverted=True) == EIK
    with pytest.raises(EikError):
        decrypt_eik(inverted, OWNER_KEY)


def test_eik_random_iv_round_trip() -> None:
    for form in ("gcm", "cbc"):
        blob = encrypt_eik(EIK2, OWNER_KEY, form=form)  # type: ignore[arg-type]
        assert decrypt_eik(blob, OWNER_KEY) == EIK2
    assert encrypt_eik(EIK, OWNER_KEY) != encrypt_eik(EIK, OWNER_KEY)


def test_eik_errors_say_what_and_never_show_keys() -> None:
    wrong = bytes(32)
    with pytest.raises(EikError) as caught:
        decrypt_eik(EIK_GCM, wrong)
    for secret in (wrong, OWNER_KEY, EIK):
        assert secret.hex() not in str(caught.value)
    with pytest.raises(EikError, match="40 bytes"):
        decrypt_eik(bytes(40), OWNER_KEY)
    with pytest.raises(EikError, match="owner key must be 32 bytes"):
        decrypt_eik(EIK_GCM, OWNER_KEY[:16])
    assert issubclass(EikError, ValueError) and issubclass(ReportDecryptError, ValueError)
    # CBC has no tag: a wrong owner key decrypts to a wrong EIK (reports tell, see reports)
    assert decrypt_eik(EIK_CBC, wrong) != EIK


# -- Location --------------------------------------------------------------------------


def test_location_vector() -> None:
    assert encode_location(52.52, 13.405, 34) == LOCATION_BERLIN
    assert decode_location(LOCATION_BERLIN) == (52.52, 13.405, 34)


def test_location_negative_values_and_defaults() -> None:
    assert decode_location(encode_location(-33.8688, -151.2093, -12)) == (
        -33.8688,
        -151.2093,
        -12,
    )
    assert encode_location(0, 0, 0) == b""
    assert decode_location(b"") == (0.0, 0.0, 0)


@pytest.mark.parametrize(
    "plaintext",
    [
        b"\x0d\x01",  # truncated fixed32
        b"\xff",  # truncated varint
        encode_location(10, 10, 0)[:-1],
        b"\x0a\x05abc",  # length-delimited, cut short
        b"\x0d" + (1_000_000_000).to_bytes(4, "little"),  # latitude 100°
        b"\x15" + (2_000_000_000).to_bytes(4, "little"),  # longitude 200°
    ],
)
def test_location_garbage_is_refused(plaintext: bytes) -> None:
    with pytest.raises(ReportDecryptError):
        decode_location(plaintext)
