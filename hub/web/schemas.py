"""Request and response bodies of the management API (pydantic models).

Request models forbid unknown fields, so a typo is a 422 naming it rather than a value
silently ignored.  Their length limits follow the database columns.  Response models are
what ``/openapi.json`` documents; the handlers build them from store rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from hub.models import MAX_RETENTION_DAYS, REMOTE_ID_RE, REMOTE_ID_RULE
from hub.sink_config import MAX_HEADER_NAME, MAX_HEADER_VALUE, MAX_HEADERS
from hub.timezones import iana_zones
from hub.web.errors import invalid
from hub.web.inputs import declared_text_problem
from hub.web.times import DESCRIPTION as TIME_TEXT
from hub.web.times import TimeParam


class _Schema(BaseModel):
    """Every model here: its validator and serializer are built when first used, not
    when this module is imported (about a hundred models, ~30 ms of every start;
    ``/openapi.json`` is made on first request as well)."""

    model_config = ConfigDict(defer_build=True)


class _InputModel(_Schema):
    """What a request gives: its declared strings are single lines (``hub.text``; the
    OpenAPI document states it as their ``pattern``)."""

    @field_validator("*", mode="after")
    @classmethod
    def _single_line(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is not None:
            field = cls.model_fields[info.field_name]
            problem = declared_text_problem(field.annotation, value)
            if problem:
                where, reason = problem
                name = field.alias or info.field_name
                # an ApiError (no ValueError) leaves pydantic as it is, naming the value
                raise invalid(f"{name}.{where}" if where else name, reason)
        return value


def installed(what: str) -> dict[str, Any]:
    """Marks a field whose values are what the hub has installed: ``sources``, ``sinks``,
    ``formats`` or ``rule_types``.  The OpenAPI document lists them as its ``enum``."""
    return {"x-installed": what}


class RequestModel(_InputModel):
    model_config = ConfigDict(extra="forbid")


class QueryModel(_InputModel):
    """Query-string parameters: unknown ones are ignored (cache busters and the like)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# -- errors ----------------------------------------------------------------------------
class ErrorDetail(_Schema):
    code: str = Field(description="Stable machine-readable code, e.g. `invalid`, `not_found`.")
    message: str = Field(description="Human-readable; never contains a credential value.")
    field: str | None = Field(
        default=None, description="Dotted name of the offending field or parameter, if any."
    )


class ErrorOut(_Schema):
    """Every error answer (4xx and 5xx) has this shape."""

    error: ErrorDetail


# -- source kinds ----------------------------------------------------------------------
class FieldOut(_Schema):
    """One field of a source's credentials or options, as an "add" form draws it."""

    name: str
    label: str
    required: bool
    secret: bool = Field(description="Write-only: the API never returns its value.")
    description: str
    default: Any = None
    type: str


class CadenceOut(_Schema):
    active_seconds: float
    quiet_seconds: float | None
    active_window_seconds: float
    adaptive: bool


class KindOut(_Schema):
    kind: str
    title: str
    group: str
    description: str
    plugin: str | None = Field(description="The plugin that registered the kind.")
    supports_browse: bool = Field(
        description="Whether remote devices can be listed and imported; "
        "when false, the browse and import routes answer 400 `not_supported`."
    )
    cadence: CadenceOut
    credentials: list[FieldOut]
    options: list[FieldOut]


class KindList(_Schema):
    kinds: list[KindOut]


# -- connections -----------------------------------------------------------------------
class CredentialState(_Schema):
    """What the API shows of one saved credential field.

    Secret fields only say whether they are set; non-secret ones also carry the value.
    """

    set: bool
    secret: bool
    value: Any = None


CONNECTION_STATES = (
    "new (not polled yet), idle (no device to poll: import some), ok, failing (backing off), "
    "rate_limited, needs_reauth (credentials rejected: not polled until they change), "
    "bad_config (not polled until edited) or disabled."
)


class ConnectionOut(_Schema):
    id: int
    client_id: int
    kind: str
    label: str
    enabled: bool
    credentials: dict[str, CredentialState]
    options: dict[str, Any]
    state: str = Field(description=CONNECTION_STATES)
    state_message: str | None = Field(
        description="Why the connection is in its state, in words (e.g. why it is idle)."
    )
    last_error: str | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    positions_received: int
    created_at: datetime
    updated_at: datetime


class ConnectionList(_Schema):
    connections: list[ConnectionOut]


Label = Annotated[str, Field(min_length=1, max_length=200)]
Tag = Annotated[str, Field(min_length=1, max_length=100)]


class ConnectionCreate(RequestModel):
    client_id: int | None = Field(
        default=None,
        description="Required for the system administrator; a client's users may omit it.",
    )
    kind: str = Field(
        max_length=100,
        description="A kind from `GET /api/source-kinds`.",
        json_schema_extra=installed("sources"),
    )
    label: Label
    credentials: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class ConnectionUpdate(RequestModel):
    """Fields to change.  ``credentials`` and ``options`` are merged into the saved ones:
    a field left out keeps its saved value (so a form need not resend the password)."""

    label: Label | None = None
    credentials: dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    enabled: bool | None = None


class ConnectionTest(RequestModel):
    """An unsaved connection to test."""

    kind: str = Field(max_length=100, json_schema_extra=installed("sources"))
    credentials: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


class SavedConnectionTest(RequestModel):
    """Optional overrides merged into the saved connection for this test only."""

    credentials: dict[str, Any] | None = None
    options: dict[str, Any] | None = None


class TestOutcome(_Schema):
    """The answer of a connection test; a failed test is a normal (200) answer."""

    ok: bool
    summary: str | None = Field(default=None, description="The source's summary when ok.")
    error: ErrorDetail | None = Field(
        default=None,
        description="When not ok: code `invalid_auth` (with `field` when the source names "
        "the refused credential), `cannot_connect`, `bad_config` (with `field`), `rate_limited`, `update_failed`, `not_supported` or `source_error`.",
    )


class ConnectionStatus(_Schema):
    connection_id: int
    client_id: int
    label: str
    kind: str
    enabled: bool
    running: bool = Field(description="Whether a runner is polling the connection now.")
    state: str = Field(description=CONNECTION_STATES)
    state_message: str | None = Field(
        description="Why the connection is in its state, in words (e.g. why it is idle)."
    )
    last_poll_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    last_error: str | None
    positions_received: int
    devices: int


class StatusList(_Schema):
    connections: list[ConnectionStatus]


class RemoteDeviceOut(_Schema):
    upstream_id: str
    name: str
    imei: str | None
    license_plate: str | None
    imported_as: int | None = Field(description="The hub device linked to it, if imported.")


class RemoteDeviceList(_Schema):
    devices: list[RemoteDeviceOut]


class ImportRequest(RequestModel):
    upstream_ids: list[str] | None = Field(
        default=None, description="The remote devices to import; omitted: all of them."
    )


# -- devices ---------------------------------------------------------------------------
def _check_remote_id(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not REMOTE_ID_RE.match(value):
        raise ValueError(REMOTE_ID_RULE)
    return value


CounterSourceName = Literal["hub", "platform"]
ODOMETER_SOURCE = (
    "Where the system odometer (`odometer_km`) comes from: `hub`, the distance between "
    "fixes (default), or `platform`, the platform's reading "
    "(`sensors.platform_odometer_km`, what the vehicle's dashboard or the platform shows) "
    "whenever a fix carries one, counting on from it in between."
)
HOURS_SOURCE = (
    "Where the system hour meter (`hours`) comes from: `hub`, the time with the ignition "
    "on (default), or `platform`, the platform's reading (`sensors.platform_engine_hours`)."
)


class DeviceOut(_Schema):
    id: int
    client_id: int
    name: str
    license_plate: str | None
    imei: str | None
    remote_id: str | None
    tags: list[str]
    driver: str | None
    connection_id: int | None
    upstream_id: str | None
    last_fix_time: datetime | None
    last_seen_at: datetime | None = Field(description="When its newest fix arrived.")
    status: str = Field(description="online, offline or unknown (never heard from).")
    status_at: datetime | None
    offline_timeout_s: int | None = Field(description="null: the hub's default (600 s).")
    odometer_offset_km: float = Field(description="Virtual odometer minus the system one.")
    hours_offset: float = Field(description="Virtual hour meter minus the system one.")
    odometer_source: CounterSourceName = Field(description=ODOMETER_SOURCE)
    hours_source: CounterSourceName = Field(description=HOURS_SOURCE)
    created_at: datetime
    updated_at: datetime


class DeviceList(_Schema):
    devices: list[DeviceOut]


class _DeviceFields(RequestModel):
    license_plate: str | None = Field(default=None, max_length=50)
    imei: str | None = Field(default=None, max_length=50)
    remote_id: str | None = Field(
        default=None,
        max_length=100,
        description=f"Unique per client; {REMOTE_ID_RULE}.",
        json_schema_extra={"pattern": "^[A-Za-z0-9\\-_():]*$"},
    )
    tags: list[Tag] | None = None
    driver: str | None = Field(default=None, max_length=200)
    connection_id: int | None = None
    upstream_id: str | None = Field(default=None, min_length=1, max_length=200)
    offline_timeout_s: int | None = Field(
        default=None, ge=30, description="Seconds of silence before offline; null: the default."
    )
    odometer_source: CounterSourceName | None = Field(default=None, description=ODOMETER_SOURCE)
    hours_source: CounterSourceName | None = Field(default=None, description=HOURS_SOURCE)

    @field_validator("remote_id")
    @classmethod
    def _remote_id(cls, value: str | None) -> str | None:
        return _check_remote_id(value)


class DeviceCreate(_DeviceFields):
    client_id: int | None = Field(
        default=None,
        description="Required for the system administrator; a client's users may omit it.",
    )
    name: Label


class DeviceUpdate(_DeviceFields):
    """Only the fields given are changed; ``null`` clears an optional field."""

    name: Label = Field(default=None, description="May be left out; never null.")


class CountersUpdate(RequestModel):
    """Set the device's virtual odometer and hour meter to these values from now on."""

    odometer_km: float | None = Field(default=None, ge=0)
    hours: float | None = Field(default=None, ge=0)


class ImportOutcome(_Schema):
    created: int
    existing: int
    devices: list[DeviceOut]


# -- positions -------------------------------------------------------------------------
class PositionOut(_Schema):
    """A stored position, as the API and the live feed show it (times in UTC, ``Z``)."""

    id: int
    device_id: int
    connection_id: int | None
    fix_time: datetime
    server_time: datetime
    lat: float
    lon: float
    altitude_m: float | None
    speed_kmh: float | None
    course_deg: float | None
    satellites: int | None
    valid: bool
    ignition: bool | None
    accuracy_m: float | None
    sensors: dict[str, Any]
    source_ip: str | None
    source_port: int | None
    event_code: int = Field(
        description="0 moving, 1 stopped, 2 ignition off, 3 ignition on, 4 entered a "
        "geofence, 5 left a geofence, 6 back online, 7 invalid fix."
    )
    odometer_km: float | None = Field(description="System odometer (not user-editable).")
    virtual_odometer_km: float | None
    hours: float | None = Field(description="System hour meter: hours with the ignition on.")
    virtual_hours: float | None
    poi_ids: list[int] = Field(description="Geofences containing the position.")
    poi_group_ids: list[int]
    place: str | None
    alerts_count: int


class PositionPage(_Schema):
    positions: list[PositionOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class SincePage(PositionPage):
    resume_cursor: str | None = Field(
        description="The cursor after the last position answered: pass it later to get "
        "only newer ones (ordered by fix time: a fix that arrives late with an older fix "
        "time than the cursor is not seen this way)."
    )


class DeviceLabel(_Schema):
    """What a dashboard shows of a device next to its position."""

    id: int
    client_id: int
    name: str
    license_plate: str | None
    remote_id: str | None
    driver: str | None
    tags: list[str]
    status: str = Field(description="online, offline or unknown (never heard from).")
    status_at: datetime | None = Field(description="Since when it has had that status.")
    offline_timeout_s: int = Field(
        description="Seconds after its newest fix the device is `offline` on a map (its "
        "own setting or the hub's default)."
    )


MapStatusName = Literal["moving", "stopped", "ignition_off", "offline", "no_data"]
MAP_STATUS_TEXT = "The device's status on a map, from its newest position (see the rule)."


class LatestPosition(PositionOut):
    device: DeviceLabel
    status: MapStatusName = Field(description=MAP_STATUS_TEXT)


class LatestList(_Schema):
    positions: list[LatestPosition] = Field(
        description="One per device that has a position, by device id, each with its `device`."
    )


class LatestOne(_Schema):
    device_id: int
    device: DeviceLabel
    position: PositionOut | None = Field(description="null while the device has no position.")
    status: MapStatusName = Field(description=MAP_STATUS_TEXT)


class StatusSummaryQuery(QueryModel):
    client_id: int | None = Field(
        default=None, description="Administrator: one client's devices; others: their own."
    )
    connection_id: int | None = Field(default=None, description="Only this connection's.")
    tag: Tag | None = Field(default=None, description="Only devices with this tag.")


class StatusSummary(_Schema):
    total: int = Field(description="Devices counted.")
    counts: dict[MapStatusName, int] = Field(
        description="Devices by map status; every status is present, 0 when none."
    )
    at: datetime = Field(description="The time the statuses were computed for.")


class HistoryQuery(QueryModel):
    start: TimeParam | None = Field(
        default=None, alias="from", description=f"Fix time, {TIME_TEXT}; inclusive."
    )
    end: TimeParam | None = Field(
        default=None, alias="to", description=f"Fix time, {TIME_TEXT}; exclusive."
    )
    limit: int = Field(default=1000, ge=1, le=10000, description="Page size (json only).")
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page.")
    format: Literal["json", "csv", "geojson", "gpx"] = Field(
        default="json",
        description="csv, geojson and gpx (GPX 1.1) stream the whole range as a download.",
    )


class StopsQuery(QueryModel):
    start: TimeParam | None = Field(
        default=None,
        alias="from",
        description=f"Fix time, {TIME_TEXT}; inclusive; default: a day before `to`.",
    )
    end: TimeParam | None = Field(
        default=None, alias="to", description=f"Fix time, {TIME_TEXT}; exclusive; default: now."
    )
    min_stop_s: int = Field(
        default=300, ge=30, le=86_400, description="The shortest stop, in seconds."
    )


class StopOut(_Schema):
    start: datetime
    end: datetime = Field(description="When the device was first seen to have left.")
    duration_s: float
    lat: float = Field(description="The mean of its fixes.")
    lon: float
    place: str | None
    geofence_ids: list[int] = Field(description="Geofences any of its fixes was in.")
    positions: int
    open_start: bool = Field(description="It was already on at the range's first fix.")
    open_end: bool = Field(
        description="It was still on at the range's last fix: it ends at `to` or now."
    )


class TripOut(_Schema):
    start: datetime
    end: datetime
    duration_s: float
    start_lat: float
    start_lon: float
    end_lat: float
    end_lon: float
    distance_km: float
    max_speed_kmh: float | None = Field(description="The highest speed a fix reported.")
    avg_speed_kmh: float | None
    positions: int
    open_start: bool = Field(description="The range begins with it.")
    open_end: bool = Field(description="The range ends with it.")


class StopsOut(_Schema):
    device_id: int
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    min_stop_s: int
    stops: list[StopOut]
    trips: list[TripOut]


class SinceQuery(QueryModel):
    since: TimeParam | None = Field(
        default=None, description=f"Fix time, {TIME_TEXT}; required without `cursor`."
    )
    cursor: str | None = None
    limit: int = Field(default=1000, ge=1, le=10000)
    client_id: int | None = Field(
        default=None, description="Administrator only: one client's devices."
    )


class ClientFilter(QueryModel):
    client_id: int | None = Field(
        default=None, description="Administrator: one client's objects; others: their own."
    )


class DeviceFilter(ClientFilter):
    connection_id: int | None = None


# -- tenancy ---------------------------------------------------------------------------
POSITIONS_RETENTION = (
    "Days of position history kept, by fix time; `null` keeps it forever. Older positions "
    "are deleted in the background, except each device's latest and those a sink has yet "
    "to deliver."
)
ALERTS_RETENTION = "Days of alerts kept, by fix time; `null` keeps them forever."
RetentionDays = Annotated[int, Field(ge=1, le=MAX_RETENTION_DAYS, strict=True)]


class ClientOut(_Schema):
    id: int
    name: str
    timezone: str = Field(description="IANA zone in which rule schedules are read.")
    positions_retention_days: int | None = Field(description=POSITIONS_RETENTION)
    alerts_retention_days: int | None = Field(description=ALERTS_RETENTION)
    created_at: datetime


class ClientList(_Schema):
    clients: list[ClientOut]


class ClientCreate(RequestModel):
    name: Label
    positions_retention_days: RetentionDays | None = Field(
        default=None, description=POSITIONS_RETENTION
    )
    alerts_retention_days: RetentionDays | None = Field(default=None, description=ALERTS_RETENTION)


TimeZone = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(iana_zones())})]
"""An IANA zone name; the store checks it (``hub.rule_store.check_timezone``)."""


class ClientUpdate(RequestModel):
    """Only the fields given are changed (a retention of `null` keeps rows forever)."""

    name: Label | None = None
    timezone: TimeZone | None = Field(
        default=None, description="IANA time zone, e.g. `America/Guatemala`."
    )
    positions_retention_days: RetentionDays | None = Field(
        default=None, description=POSITIONS_RETENTION
    )
    alerts_retention_days: RetentionDays | None = Field(default=None, description=ALERTS_RETENTION)

    def changes(self) -> dict[str, Any]:
        """The fields to change: those given, and a retention given as `null`."""
        out = self.model_dump(exclude_none=True)
        for name in ("positions_retention_days", "alerts_retention_days"):
            if name in self.model_fields_set:
                out[name] = getattr(self, name)
        return out


class UserOut(_Schema):
    id: int
    client_id: int | None
    name: str
    role: str
    created_at: datetime
    has_password: bool = Field(
        default=False, description="Whether the user can sign in with a password."
    )


class UserList(_Schema):
    users: list[UserOut]


_PASSWORD = {"format": "password", "writeOnly": True}


class UserCreate(RequestModel):
    name: Label
    role: Literal["admin", "manager", "viewer"] = "viewer"
    client_id: int | None = Field(
        default=None,
        description="The administrator names the client (or none for another "
        "administrator); a manager may omit it: its own client.",
    )
    password: str | None = Field(
        default=None,
        description="Its first password (10 to 1024 characters), so it can sign in to the "
        "dashboard at once; without one it has none until `PUT /api/users/{id}/password`.",
        min_length=10,
        max_length=1024,
        json_schema_extra=_PASSWORD,
    )


class UserUpdate(RequestModel):
    name: Label | None = None
    role: Literal["manager", "viewer"] | None = Field(
        default=None,
        description="A client's user is a manager or a viewer; a change closes the user's "
        "live sockets (4003).",
    )


class TokenOut(_Schema):
    id: int
    user_id: int
    name: str
    prefix: str = Field(description="The first characters of the token, to recognise it.")
    scope: str = Field(
        default="all",
        description='"all": whatever its user may do; "metrics": only read /metrics.',
    )
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None = Field(
        description="When the token stops working (it then answers 401); null: never."
    )


class TokenList(_Schema):
    tokens: list[TokenOut]


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown this once, never again.")


class TokenCreate(RequestModel):
    name: str = Field(default="", max_length=200)
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="When the token stops working: a time in the future, with its time "
        "zone (e.g. `2027-01-01T00:00:00Z`). Default: never.",
    )
    user_id: int | None = Field(
        default=None,
        description="Whose token: yourself by default; a manager may name a user of its "
        "client, the administrator anybody.",
    )
    scope: Literal["all", "metrics"] = Field(
        default="all",
        description='"metrics": a token that may only read /metrics (for a Prometheus '
        "server); only the system administrator may have one.",
    )


class TokenFilter(QueryModel):
    user_id: int | None = None


class Me(_Schema):
    user: UserOut
    token_id: int | None = Field(description="The token of the request; `null` for a session.")
    client: ClientOut | None
    can_write: bool
    is_admin: bool


# -- passwords and browser sessions ---------------------------------------------------


class PasswordSet(RequestModel):
    password: str = Field(
        description="The new password: 10 to 1024 characters.",
        min_length=10,
        max_length=1024,
        json_schema_extra=_PASSWORD,
    )


class PasswordChange(RequestModel):
    current_password: str | None = Field(
        default=None,
        description="Your password now; may be left out only while you have none.",
        json_schema_extra=_PASSWORD,
    )
    password: str = Field(
        description="The new password: 10 to 1024 characters.",
        min_length=10,
        max_length=1024,
        json_schema_extra=_PASSWORD,
    )


class SignIn(RequestModel):
    name: str = Field(description="The user's name.")
    password: str = Field(json_schema_extra=_PASSWORD)
    client: str | None = Field(
        default=None,
        description="The user's client (its name, or its id as digits).  Needed only when "
        "the name and password fit users of several clients (answered 422 naming this "
        "field); leave it out for a system administrator.",
    )


class SessionOut(_Schema):
    user: UserOut
    client: ClientOut | None
    can_write: bool
    is_admin: bool
    csrf_token: str = Field(
        description="Send it as `X-CSRF-Token` with every write made with the session cookie."
    )
    expires_at: datetime = Field(description="When the session ends whatever happens.")
    idle_timeout_s: int = Field(
        description="The session ends after this many seconds without a request."
    )


# -- geofences, groups, rules and alerts ----------------------------------------------
class GeofenceFeature(_Schema):
    """A geofence as a GeoJSON Feature: ``Point`` + ``properties.radius_m`` (circle),
    ``Polygon`` or ``LineString`` + ``properties.width_m`` (corridor)."""

    type: Literal["Feature"] = "Feature"
    id: int
    geometry: dict[str, Any]
    properties: dict[str, Any] = Field(
        description="name, contact, kind, group_ids, client_id, radius_m / width_m, "
        "created_at, updated_at."
    )


class GeofenceCollection(_Schema):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[GeofenceFeature]


class GeofenceCreate(RequestModel):
    """A GeoJSON Feature; ``properties``: name, contact, radius_m | width_m, group_ids."""

    type: Literal["Feature"] = "Feature"
    id: int | str | None = Field(default=None, description="Ignored: the hub assigns ids.")
    geometry: dict[str, Any]
    properties: dict[str, Any] = Field(default_factory=dict)
    client_id: int | None = Field(
        default=None,
        description="Required for the system administrator; a client's users may omit it.",
    )


class GeofenceUpdate(RequestModel):
    """Only what is given changes: the geometry, and the properties named."""

    type: Literal["Feature"] = "Feature"
    id: int | str | None = Field(default=None, description="Ignored.")
    geometry: dict[str, Any] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class GeofenceImport(RequestModel):
    """A GeoJSON FeatureCollection of geofences, created all or nothing."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Any]
    client_id: int | None = Field(
        default=None,
        description="Required for the system administrator; a client's users may omit it.",
    )


class GroupOut(_Schema):
    id: int
    client_id: int
    name: str
    created_at: datetime


class GroupList(_Schema):
    groups: list[GroupOut]


class GroupCreate(RequestModel):
    name: Label
    client_id: int | None = Field(
        default=None,
        description="Required for the system administrator; a client's users may omit it.",
    )


class RuleTypeOut(_Schema):
    name: str
    message_id: str = Field(description="The `message_id` of the alerts this type raises.")
    description: str
    params: dict[str, Any] = Field(description="JSON schema of the type's `params`.")


class RuleTypeList(_Schema):
    types: list[RuleTypeOut]


class RuleOut(_Schema):
    id: int
    client_id: int
    owner_id: int | None
    owner_name: str
    name: str
    type: str
    params: dict[str, Any]
    device_ids: list[int] | None
    tags: list[str] | None
    schedule: dict[str, Any] | None
    enabled: bool
    webhook: bool
    created_at: datetime
    updated_at: datetime


class RuleList(_Schema):
    rules: list[RuleOut]


_SCHEDULE = (
    'Weekly windows in the client\'s time zone, e.g. `{"windows": [{"days": [0, 1, 2, 3, 4], '
    '"start": "08:00", "end": "18:00"}]}` (0 = Monday); `null`: always.'
)


class RuleCreate(RequestModel):
    client_id: int | None = Field(
        default=None,
        description="Required for the system administrator; a client's users may omit it.",
    )
    name: Label
    type: str = Field(
        description="One of `GET /api/rule-types`.", json_schema_extra=installed("rule_types")
    )
    params: dict[str, Any] | None = None
    device_ids: list[int] | None = Field(default=None, description="`null`: not by device.")
    tags: list[Tag] | None = Field(default=None, description="`null`: not by tag.")
    schedule: dict[str, Any] | None = Field(default=None, description=_SCHEDULE)
    enabled: bool = True
    webhook: bool = Field(
        default=False,
        description="Send its alerts to the client's alerts webhook (which must exist).",
    )


class RuleUpdate(RequestModel):
    """Only the fields given are changed (those that cannot be null may be left out);
    a new ``type`` needs its ``params``."""

    name: Label = Field(default=None)
    type: str = Field(default=None, json_schema_extra=installed("rule_types"))
    params: dict[str, Any] | None = None
    device_ids: list[int] | None = None
    tags: list[Tag] | None = None
    schedule: dict[str, Any] | None = Field(default=None, description=_SCHEDULE)
    enabled: bool = Field(default=None)
    webhook: bool = Field(default=None)


class AlertQuery(QueryModel):
    client_id: int | None = Field(
        default=None, description="Administrator: one client's alerts; others: their own."
    )
    device_id: int | None = None
    rule_id: int | None = None
    start: TimeParam | None = Field(
        default=None, alias="from", description=f"Fix time, {TIME_TEXT}; inclusive."
    )
    end: TimeParam | None = Field(
        default=None, alias="to", description=f"Fix time, {TIME_TEXT}; exclusive."
    )
    after_id: int | None = Field(default=None, description="`next_after_id` of the last page.")
    before_id: int | None = Field(
        default=None, description="Only older alerts: `next_before_id` of the last page."
    )
    order: Literal["asc", "desc"] = Field(
        default="asc", description="`asc`: oldest first; `desc`: newest first."
    )
    limit: int = Field(default=1000, ge=1, le=10000)


class AlertOut(_Schema):
    """An alert, as the API, the live feed (``alert`` messages) and the ``gpshub-alert``
    webhook format show it.  Type-specific fields are present only for their types."""

    model_config = ConfigDict(extra="allow")

    id: int
    client_id: int
    device_id: int
    rule_id: int | None = Field(description="The rule that fired (it may since be deleted).")
    message_id: str = Field(description="What happened: the rule type, e.g. `enteredPoi`.")
    rule_name: str
    owner_id: int | None = Field(description="The rule's owner, who gets the alert.")
    owner_name: str
    vehicle: str = Field(description="The device's name, and its plate in parentheses.")
    device_tags: list[str]
    driver: str
    fix_time: datetime = Field(
        description="The fix that raised it (for `offline`: when the device went offline)."
    )
    lat: float
    lon: float
    place: str
    virtual_odometer_km: float | None
    virtual_hours: float | None
    event: str | None = Field(default=None, description="The rule type's description.")
    poi_contact: str | None = Field(default=None, description="The first POI's contact.")
    poi_id: int | None = Field(default=None, description="POI and distance rules.")
    poi_name: str | None = None
    poi_ids: list[int] | None = Field(default=None, description="POI rules: every POI.")
    poi_names: list[str] | None = None
    poi_group_ids: list[int] | None = None
    meters_from_poi: float | None = Field(
        default=None, description="`isNotAt-dist`: metres from the POI."
    )
    distance_from_poi: str | None = Field(
        default=None, description="`isNotAt-dist`: the same as text, e.g. `1211 m`."
    )
    started_at: datetime | None = Field(
        default=None, description="Conditions (distance, overspeed, sensor): since when true."
    )
    speed_kmh: float | None = Field(default=None, description="`overspeed`.")
    limit_kmh: float | None = Field(default=None, description="`overspeed`.")
    sensor: str | None = Field(default=None, description="`sensor`: its name.")
    value: Any = Field(default=None, description="`sensor`: the value that was compared.")
    op: str | None = Field(default=None, description="`sensor`.")
    threshold: Any = Field(default=None, description="`sensor`: the rule's value.")


class AlertPage(_Schema):
    alerts: list[AlertOut] = Field(
        description="Alerts by id, oldest first (`order=desc`: newest first)."
    )
    next_after_id: int | None = Field(
        description="Pass as `after_id` to get newer alerts (the newest alert's id; the given "
        "`after_id` when there were none)."
    )
    next_before_id: int | None = Field(
        description="Pass as `before_id` to get older alerts (the oldest alert's id; the "
        "given `before_id` when there were none)."
    )


# -- health ----------------------------------------------------------------------------
class Health(_Schema):
    status: str


class Readiness(_Schema):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]


# -- the cluster -----------------------------------------------------------------------
class ClusterLeaseOut(_Schema):
    resource: str = Field(description='"connection:<id>", "sink:<id>" or "maintenance"')
    expires_at: datetime | None = Field(
        description="when the lease expires unless renewed; null on SQLite (one process)"
    )


class ClusterNodeOut(_Schema):
    node_id: str = Field(description="random, made when the process started")
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    alive: bool = Field(description="its heartbeat is younger than the lease time")
    this: bool = Field(description="the process answering this request")
    leases: list[ClusterLeaseOut]


class ClusterOut(_Schema):
    shared: bool = Field(
        description="several processes share the database (PostgreSQL); false on SQLite"
    )
    lease_s: float = Field(description="the lease time: a dead process's work moves after it")
    nodes: list[ClusterNodeOut]


# -- sinks -----------------------------------------------------------------------------
class SinkFormatOut(_Schema):
    kind: str
    title: str
    purpose: str = Field(description="`locations` or `alerts`.")
    max_batch: int = Field(description="How many items one request may carry.")
    options: dict[str, Any] = Field(description="JSON Schema of the format's `format_options`.")


class SinkKindOut(_Schema):
    kind: str
    title: str
    purpose: str | None = Field(
        description="`locations`, `alerts`, or null: what its format encodes."
    )
    default_format: str | None = Field(description="Used when a sink gives no `format`.")
    settings: dict[str, Any] = Field(description="JSON Schema of the sink's `settings`.")
    formats: list[SinkFormatOut] = Field(description="The formats this kind accepts.")


class SinkKindList(_Schema):
    kinds: list[SinkKindOut]


class SinkStats(_Schema):
    pending: int = Field(description="Messages waiting (new, queued or being retried).")
    delivered: int = Field(description="Items delivered so far.")
    failed: int = Field(
        description="Requests that failed so far: retried failures and refusals (4xx)."
    )
    dead_letters: int


class SinkOut(_Schema):
    """A sink.  Its custom header values and signing secrets are write-only."""

    id: int
    client_id: int
    name: str
    kind: str
    format: str
    purpose: str = Field(description="`locations` (a location relay) or `alerts`.")
    settings: dict[str, Any]
    format_options: dict[str, Any]
    headers: list[str] = Field(description="The names of its custom headers (never values).")
    signing: bool = Field(description="Whether requests carry a `webhook-signature`.")
    enabled: bool
    state: str = Field(
        description="`new` (nothing sent yet), `ok` (the last request succeeded), "
        "`retrying` (requests fail since the last success, or the receiver is down), "
        "`failing` (they have failed for longer than `failing_after_s`) or `paused`."
    )
    failing_after_s: int | None = Field(description="null: the hub's default.")
    failing_since: datetime | None
    next_probe_at: datetime | None = Field(
        description="While the receiver is down (the hub only probes it, one request at "
        "growing intervals): when it probes next; null while it delivers."
    )
    last_error: str | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    created_at: datetime
    updated_at: datetime
    stats: SinkStats


class SinkSaved(SinkOut):
    """A sink just created or changed, with its new signing secret if one was made."""

    signing_secret: str | None = Field(
        description="The new Standard Webhooks secret (`whsec_…`): shown this once, never "
        "again; null when none was made."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="What the hub found that the receiver should know (a location relay's "
        "format naming devices it cannot identify by their IMEI, say); empty when nothing.",
    )


class SinkList(_Schema):
    sinks: list[SinkOut]


_HEADERS = (
    "Custom request headers, `{name: value}` (e.g. `Authorization`), at most 20, none "
    "that the hub sets itself (`Content-Type`, `Host`, `webhook-*`, hop-by-hop ones); "
    "write-only: stored encrypted, only their names are shown."
)
Headers = Annotated[
    dict[str, str],
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_HEADERS,
            "propertyNames": {
                "pattern": r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$",
                "maxLength": MAX_HEADER_NAME,
            },
            "additionalProperties": {
                "type": "string",
                "pattern": r"^[\t\u0020-\u007e]*$",
                "maxLength": MAX_HEADER_VALUE,
            },
        }
    ),
]
"""Checked by ``hub.sink_config.checked_headers``; the schema states the same."""
_FAILING = "Seconds of continuous failure before the sink is marked failing; null: the default."


class SinkCreate(RequestModel):
    client_id: int | None = Field(
        default=None,
        description="Required for the system administrator; a client's manager may omit it.",
    )
    name: Label
    kind: str = Field(
        max_length=100,
        description="A kind from `GET /api/sink-kinds`.",
        json_schema_extra=installed("sinks"),
    )
    format: str | None = Field(
        default=None,
        max_length=100,
        description="One of the kind's formats; default: its own.",
        json_schema_extra=installed("formats"),
    )
    settings: dict[str, Any] = Field(default_factory=dict)
    format_options: dict[str, Any] | None = None
    headers: Headers | None = Field(default=None, description=_HEADERS)
    signing: bool = Field(
        default=False,
        description="Sign requests (Standard Webhooks): the secret is in this answer only.",
    )
    enabled: bool = True
    failing_after_s: int | None = Field(default=None, ge=60, le=30 * 86400, description=_FAILING)


class SinkUpdate(RequestModel):
    """Only the fields given are changed."""

    name: Label | None = None
    format: str | None = Field(default=None, max_length=100, json_schema_extra=installed("formats"))
    settings: dict[str, Any] | None = Field(
        default=None,
        description="Merged key by key into the saved settings (`null` for a key removes it: "
        "its default applies); the result is validated as a whole.",
    )
    format_options: dict[str, Any] | None = Field(
        default=None,
        description="Replaced as a whole; when the format changes and none are given, the new "
        "format's defaults apply.",
    )
    headers: Headers | None = Field(
        default=None, description=_HEADERS + "  Replaced as a whole; `{}` removes them all."
    )
    signing: bool | None = Field(
        default=None,
        description="false: stop signing (the secrets are dropped); true on a sink that does "
        "not sign: a new secret, in this answer only.",
    )
    enabled: bool | None = None
    failing_after_s: int | None = Field(default=None, ge=60, le=30 * 86400, description=_FAILING)


class SigningSecret(_Schema):
    signing_secret: str = Field(description="The new secret: shown this once, never again.")


class DeadLetterOut(_Schema):
    id: int
    outbox_id: int
    device_id: int | None
    delivery_id: str = Field(description="The `webhook-id` of the request that failed.")
    attempts: int
    status: int | None = Field(description="HTTP status of the last answer, if any.")
    error: str
    excerpt: str = Field(description="The start of the receiver's answer.")
    created_at: datetime


class DeadLetterPage(_Schema):
    dead_letters: list[DeadLetterOut]
    next_after_id: int = Field(
        description="Pass as `after_id` for the next page (the given `after_id` when empty)."
    )


class DeadLetterQuery(QueryModel):
    after_id: int = Field(default=0, ge=0, description="`next_after_id` of the last page.")
    limit: int = Field(default=100, ge=1, le=1000)


class DeadLetterSelection(RequestModel):
    ids: list[int] | None = Field(
        default=None, max_length=10000, description="Dead letter ids; null or absent: all."
    )


class QueuedOut(_Schema):
    queued: int = Field(description="Messages queued for this sink.")


class DiscardedOut(_Schema):
    discarded: int


class ReplayRequest(RequestModel):
    start: TimeParam = Field(alias="from", description=f"Fix time, {TIME_TEXT}; inclusive.")
    end: TimeParam = Field(alias="to", description=f"Fix time, {TIME_TEXT}; exclusive.")
    device_ids: list[int] | None = Field(
        default=None, max_length=10000, description="The client's devices; null: all of them."
    )


# -- dashboard -------------------------------------------------------------------------
class DashboardSettings(_Schema):
    """The settings a dashboard page draws its map with."""

    map_tile_url: str | None = Field(
        description="Tile URL template (`{z}`, `{x}`, `{y}`; `{s}` may name subdomains); "
        "null: draw no tiles (a network without internet)."
    )
    map_tile_attribution: str = Field(
        description="The tiles' attribution, as HTML set by the hub's operator."
    )
    map_tile_max_zoom: int
    statuses: list[MapStatusName] = Field(description="Every map status, in rule order.")
    moving_kmh: float = Field(description="A fix with a speed above this is `moving`.")
    offline_timeout_s: int = Field(
        description="The hub's default offline timeout; each device's own is in its label."
    )
    min_stop_s: int = Field(description="The default `min_stop_s` of the stops endpoint.")
    stop_radius_m: float = Field(
        description="How far a fix may stray from a stop's first fix and still be in it."
    )
    stops_max_days: int = Field(description="The longest range the stops endpoint takes.")
    server_time: datetime = Field(description="The hub's clock when it answered.")
