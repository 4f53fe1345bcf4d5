"""Nova's protobuf messages: the two requests the plugin sends and the device metadata it
gets back, from the device list (``nbe_list_devices``) or a locate push (``DeviceUpdate``).

Field numbers are the reference's (§4.1, §4.2, §4.4, §5.3; proto3), each named where it
is written or read. Decoding is lenient the way protobuf is — absent fields give
defaults, unknown fields are ignored, enum values outside the known list are kept as
numbers — and strict about bytes: a malformed buffer raises ``MessageError`` (a
``WireError``) naming where it broke. A list entry without a canonic id is skipped.

The encoders of the responses (``encode_devices_list`` …) serve the fakes and tests:
``decode_devices_list(encode_devices_list(devices)) == devices``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from gpshub_findhub.wire import (
    Fields,
    WireError,
    bytes_field,
    float_field,
    message_field,
    signed32,
    varint_field,
)

SPOT_DEVICE = 2
"""``DeviceType`` of the list request, ``DeviceScope.type`` and ``RequestMetadata.type``
(``SPOT_DEVICE``)."""
IDENTIFIER_ANDROID = 1
"""``identifierInformation.type`` of a phone: its ids are under ``phoneInformation``."""
FMDN_ALL_LOCATIONS = 2
"""``locateTracker.contributorType``: ask for crowdsourced reports too."""

# LocationReport.status
STATUS_SEMANTIC = 0
STATUS_LAST_KNOWN = 1
STATUS_CROWDSOURCED = 2
STATUS_AGGREGATED = 3

DEVICE_TYPES: dict[int, str] = {
    0: "unknown",
    1: "beacon",
    2: "headphones",
    3: "keys",
    4: "watch",
    5: "wallet",
    7: "bag",
    8: "laptop",
    9: "car",
    10: "remote",
    11: "badge",
    12: "bike",
    13: "camera",
    14: "cat",
    15: "charger",
    16: "clothing",
    17: "dog",
    18: "notebook",
    19: "passport",
    20: "phone",
    21: "speaker",
    22: "tablet",
    23: "toy",
    24: "umbrella",
    25: "stylus",
    26: "earbuds",
}
"""``SpotDeviceType``; Google also sends values outside it (27 has been seen)."""


def device_type_name(value: int) -> str:
    """``"keys"``, ``"phone"`` …, or ``"type 27"`` for a value outside the known list."""
    return DEVICE_TYPES.get(value, f"type {value}")


_T = TypeVar("_T")


class MessageError(WireError):
    """A Nova message that does not decode; the message says where."""


# -- the requests ----------------------------------------------------------------------


def encode_list_devices_request(request_id: str) -> bytes:
    """``DevicesListRequest``: 1 requestPayload{1 type = SPOT_DEVICE, 3 id}."""
    payload = varint_field(1, SPOT_DEVICE) + bytes_field(3, request_id)
    return message_field(1, payload)


def _time(seconds: int) -> bytes:
    """``Time``: 1 seconds (uint32); nanos left out."""
    return varint_field(1, seconds) if seconds else b""


def encode_locate_request(
    *,
    canonic_id: str,
    request_uuid: str,
    client_uuid: str,
    fcm_token: str,
    high_traffic_time: int,
) -> bytes:
    """``ExecuteActionRequest`` for a locate; the answer comes back as a push carrying
    ``request_uuid``, to the FCM registration ``fcm_token``."""
    # ExecuteActionScope: 2 type, 3 device{1 canonicId{1 id}}
    scope = varint_field(2, SPOT_DEVICE) + message_field(
        3, message_field(1, bytes_field(1, canonic_id))
    )
    # ExecuteActionType: 30 locateTracker{2 lastHighTrafficEnablingTime(Time), 3 contributorType}
    locate = message_field(2, _time(high_traffic_time)) + varint_field(3, FMDN_ALL_LOCATIONS)
    action = message_field(30, locate)
    # ExecuteActionRequestMetadata: 1 type, 2 requestUuid, 3 fmdClientUuid,
    # 4 gcmRegistrationId{1 id}, 6 unknown = true
    metadata = (
        varint_field(1, SPOT_DEVICE)
        + bytes_field(2, request_uuid)
        + bytes_field(3, client_uuid)
        + message_field(4, bytes_field(1, fcm_token))
        + varint_field(6, True)
    )
    return message_field(1, scope) + message_field(2, action) + message_field(3, metadata)


# -- what comes back -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawReport:
    """One ``LocationReport`` with its timestamp, still encrypted.

    ``public_key_random`` empty means an own report (``encrypted_location`` is then
    ``IV || ct || tag`` for AES-GCM), 20 bytes a finder report (``Sx``); a semantic
    report (status 0) has only ``place_name``.
    """

    timestamp: int  # Time.seconds of the matching timestamp; 0 if Google sent none
    status: int  # STATUS_*; other values kept
    place_name: str = ""
    public_key_random: bytes = b""
    encrypted_location: bytes = b""
    is_own_report: bool = False
    device_time_offset: int = 0
    accuracy: float = 0.0  # metres; 0 means unknown


@dataclass(frozen=True, slots=True)
class DeviceMetadata:
    """A device as the list or a locate push describes it (``DeviceMetadata``)."""

    canonic_id: str
    identifier_type: int = 0  # 0 unknown, 1 Android phone, 2 Spot tracker
    name: str = ""
    device_type: int | None = None  # SpotDeviceType, None without deviceTypeInformation
    manufacturer: str = ""
    model: str = ""
    fast_pair_model_id: str = ""
    pair_date: int | None = None  # epoch seconds
    encrypted_eik: bytes = b""
    owner_key_version: int | None = None
    shared_with: tuple[str, ...] = ()  # e-mail of every other account with access
    image_url: str = ""
    reports: tuple[RawReport, ...] = ()


@dataclass(frozen=True, slots=True)
class DeviceUpdate:
    """A locate answer (the FCM push's payload)."""

    request_uuid: str
    response_time: int | None
    device: DeviceMetadata


# -- decoding --------------------------------------------------------------------------


def _parse(buf: bytes, where: str) -> Fields:
    try:
        return Fields(buf)
    except WireError as exc:
        raise MessageError(f"{where}: {exc}") from None


def _sub(fields: Fields, number: int, where: str) -> Fields | None:
    """The embedded message ``number``, decoded, or ``None`` when absent."""
    try:
        raw = fields.bytes_list(number)
    except WireError as exc:
        raise MessageError(f"{where}: {exc}") from None
    return _parse(raw[-1], where) if raw else None


def _subs(fields: Fields, number: int, where: str) -> list[Fields]:
    try:
        raw = fields.bytes_list(number)
    except WireError as exc:
        raise MessageError(f"{where}: {exc}") from None
    return [_parse(item, f"{where}[{i}]") for i, item in enumerate(raw)]


def _canonic_ids(ids: Fields | None, where: str) -> list[str]:
    """``CanonicIds``: 1 repeated CanonicId{1 id}."""
    if ids is None:
        return []
    out = []
    for item in _subs(ids, 1, f"{where}.canonicId"):
        value = item.str(1)
        if value:
            out.append(value)
    return out


def _decode_time(time: Fields | None) -> int:
    return time.int(1) if time is not None else 0


def _decode_report(report: Fields | None, timestamp: int, where: str) -> RawReport | None:
    """``LocationReport``: 5 semanticLocation{1 locationName}, 10 geoLocation, 11 status."""
    if report is None:
        return None
    semantic = _sub(report, 5, f"{where}.semanticLocation")
    place = semantic.str(1) if semantic is not None else ""
    # GeoLocation: 1 encryptedReport, 2 deviceTimeOffset (uint32), 3 accuracy (float)
    geo = _sub(report, 10, f"{where}.geoLocation")
    # EncryptedReport: 1 publicKeyRandom, 2 encryptedLocation, 3 isOwnReport
    encrypted = _sub(geo, 1, f"{where}.encryptedReport") if geo is not None else None
    return RawReport(
        timestamp=timestamp,
        status=report.int(11),
        place_name=place,
        public_key_random=encrypted.bytes(1) if encrypted is not None else b"",
        encrypted_location=encrypted.bytes(2) if encrypted is not None else b"",
        is_own_report=encrypted.bool(3) if encrypted is not None else False,
        device_time_offset=(geo.int(2) & 0xFFFFFFFF) if geo is not None else 0,
        accuracy=geo.float(3) if geo is not None else 0.0,
    )


def _decode_reports(location: Fields | None, where: str) -> tuple[RawReport, ...]:
    """``LocationInformation``: 3 reports{4 recentLocationAndNetworkLocations{1
    recentLocation, 2 recentLocationTimestamp, 5 networkLocations[], 6
    networkLocationTimestamps[]}} — the i-th network location goes with the i-th
    timestamp."""
    if location is None:
        return ()
    where = f"{where}.locationInformation"
    reports = _sub(location, 3, f"{where}.reports")
    latest = _sub(reports, 4, f"{where}.recent") if reports is not None else None
    if latest is None:
        return ()
    out: list[RawReport] = []
    recent = _decode_report(
        _sub(latest, 1, f"{where}.recentLocation"),
        _decode_time(_sub(latest, 2, f"{where}.recentLocationTimestamp")),
        f"{where}.recentLocation",
    )
    if recent is not None:
        out.append(recent)
    stamps = [_decode_time(time) for time in _subs(latest, 6, f"{where}.networkLocationTimestamps")]
    for i, network in enumerate(_subs(latest, 5, f"{where}.networkLocations")):
        stamp = stamps[i] if i < len(stamps) else 0
        report = _decode_report(network, stamp, f"{where}.networkLocations[{i}]")
        assert report is not None
        out.append(report)
    return tuple(out)


def _decode_identity(ident: Fields | None, where: str) -> tuple[int, str]:
    """``identifierInformation``: 1 phoneInformation{2 canonicIds}, 2 type, 3
    canonicIds. Phones take the first of phoneInformation's ids, others the first of
    their own; either falls back to the other rather than lose a device."""
    if ident is None:
        return 0, ""
    identifier_type = ident.int(2)
    phone = _sub(ident, 1, f"{where}.phoneInformation")
    phone_ids = _canonic_ids(
        _sub(phone, 2, f"{where}.phoneInformation.canonicIds") if phone is not None else None,
        where,
    )
    own_ids = _canonic_ids(_sub(ident, 3, f"{where}.canonicIds"), where)
    first, second = (
        (phone_ids, own_ids) if identifier_type == IDENTIFIER_ANDROID else (own_ids, phone_ids)
    )
    ids = first or second
    return identifier_type, ids[0] if ids else ""


class _Registration(NamedTuple):
    device_type: int | None = None
    manufacturer: str = ""
    model: str = ""
    fast_pair_model_id: str = ""
    pair_date: int | None = None
    encrypted_eik: bytes = b""
    owner_key_version: int | None = None


def _decode_registration(registration: Fields | None, where: str) -> _Registration:
    """``DeviceRegistration``: 2 deviceTypeInformation{2 deviceType}, 19
    encryptedUserSecrets{1 encryptedIdentityKey, 3 ownerKeyVersion (int32)}, 20
    manufacturer, 21 fastPairModelId, 23 pairDate (int32), 34 model."""
    if registration is None:
        return _Registration()
    where = f"{where}.deviceRegistration"
    type_info = _sub(registration, 2, f"{where}.deviceTypeInformation")
    secrets = _sub(registration, 19, f"{where}.encryptedUserSecrets")
    return _Registration(
        device_type=type_info.int(2) if type_info is not None else None,
        manufacturer=registration.str(20),
        model=registration.str(34),
        fast_pair_model_id=registration.str(21),
        pair_date=signed32(registration.int(23)) if 23 in registration else None,
        encrypted_eik=secrets.bytes(1) if secrets is not None else b"",
        owner_key_version=(
            signed32(secrets.int(3)) if secrets is not None and 3 in secrets else None
        ),
    )


def _decode_device(device: Fields, where: str) -> DeviceMetadata:
    """``DeviceMetadata``: 1 identifierInformation, 4 information{1 deviceRegistration,
    2 locationInformation, 3 accessInformation[]}, 5 userDefinedDeviceName, 6
    imageInformation{1 imageUrl}."""
    identifier_type, canonic_id = _decode_identity(
        _sub(device, 1, f"{where}.identifierInformation"), where
    )
    info = _sub(device, 4, f"{where}.information")
    registration = _decode_registration(
        _sub(info, 1, f"{where}.deviceRegistration") if info is not None else None, where
    )
    reports: tuple[RawReport, ...] = ()
    shared: list[str] = []
    if info is not None:
        reports = _decode_reports(_sub(info, 2, f"{where}.locationInformation"), where)
        # AccessInformation: 1 email, 2 hasAccess, 3 isOwner, 4 thisAccount
        for access in _subs(info, 3, f"{where}.accessInformation"):
            if not access.bool(4) and access.str(1):
                shared.append(access.str(1))
    image = _sub(device, 6, f"{where}.imageInformation")
    return DeviceMetadata(
        canonic_id=canonic_id,
        identifier_type=identifier_type,
        name=device.str(5),
        image_url=image.str(1) if image is not None else "",
        shared_with=tuple(shared),
        reports=reports,
        **registration._asdict(),
    )


def _guard(where: str, decode: Callable[[], _T]) -> _T:
    """Run ``decode``, turning a ``WireError`` from a typed accessor into a
    ``MessageError`` that says where."""
    try:
        return decode()
    except MessageError:
        raise
    except WireError as exc:
        raise MessageError(f"{where}: {exc}") from None


def decode_devices_list(body: bytes) -> list[DeviceMetadata]:
    """``DevicesList``: 2 repeated DeviceMetadata. Entries without a canonic id are
    skipped."""
    top = _parse(body, "DevicesList")
    out = []
    for i, entry in enumerate(_subs(top, 2, "DevicesList.deviceMetadata")):
        where = f"DevicesList.deviceMetadata[{i}]"
        device = _guard(where, lambda entry=entry, where=where: _decode_device(entry, where))
        if device.canonic_id:
            out.append(device)
    return out


def decode_device_update(body: bytes) -> DeviceUpdate:
    """``DeviceUpdate``: 1 fcmMetadata{2 requestUuid}, 2 requestMetadata{1 responseTime},
    3 deviceMetadata. A device without a canonic id gives ``canonic_id == ""``."""
    top = _parse(body, "DeviceUpdate")

    def decode() -> DeviceUpdate:
        fcm = _sub(top, 1, "DeviceUpdate.fcmMetadata")
        response = _sub(top, 2, "DeviceUpdate.requestMetadata")
        device = _sub(top, 3, "DeviceUpdate.deviceMetadata")
        return DeviceUpdate(
            request_uuid=fcm.str(2) if fcm is not None else "",
            response_time=_response_time(response),
            device=_decode_device(device, "DeviceUpdate.deviceMetadata")
            if device is not None
            else DeviceMetadata(canonic_id=""),
        )

    return _guard("DeviceUpdate", decode)


def _response_time(response: Fields | None) -> int | None:
    """``responseTime``: a ``Time`` message; a bare integer is accepted too."""
    if response is None or 1 not in response:
        return None
    try:
        raw = response.bytes_list(1)
    except WireError:
        return response.int(1)
    return _decode_time(_parse(raw[-1], "DeviceUpdate.requestMetadata.responseTime"))


# -- encoding (fakes and tests) --------------------------------------------------------


def _encode_canonic_ids(ids: Iterable[str]) -> bytes:
    return b"".join(message_field(1, bytes_field(1, value)) for value in ids)


def _encode_report(report: RawReport) -> bytes:
    out = b""
    if report.place_name:
        out += message_field(5, bytes_field(1, report.place_name))
    encrypted = b""
    if report.public_key_random:
        encrypted += bytes_field(1, report.public_key_random)
    if report.encrypted_location:
        encrypted += bytes_field(2, report.encrypted_location)
    if report.is_own_report:
        encrypted += varint_field(3, True)
    geo = message_field(1, encrypted) if encrypted else b""
    if report.device_time_offset:
        geo += varint_field(2, report.device_time_offset)
    if report.accuracy:
        geo += float_field(3, report.accuracy)
    if geo:
        out += message_field(10, geo)
    if report.status:
        out += varint_field(11, report.status)
    return out


def _encode_reports(reports: Sequence[RawReport]) -> bytes:
    """The first report becomes ``recentLocation``, the others ``networkLocations``."""
    if not reports:
        return b""
    first, rest = reports[0], reports[1:]
    latest = message_field(1, _encode_report(first)) + message_field(2, _time(first.timestamp))
    latest += b"".join(message_field(5, _encode_report(r)) for r in rest)
    latest += b"".join(message_field(6, _time(r.timestamp)) for r in rest)
    return message_field(3, message_field(4, latest))


def encode_device_metadata(device: DeviceMetadata) -> bytes:
    """``DeviceMetadata`` as Nova sends it (the inverse of the decoder)."""
    ids = _encode_canonic_ids([device.canonic_id] if device.canonic_id else [])
    if device.identifier_type == IDENTIFIER_ANDROID:
        ident = message_field(1, message_field(2, ids))
    else:
        ident = message_field(3, ids)
    if device.identifier_type:
        ident += varint_field(2, device.identifier_type)
    registration = b""
    if device.device_type is not None:
        type_info = varint_field(2, device.device_type) if device.device_type else b""
        registration += message_field(2, type_info)
    if device.encrypted_eik or device.owner_key_version is not None:
        secrets = bytes_field(1, device.encrypted_eik) if device.encrypted_eik else b""
        if device.owner_key_version is not None:
            secrets += varint_field(3, device.owner_key_version)
        registration += message_field(19, secrets)
    if device.manufacturer:
        registration += bytes_field(20, device.manufacturer)
    if device.fast_pair_model_id:
        registration += bytes_field(21, device.fast_pair_model_id)
    if device.pair_date is not None:
        registration += varint_field(23, device.pair_date)
    if device.model:
        registration += bytes_field(34, device.model)
    info = message_field(1, registration) if registration else b""
    if device.reports:
        info += message_field(2, _encode_reports(device.reports))
    for email in device.shared_with:
        info += message_field(3, bytes_field(1, email) + varint_field(2, True))
    out = message_field(1, ident)
    if info:
        out += message_field(4, info)
    if device.name:
        out += bytes_field(5, device.name)
    if device.image_url:
        out += message_field(6, bytes_field(1, device.image_url))
    return out


def encode_devices_list(devices: Iterable[DeviceMetadata]) -> bytes:
    return b"".join(message_field(2, encode_device_metadata(d)) for d in devices)


def encode_device_update(update: DeviceUpdate) -> bytes:
    out = message_field(1, bytes_field(2, update.request_uuid))
    if update.response_time is not None:
        out += message_field(2, message_field(1, _time(update.response_time)))
    return out + message_field(3, encode_device_metadata(update.device))
