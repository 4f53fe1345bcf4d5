"""From device metadata to located reports: the reference's full device list, outdated
owner keys, hygiene, MCU trackers, broken reports."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpshub_findhub.crypto import (
    MCU_FAST_PAIR_MODEL_ID,
    encode_location,
    encrypt_eik,
    encrypt_finder_report,
    encrypt_own_report,
)
from gpshub_findhub.messages import (
    STATUS_AGGREGATED,
    STATUS_CROWDSOURCED,
    STATUS_LAST_KNOWN,
    STATUS_SEMANTIC,
    DeviceMetadata,
    RawReport,
    decode_devices_list,
    encode_devices_list,
)
from gpshub_findhub.reports import (
    SKIP_NO_KEY,
    SKIP_NO_TIMESTAMP,
    SKIP_NULL_ISLAND,
    SKIP_UNDECRYPTABLE,
    SKIP_UNSUPPORTED,
    EikCache,
    OwnerKeyOutdated,
    Report,
    best_report,
    decrypt_device_reports,
    report_key,
)

EIK = bytes(range(32))
OWNER_KEY = bytes(range(100, 132))
T = 8704000
SENDER = bytes(range(1, 33))
CANONIC = "677db4d7-0000-234b-ab3f-14c14efd1b80"
# The reference's vectors (§8), used as the parts of its DevicesList
EIK_GCM = bytes.fromhex(
    "000102030405060708090a0b9faa3a4fb948c7ee951a94c39a9786bdf9062f833916c632df0bf310"
    "4ff15fff4fee80556fc8d5df0a6506fe396006a4"
)
OWN_REPORT = bytes.fromhex(
    "00000000000000000000000097c8a5abfd7573856c815397d5b3fb0c6a18af19e456aa043984d0eb"
)
FINDER_CT = bytes.fromhex(
    "189626bd0b6136dc102fad3db9d8ff539932135edee43817d168ace88b60d094063ee8687c"
)
SX = bytes.fromhex("92038871819a59e7eee4011b8bff4b55dd3cd5d3")

OWN = RawReport(
    timestamp=1758000000,
    status=STATUS_LAST_KNOWN,
    encrypted_location=OWN_REPORT,
    is_own_report=True,
    accuracy=12.0,
)
FINDER = RawReport(
    timestamp=1757990000,
    status=STATUS_CROWDSOURCED,
    public_key_random=SX,
    encrypted_location=FINDER_CT,
    device_time_offset=T,
    accuracy=40.0,
)
HOME = RawReport(timestamp=1757980000, status=STATUS_SEMANTIC, place_name="Home")

TEST_TAG = DeviceMetadata(
    canonic_id=CANONIC,
    identifier_type=2,
    name="Test Tag",
    device_type=3,
    manufacturer="Acme",
    model="T1",
    fast_pair_model_id="abc123",
    pair_date=1700000000,
    encrypted_eik=EIK_GCM,
    owner_key_version=1,
    reports=(OWN, FINDER, HOME),
)


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def own(timestamp: int, lat: float, lon: float, alt: int = 0, accuracy: float = 5.0) -> RawReport:
    blob = encrypt_own_report(EIK, encode_location(lat, lon, alt), bytes(12))
    return RawReport(
        timestamp=timestamp,
        status=STATUS_LAST_KNOWN,
        encrypted_location=blob,
        is_own_report=True,
        accuracy=accuracy,
    )


def finder(
    timestamp: int, lat: float, lon: float, *, t: int = T, offset: int | None = None
) -> RawReport:
    ct, sx = encrypt_finder_report(EIK, t, encode_location(lat, lon, 0), SENDER)
    return RawReport(
        timestamp=timestamp,
        status=STATUS_AGGREGATED,
        public_key_random=sx,
        encrypted_location=ct,
        device_time_offset=t if offset is None else offset,
        accuracy=30.0,
    )


def test_the_reference_devices_list_decodes_and_decrypts() -> None:
    body = encode_devices_list([TEST_TAG])
    assert len(body) == 342  # the reference's size: the same encoding, byte for byte
    (device,) = decode_devices_list(body)
    assert device == TEST_TAG
    reports = decrypt_device_reports(device, OWNER_KEY, EikCache())
    assert list(reports) == [
        Report(utc(1757990000), 48.4, 9.9, -3.0, 40.0, "crowdsourced", False, None),
        Report(utc(1758000000), 52.52, 13.405, 34.0, 12.0, "own", True, None),
    ]
    assert reports.skipped == []
    assert reports.places == [(utc(1757980000), "Home")]


def test_an_outdated_owner_key_raises_with_what_to_do() -> None:
    wrong = bytes(32)
    with pytest.raises(OwnerKeyOutdated) as caught:
        decrypt_device_reports(TEST_TAG, wrong, EikCache())
    error = caught.value
    assert (error.canonic_id, error.owner_key_version) == (CANONIC, 1)
    text = str(error)
    assert "secrets.json" in text and "re-pair" in text and CANONIC in text
    for secret in (wrong, OWNER_KEY, EIK, EIK_GCM):
        assert secret.hex() not in text


def test_a_device_with_no_reports_still_has_its_key_checked() -> None:
    quiet = replace(TEST_TAG, reports=())
    assert decrypt_device_reports(quiet, OWNER_KEY) == []
    with pytest.raises(OwnerKeyOutdated):
        decrypt_device_reports(quiet, bytes(32))
    with pytest.raises(OwnerKeyOutdated):  # a blob of a length no form has
        decrypt_device_reports(replace(quiet, encrypted_eik=bytes(50)), OWNER_KEY)


def test_cbc_eik_is_judged_by_its_reports_and_cached_once_proven() -> None:
    cbc = replace(TEST_TAG, encrypted_eik=encrypt_eik(EIK, OWNER_KEY, form="cbc"))
    cache = EikCache()
    with pytest.raises(OwnerKeyOutdated):
        decrypt_device_reports(cbc, bytes(32), cache)  # garbage EIK: no report decrypts
    assert len(cache) == 0
    assert len(decrypt_device_reports(cbc, OWNER_KEY, cache)) == 2
    assert len(cache) == 1
    # proven and cached: no longer needs (or checks) the owner key
    assert len(decrypt_device_reports(cbc, bytes(32), cache)) == 2


def test_the_cache_is_keyed_by_device_blob_and_version_and_bounded() -> None:
    cache = EikCache(max_entries=2)
    decrypt_device_reports(TEST_TAG, OWNER_KEY, cache)
    decrypt_device_reports(TEST_TAG, OWNER_KEY, cache)
    assert len(cache) == 1
    decrypt_device_reports(replace(TEST_TAG, owner_key_version=2), OWNER_KEY, cache)
    decrypt_device_reports(replace(TEST_TAG, canonic_id="other"), OWNER_KEY, cache)
    assert len(cache) == 2
    assert cache.get((CANONIC, EIK_GCM, 1)) is None  # the least recently used went out
    assert cache.get(("other", EIK_GCM, 1)) == EIK


def test_null_island_dropped_and_accuracy_zero_is_unknown() -> None:
    device = replace(
        TEST_TAG,
        reports=(own(1000, 0.0, 0.0), own(2000, 1.5, 0.0, accuracy=0.0), own(3000, 0, 2)),
    )
    reports = decrypt_device_reports(device, OWNER_KEY)
    assert [(r.latitude, r.longitude, r.accuracy_m) for r in reports] == [
        (1.5, 0.0, None),
        (0.0, 2.0, 5.0),
    ]
    assert [(s.timestamp, s.reason) for s in reports.skipped] == [(1000, SKIP_NULL_ISLAND)]


def test_mcu_tracker_bit_inverted_eik_and_time_counter_zero() -> None:
    mcu = DeviceMetadata(
        canonic_id="mcu",
        fast_pair_model_id=MCU_FAST_PAIR_MODEL_ID,
        encrypted_eik=encrypt_eik(EIK, OWNER_KEY, bit_inverted=True),
        # the finder encrypted with t = 0, whatever offset Google reports
        reports=(finder(5000, 47.0, 8.0, t=0, offset=T),),
    )
    (report,) = decrypt_device_reports(mcu, OWNER_KEY)
    assert (report.latitude, report.longitude, report.status) == (47.0, 8.0, "aggregated")
    # the same device without the quirk: its EIK does not even decrypt
    with pytest.raises(OwnerKeyOutdated):
        decrypt_device_reports(replace(mcu, fast_pair_model_id="abc123"), OWNER_KEY)


def test_a_corrupted_report_is_skipped_the_others_kept() -> None:
    broken = replace(FINDER, encrypted_location=FINDER_CT[:-1] + bytes([FINDER_CT[-1] ^ 1]))
    wrong_time = replace(FINDER, timestamp=1757990001, device_time_offset=T + 4096)
    device = replace(TEST_TAG, reports=(OWN, broken, wrong_time, HOME))
    reports = decrypt_device_reports(device, OWNER_KEY)
    assert [r.status for r in reports] == ["own"]
    assert [(s.timestamp, s.status, s.reason) for s in reports.skipped] == [
        (1757990000, STATUS_CROWDSOURCED, SKIP_UNDECRYPTABLE),
        (1757990001, STATUS_CROWDSOURCED, SKIP_UNDECRYPTABLE),
    ]
    assert "tag" in reports.skipped[0].detail


def test_other_reasons_to_skip() -> None:
    p256 = replace(FINDER, public_key_random=bytes(32))
    untimed = own(0, 10.0, 10.0)
    device = replace(TEST_TAG, reports=(p256, untimed, OWN))
    reports = decrypt_device_reports(device, OWNER_KEY)
    assert [r.status for r in reports] == ["own"]
    assert [s.reason for s in reports.skipped] == [SKIP_UNSUPPORTED, SKIP_NO_TIMESTAMP]
    # a phone in the list has no key: its reports cannot be read, and that is said
    phone = DeviceMetadata(canonic_id="p", identifier_type=1, reports=(OWN, HOME))
    reports = decrypt_device_reports(phone, OWNER_KEY)
    assert reports == [] and [s.reason for s in reports.skipped] == [SKIP_NO_KEY]
    assert reports.places == [(utc(HOME.timestamp), "Home")]


def test_semantic_names_go_to_a_report_within_five_seconds() -> None:
    device = replace(
        TEST_TAG,
        reports=(
            own(1000, 10.0, 10.0),
            own(2000, 20.0, 20.0),
            own(2004, 21.0, 21.0),
            RawReport(timestamp=1003, status=STATUS_SEMANTIC, place_name="Office"),
            RawReport(timestamp=2003, status=STATUS_SEMANTIC, place_name="Home"),
            RawReport(timestamp=3000, status=STATUS_SEMANTIC, place_name="Gym"),
            RawReport(timestamp=1006, status=STATUS_SEMANTIC, place_name="Too late"),
        ),
    )
    reports = decrypt_device_reports(device, OWNER_KEY)
    assert [(r.timestamp.timestamp(), r.place_name) for r in reports] == [
        (1000, "Office"),
        (2000, None),
        (2004, "Home"),  # the nearest of the two
    ]
    assert [name for _, name in reports.places] == ["Gym", "Too late"]


def test_a_report_with_its_own_place_name_keeps_it() -> None:
    named = replace(own(1000, 10.0, 10.0), place_name="Garage")
    device = replace(
        TEST_TAG,
        reports=(named, RawReport(timestamp=1001, status=STATUS_SEMANTIC, place_name="Home")),
    )
    reports = decrypt_device_reports(device, OWNER_KEY)
    assert [r.place_name for r in reports] == ["Garage"]
    assert [name for _, name in reports.places] == ["Home"]


def test_report_key_and_best_report() -> None:
    def report(ts: int, status: str, accuracy: float | None, lat: float = 1.0) -> Report:
        return Report(utc(ts), lat, 2.0, None, accuracy, status, False)

    assert report_key("d", report(1758000000, "own", 5.0, 52.52)) == (
        "d",
        1758000000,
        525200000,
        20000000,
    )
    assert best_report([]) is None
    old_own = report(100, "own", 1.0)
    new_agg = report(200, "aggregated", 50.0)
    new_crowd = report(200, "crowdsourced", 80.0)
    new_own_vague = report(200, "own", None)
    new_own_sharp = report(200, "own", 3.0)
    assert best_report([old_own, new_agg]) is new_agg
    assert best_report([new_agg, new_crowd]) is new_crowd
    assert best_report([new_crowd, new_own_vague]) is new_own_vague
    assert best_report([new_own_vague, new_own_sharp, new_agg]) is new_own_sharp
    assert best_report([report(200, "last_known", 1.0), new_agg]) is new_agg


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.builds(
            RawReport,
            timestamp=st.integers(0, 2**64 - 1),
            status=st.integers(0, 2**64 - 1),
            place_name=st.text(max_size=5),
            public_key_random=st.one_of(st.binary(max_size=33), st.just(SX)),
            encrypted_location=st.binary(max_size=60),
            is_own_report=st.booleans(),
            device_time_offset=st.integers(0, 2**32 - 1),
            accuracy=st.floats(allow_nan=True, allow_infinity=True),
        ),
        max_size=4,
    )
)
def test_garbage_reports_are_skipped_never_raised(raws: list[RawReport]) -> None:
    device = replace(TEST_TAG, reports=(OWN, *raws))
    reports = decrypt_device_reports(device, OWNER_KEY)
    assert [(r.latitude, r.longitude, r.status) for r in reports] == [(52.52, 13.405, "own")]
    assert len(reports) + len(reports.skipped) == 1 + sum(1 for r in raws if r.encrypted_location)


def test_an_impossible_timestamp_is_skipped() -> None:
    late = replace(OWN, timestamp=2**40)
    reports = decrypt_device_reports(replace(TEST_TAG, reports=(late, OWN)), OWNER_KEY)
    assert len(reports) == 1
    assert [(s.timestamp, s.reason) for s in reports.skipped] == [(2**40, SKIP_NO_TIMESTAMP)]
