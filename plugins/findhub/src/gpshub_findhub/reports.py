"""From a device's encrypted reports to located, timestamped reports (fixes-to-be).

``decrypt_device_reports`` decrypts the tracker's EIK with the owner key (through an
``EikCache``), then each report: an own report with AES-GCM, a finder report with the
secp160r1 ECIES of ``crypto``. Hygiene (reference §5.3): a report at (0, 0) is dropped,
accuracy 0 means unknown, a semantic report ("Home") has no coordinates and lends its
name to a located report within ±5 s.

A device whose EIK does not decrypt raises ``OwnerKeyOutdated`` (the caller flags that
device and goes on with the others); a single report that does not decrypt is left out
and listed in the result's ``skipped``, never fatal.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from gpshub_findhub.crypto import (
    EID_SIZE,
    EIK_CBC_SIZE,
    MCU_FAST_PAIR_MODEL_ID,
    EikError,
    ReportDecryptError,
    decode_location,
    decrypt_eik,
    decrypt_finder_report,
    decrypt_own_report,
)
from gpshub_findhub.messages import (
    STATUS_AGGREGATED,
    STATUS_CROWDSOURCED,
    STATUS_LAST_KNOWN,
    STATUS_SEMANTIC,
    DeviceMetadata,
    RawReport,
)

SEMANTIC_WINDOW_S = 5
"""A semantic name is attached to a located report at most this many seconds away."""

STATUS_OWN = "own"
STATUS_NAMES = {
    STATUS_SEMANTIC: "semantic",
    STATUS_LAST_KNOWN: "last_known",
    STATUS_CROWDSOURCED: "crowdsourced",
    STATUS_AGGREGATED: "aggregated",
}
_PREFERENCE = {STATUS_OWN: 3, "crowdsourced": 2, "aggregated": 1}
"""``best_report``'s order among reports of the same second (others rank 0)."""

# Why a report was left out (``SkippedReport.reason``)
SKIP_UNDECRYPTABLE = "undecryptable"  # bad tag or malformed ciphertext/plaintext
SKIP_UNSUPPORTED = "unsupported"  # a finder key that is not secp160r1 (32-byte P-256)
SKIP_NULL_ISLAND = "null_island"  # decrypted to (0, 0)
SKIP_NO_TIMESTAMP = "no_timestamp"  # Google sent no time for it, or an impossible one
SKIP_NO_KEY = "no_key"  # the device carries reports but no encrypted EIK


class OwnerKeyOutdated(Exception):
    """The device's identity key does not decrypt with the account's owner key."""

    def __init__(self, canonic_id: str, owner_key_version: int | None) -> None:
        version = "unknown" if owner_key_version is None else str(owner_key_version)
        super().__init__(
            f"Find Hub device {canonic_id}: its locations cannot be decrypted with the"
            f" owner_key in secrets.json (the device's key version: {version}). The"
            " account's end-to-end encryption keys have probably been reset since"
            " secrets.json was made: run GoogleFindMyTools again to regenerate"
            " secrets.json (with owner_key) and paste it into the connection; if the"
            " device was paired before the reset, re-pair it in the Find Hub app."
        )
        self.canonic_id = canonic_id
        self.owner_key_version = owner_key_version


@dataclass(frozen=True, slots=True)
class Report:
    """A decrypted location report."""

    timestamp: datetime  # aware, UTC
    latitude: float
    longitude: float
    altitude_m: float | None
    accuracy_m: float | None  # None when Google gave 0 (unknown)
    status: str  # "own", or Google's: "crowdsourced", "aggregated", "last_known", …
    is_own_report: bool  # the server's flag ("reported directly")
    place_name: str | None = None


@dataclass(frozen=True, slots=True)
class SkippedReport:
    """A report left out, for the caller to count or log (never any key material)."""

    timestamp: int
    status: int
    reason: str  # SKIP_*
    detail: str = ""


class DecryptedReports(list[Report]):
    """The located reports (a list, sorted by timestamp) plus what was left out."""

    def __init__(
        self,
        reports: Iterable[Report] = (),
        skipped: Iterable[SkippedReport] = (),
        places: Iterable[tuple[datetime, str]] = (),
    ) -> None:
        super().__init__(reports)
        self.skipped: list[SkippedReport] = list(skipped)
        self.places: list[tuple[datetime, str]] = list(places)
        """Semantic names no located report was near: ``(timestamp, name)``."""


EikKey = tuple[str, bytes, int | None]


class EikCache:
    """Decrypted EIKs by (canonic id, encrypted EIK, owner key version), least recently
    used out first. Only EIKs that proved right are kept: a GCM one (authenticated), or
    a CBC one after a report decrypted with it. Safe to share between worker threads
    (``run_blocking``)."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[EikKey, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: EikKey) -> bytes | None:
        with self._lock:
            eik = self._entries.get(key)
            if eik is not None:
                self._entries.move_to_end(key)
            return eik

    def put(self, key: EikKey, eik: bytes) -> None:
        with self._lock:
            self._entries[key] = eik
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:  # never the keys themselves
        return f"EikCache({len(self)} of {self.max_entries})"


_LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z, datetime's last


def _utc(seconds: int) -> datetime | None:
    """The report time, or ``None`` for none (0) or one no datetime can hold."""
    return datetime.fromtimestamp(seconds, UTC) if 0 < seconds <= _LAST_SECOND else None


def _status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"status_{status}")


def _accuracy(value: float) -> float | None:
    return value if math.isfinite(value) and value > 0 else None


def _decrypt_one(eik: bytes, raw: RawReport, timestamp: datetime, *, mcu: bool) -> Report:
    """One report, or ``ReportDecryptError``."""
    if raw.public_key_random:
        t = 0 if mcu else raw.device_time_offset
        plaintext = decrypt_finder_report(eik, raw.encrypted_location, raw.public_key_random, t)
        status = _status_name(raw.status)
    else:
        plaintext = decrypt_own_report(eik, raw.encrypted_location)
        status = STATUS_OWN
    lat, lon, alt = decode_location(plaintext)
    return Report(
        timestamp=timestamp,
        latitude=lat,
        longitude=lon,
        altitude_m=float(alt),
        accuracy_m=_accuracy(raw.accuracy),
        status=status,
        is_own_report=raw.is_own_report,
        place_name=raw.place_name or None,
    )


def _device_eik(
    device: DeviceMetadata, owner_key: bytes, cache: EikCache | None
) -> tuple[bytes, bool]:
    """The EIK and whether it is proven right (from the cache, or GCM-authenticated)."""
    key: EikKey = (device.canonic_id, device.encrypted_eik, device.owner_key_version)
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        return cached, True
    try:
        eik = decrypt_eik(
            device.encrypted_eik,
            owner_key,
            bit_inverted=device.fast_pair_model_id == MCU_FAST_PAIR_MODEL_ID,
        )
    except EikError:
        raise OwnerKeyOutdated(device.canonic_id, device.owner_key_version) from None
    proven = len(device.encrypted_eik) != EIK_CBC_SIZE
    if proven and cache is not None:
        cache.put(key, eik)
    return eik, proven


def decrypt_device_reports(
    device: DeviceMetadata, owner_key: bytes, cache: EikCache | None = None
) -> DecryptedReports:
    """The device's reports decrypted, cleaned up and sorted by timestamp.

    Raises ``OwnerKeyOutdated`` when the EIK does not decrypt — a GCM blob that fails
    its tag, a blob of a wrong length, or a CBC blob (unauthenticated) none of whose
    reports decrypts. A device without an encrypted EIK (a phone in the list) gives no
    reports. A device with no reports still has its EIK checked, so an outdated owner
    key shows on every list poll, not only after a locate.
    """
    if not device.encrypted_eik:
        skipped = [_skip(raw, SKIP_NO_KEY) for raw in device.reports if raw.encrypted_location]
        return DecryptedReports((), skipped, _places(device.reports))
    eik, proven = _device_eik(device, owner_key, cache)
    mcu = device.fast_pair_model_id == MCU_FAST_PAIR_MODEL_ID
    located: list[Report] = []
    skipped: list[SkippedReport] = []
    attempted = decrypted = 0
    for raw in device.reports:
        if not raw.encrypted_location:
            continue  # semantic: a name, no coordinates (see _places)
        timestamp = _utc(raw.timestamp)
        if timestamp is None:
            skipped.append(_skip(raw, SKIP_NO_TIMESTAMP))
            continue
        if raw.public_key_random and len(raw.public_key_random) != EID_SIZE:
            size = len(raw.public_key_random)
            skipped.append(_skip(raw, SKIP_UNSUPPORTED, f"finder key of {size} bytes"))
            continue
        attempted += 1
        try:
            report = _decrypt_one(eik, raw, timestamp, mcu=mcu)
        except ReportDecryptError as exc:
            skipped.append(_skip(raw, SKIP_UNDECRYPTABLE, str(exc)))
            continue
        decrypted += 1
        if report.latitude == 0.0 and report.longitude == 0.0:
            skipped.append(_skip(raw, SKIP_NULL_ISLAND))
        else:
            located.append(report)
    if not proven:
        if attempted and not decrypted:
            raise OwnerKeyOutdated(device.canonic_id, device.owner_key_version)
        if decrypted and cache is not None:
            cache.put((device.canonic_id, device.encrypted_eik, device.owner_key_version), eik)
    located.sort(key=lambda r: r.timestamp)
    located, unplaced = _attach_places(located, _places(device.reports))
    return DecryptedReports(located, skipped, unplaced)


def _skip(raw: RawReport, reason: str, detail: str = "") -> SkippedReport:
    return SkippedReport(raw.timestamp, raw.status, reason, detail)


def _places(raws: Iterable[RawReport]) -> list[tuple[datetime, str]]:
    """The names of the semantic reports (those without ciphertext) that have a time."""
    out = []
    for raw in raws:
        when = _utc(raw.timestamp)
        if raw.place_name and not raw.encrypted_location and when is not None:
            out.append((when, raw.place_name))
    return out


def _attach_places(
    located: list[Report], places: list[tuple[datetime, str]]
) -> tuple[list[Report], list[tuple[datetime, str]]]:
    """Each semantic name goes to the nearest located report within ±5 s that has no
    name yet; the names that found none are returned apart."""
    unplaced = []
    for when, name in places:
        best: int | None = None
        best_gap = SEMANTIC_WINDOW_S + 1.0
        for i, report in enumerate(located):
            gap = abs((report.timestamp - when).total_seconds())
            if report.place_name is None and gap <= SEMANTIC_WINDOW_S and gap < best_gap:
                best, best_gap = i, gap
        if best is None:
            unplaced.append((when, name))
        else:
            located[best] = replace(located[best], place_name=name)
    return located, unplaced


def report_key(canonic_id: str, report: Report) -> tuple[str, int, int, int]:
    """What makes a report the same one served again: (device, timestamp, lat×1e7,
    lon×1e7)."""
    return (
        canonic_id,
        int(report.timestamp.timestamp()),
        round(report.latitude * 1e7),
        round(report.longitude * 1e7),
    )


def best_report(reports: Iterable[Report]) -> Report | None:
    """The newest report; among equally new ones own > crowdsourced > aggregated > the
    rest, then the better (smaller, known) accuracy."""

    def rank(r: Report) -> tuple[datetime, int, float]:
        accuracy = -r.accuracy_m if r.accuracy_m is not None else -math.inf
        return r.timestamp, _PREFERENCE.get(r.status, 0), accuracy

    return max(reports, key=rank, default=None)
