"""The schema: SQLModel tables for tenants, access, connections, devices and positions.

The same classes are the schema Alembic migrates and the rows the management API reads.
The ingest hot path writes ``Position`` rows with SQLAlchemy Core (see ``hub.store``).
"""

from __future__ import annotations

import functools
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from hub.remote_ids import REMOTE_ID_RE as REMOTE_ID_RE  # re-exported
from hub.remote_ids import REMOTE_ID_RULE as REMOTE_ID_RULE
from hub.roles import Role

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MAX_RETENTION_DAYS = 36_500  # a client's positions_retention_days / alerts_retention_days


def utcnow() -> datetime:
    return datetime.now(UTC)


@functools.lru_cache(maxsize=16384)  # a batch formats the same times several times
def sqlite_timestamp(value: datetime) -> str:
    """How an aware datetime is kept in SQLite: naive UTC text that sorts correctly."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always stored and returned as aware UTC.

    PostgreSQL keeps it as ``timestamptz``.  SQLite keeps naive UTC text in SQLAlchemy's
    own format (``YYYY-MM-DD HH:MM:SS.ffffff``, which sorts correctly); we format and
    parse it with the C-level ``isoformat``/``fromisoformat`` because this type sits on
    the ingest hot path.  Naive datetimes are refused rather than guessed.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        if dialect.name == "sqlite":
            return sqlite_timestamp(value)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _JSON(TypeDecorator[Any]):
    """JSON, kept as JSONB on PostgreSQL: the same as ``sa.JSON().with_variant(JSONB(),
    "postgresql")`` without importing the PostgreSQL dialect where it is not used (a
    tenth of a second of every start on SQLite)."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(sa.JSON())


JSONType = _JSON()
BigID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


IDS_NEVER_REUSED: dict[str, Any] = {"sqlite_autoincrement": True}
"""The table option of every table whose ids leave the database: SQLite gives an id out
only once (AUTOINCREMENT; PostgreSQL's sequences do so anyway), so a deleted client,
device, rule… never lends its id to a newcomer (migration 0006).  A migration that
rebuilds one of these tables on SQLite must keep it (``batch_alter_table(...,
table_kwargs=IDS_NEVER_REUSED)``): reflection does not see it."""


def _ts(nullable: bool = True, **kw: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, **kw)


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class TokenScope(StrEnum):
    """What an API token may do (``ApiToken.scope``)."""

    ALL = "all"  # whatever its user's role allows
    METRICS = "metrics"  # only read /metrics (the administrator's tokens only)


class ConnectionState(StrEnum):
    NEW = "new"  # saved, not polled yet
    IDLE = "idle"  # nothing to poll: no device imported or linked yet
    OK = "ok"  # last poll succeeded
    FAILING = "failing"  # polls fail; backing off
    RATE_LIMITED = "rate_limited"
    NEEDS_REAUTH = "needs_reauth"  # credentials rejected; not polled until they change
    BAD_CONFIG = "bad_config"  # configuration unusable; not polled until edited
    DISABLED = "disabled"


class CounterSource(StrEnum):
    """Where a device's system odometer or hour meter comes from."""

    HUB = "hub"  # the hub's own count: distance between fixes, time with the ignition on
    PLATFORM = "platform"  # the platform's reading, when a fix carries one


class DeviceStatus(StrEnum):
    UNKNOWN = "unknown"  # never heard from
    ONLINE = "online"
    OFFLINE = "offline"  # nothing received for longer than its offline timeout


class Client(SQLModel, table=True):
    """A tenant: owns users, connections, devices, geofences and rules."""

    __tablename__ = "clients"
    __table_args__ = (IDS_NEVER_REUSED,)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    timezone: str = Field(default="UTC", max_length=64, sa_column_kwargs={"server_default": "UTC"})
    # bumped by every change to the client's geofences / rules: pipelines reload them
    geo_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    rules_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    devices_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # days of history kept (by fix time); None: kept forever (see hub.retention)
    positions_retention_days: int | None = None
    alerts_retention_days: int | None = None
    created_at: datetime = _created()


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (sa.UniqueConstraint("client_id", "name"), IDS_NEVER_REUSED)
    id: int | None = Field(default=None, primary_key=True)
    client_id: int | None = Field(
        default=None,
        sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")],
        index=True,
    )
    name: str = Field(max_length=200)
    role: str = Field(default=Role.MANAGER, max_length=20)
    # scrypt, self-describing (hub.passwords); None: the user cannot sign in with a password
    password_hash: str | None = Field(default=None, max_length=300)
    created_at: datetime = _created()


class BrowserSession(SQLModel, table=True):
    """A signed-in browser (hub.web.sessions): only the SHA-256 of its cookie is stored."""

    __tablename__ = "browser_sessions"
    __table_args__ = (IDS_NEVER_REUSED,)
    id: int | None = Field(default=None, primary_key=True)
    session_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(sa_column_args=[sa.ForeignKey("users.id", ondelete="CASCADE")], index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _created()
    last_seen_at: datetime = _created()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)  # absolute expiry
    user_agent: str = Field(default="", max_length=300)
    address: str = Field(default="", max_length=64)


class ApiToken(SQLModel, table=True):
    """A bearer token; only its SHA-256 hash is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (IDS_NEVER_REUSED,)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column_args=[sa.ForeignKey("users.id", ondelete="CASCADE")], index=True)
    name: str = Field(default="", max_length=200)
    prefix: str = Field(max_length=20)
    token_hash: str = Field(max_length=64, unique=True)
    # what the token may do: "all" (whatever its user's role allows) or "metrics" (an
    # administrator's token that may only read /metrics, for a Prometheus server)
    scope: str = Field(default="all", max_length=20, sa_column_kwargs={"server_default": "all"})
    created_at: datetime = _created()
    last_used_at: datetime | None = _ts()
    expires_at: datetime | None = _ts()  # when it stops working; None: never


class Connection(SQLModel, table=True):
    """One configured account on an upstream platform (a source instance)."""

    __tablename__ = "connections"
    __table_args__ = (IDS_NEVER_REUSED,)
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(
        sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")], index=True
    )
    kind: str = Field(max_length=100)
    label: str = Field(max_length=200)
    credentials: str = Field(default="", sa_type=sa.Text)  # Fernet ciphertext, bound to the row
    options: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    enabled: bool = True
    state: str = Field(default=ConnectionState.NEW, max_length=20)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    # why the connection is in its state, in words ("idle: no devices imported; …")
    state_message: str | None = Field(default=None, sa_type=sa.Text)
    last_poll_at: datetime | None = _ts()
    last_success_at: datetime | None = _ts()
    next_poll_at: datetime | None = _ts()
    positions_received: int = Field(default=0, sa_type=sa.BigInteger)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Device(SQLModel, table=True):
    __tablename__ = "devices"
    __table_args__ = (
        sa.UniqueConstraint("connection_id", "upstream_id"),
        sa.UniqueConstraint("client_id", "remote_id"),
        IDS_NEVER_REUSED,
    )
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(
        sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")], index=True
    )
    name: str = Field(max_length=200)
    license_plate: str | None = Field(default=None, max_length=50)
    imei: str | None = Field(default=None, max_length=50, index=True)
    remote_id: str | None = Field(default=None, max_length=100)
    tags: list[str] = Field(default_factory=list, sa_type=JSONType)
    driver: str | None = Field(default=None, max_length=200)
    connection_id: int | None = Field(
        default=None,
        sa_column_args=[sa.ForeignKey("connections.id", ondelete="SET NULL")],
        index=True,
    )
    upstream_id: str | None = Field(default=None, max_length=200)
    last_fix_time: datetime | None = _ts()  # newest fix stored: what "latest" points at
    last_seen_at: datetime | None = _ts()  # when the newest fix arrived (server time)
    status: str = Field(
        default=DeviceStatus.UNKNOWN, max_length=20, sa_column_kwargs={"server_default": "unknown"}
    )
    status_at: datetime | None = _ts()
    offline_timeout_s: int | None = None  # None: the hub's default
    odometer_offset_km: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    hours_offset: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    # where the system odometer / hour meter come from: the hub's own count, or the
    # platform's reading (``sensors.platform_odometer_km`` / ``platform_engine_hours``)
    odometer_source: str = Field(
        default=CounterSource.HUB, max_length=20, sa_column_kwargs={"server_default": "hub"}
    )
    hours_source: str = Field(
        default=CounterSource.HUB, max_length=20, sa_column_kwargs={"server_default": "hub"}
    )
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Position(SQLModel, table=True):
    """One stored fix. Unique per (device, fix time)."""

    __tablename__ = "positions"
    __table_args__ = (sa.UniqueConstraint("device_id", "fix_time"), IDS_NEVER_REUSED)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigID)
    device_id: int = Field(sa_column_args=[sa.ForeignKey("devices.id", ondelete="CASCADE")])
    connection_id: int | None = Field(default=None)
    fix_time: datetime = Field(sa_type=UTCDateTime, nullable=False)
    server_time: datetime = Field(sa_type=UTCDateTime, nullable=False)
    lat: float
    lon: float
    altitude_m: float | None = None
    speed_kmh: float | None = None
    course_deg: float | None = None
    satellites: int | None = None
    valid: bool = True
    ignition: bool | None = None
    accuracy_m: float | None = None
    sensors: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    raw: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    source_ip: str | None = Field(default=None, max_length=64)
    source_port: int | None = None
    # derived by the pipeline (hub.derive, hub.rules)
    event_code: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    odometer_km: float | None = None  # system odometer
    virtual_odometer_km: float | None = None
    hours: float | None = None  # system hour meter
    virtual_hours: float | None = None
    poi_ids: list[int] = Field(
        default_factory=list, sa_type=JSONType, sa_column_kwargs={"server_default": "[]"}
    )
    poi_group_ids: list[int] = Field(
        default_factory=list, sa_type=JSONType, sa_column_kwargs={"server_default": "[]"}
    )
    place: str | None = Field(default=None, sa_type=sa.Text)
    alerts_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class DeviceStateRow(SQLModel, table=True):
    """The derived state of a device (``hub.derive.DeviceState`` as JSON)."""

    __tablename__ = "device_state"
    device_id: int = Field(
        primary_key=True, sa_column_args=[sa.ForeignKey("devices.id", ondelete="CASCADE")]
    )
    state: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    updated_at: datetime = _created()


class Geofence(SQLModel, table=True):
    """A POI: a circle, polygon or corridor of a client, with a contact text."""

    __tablename__ = "geofences"
    __table_args__ = (IDS_NEVER_REUSED,)
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(
        sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")], index=True
    )
    name: str = Field(max_length=200)
    contact: str = Field(default="", sa_type=sa.Text)
    kind: str = Field(max_length=20)
    geometry: dict[str, Any] = Field(sa_type=JSONType)
    properties: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)  # radius_m, width_m
    created_at: datetime = _created()
    updated_at: datetime = _created()


class GeofenceGroup(SQLModel, table=True):
    __tablename__ = "geofence_groups"
    __table_args__ = (sa.UniqueConstraint("client_id", "name"), IDS_NEVER_REUSED)
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(
        sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")], index=True
    )
    name: str = Field(max_length=200)
    created_at: datetime = _created()


class GeofenceMembership(SQLModel, table=True):
    __tablename__ = "geofence_group_members"
    geofence_id: int = Field(
        primary_key=True, sa_column_args=[sa.ForeignKey("geofences.id", ondelete="CASCADE")]
    )
    group_id: int = Field(
        primary_key=True, sa_column_args=[sa.ForeignKey("geofence_groups.id", ondelete="CASCADE")]
    )


class AlertRule(SQLModel, table=True):
    """A client's alert rule, owned by a user (see ``hub.rules``)."""

    __tablename__ = "alert_rules"
    __table_args__ = (IDS_NEVER_REUSED,)
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(
        sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")], index=True
    )
    owner_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("users.id", ondelete="SET NULL")]
    )
    owner_name: str = Field(default="", max_length=200)  # kept when the owner is deleted
    name: str = Field(max_length=200)
    type: str = Field(max_length=40)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    device_ids: list[int] | None = Field(default=None, sa_type=JSONType)
    tags: list[str] | None = Field(default=None, sa_type=JSONType)
    schedule: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    enabled: bool = True
    webhook: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    """Its alerts go to the client's alerts webhook (which must be configured)."""
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Alert(SQLModel, table=True):
    """An alert a rule raised; ``payload`` is the whole alert object."""

    __tablename__ = "alerts"
    __table_args__ = (
        sa.Index("ix_alerts_device_id_fix_time", "device_id", "fix_time"),
        IDS_NEVER_REUSED,
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BigID)
    client_id: int = Field(
        sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")], index=True
    )
    device_id: int = Field(sa_column_args=[sa.ForeignKey("devices.id", ondelete="CASCADE")])
    rule_id: int | None = Field(
        default=None,
        sa_column_args=[sa.ForeignKey("alert_rules.id", ondelete="SET NULL")],
        index=True,
    )
    position_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    message_id: str = Field(max_length=40)
    fix_time: datetime = Field(sa_type=UTCDateTime, nullable=False)
    server_time: datetime = Field(sa_type=UTCDateTime, nullable=False)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)


class OutboxEntry(SQLModel, table=True):
    """What sinks deliver, written in the same transaction as what it reports.

    ``kind`` is ``location`` (``ref_id``: the position) or ``alert`` (``ref_id``: the
    alert; ``payload``: the alert object).  Every sink of the client with that purpose
    delivers it, or only ``sink_id`` when set (a replay or a re-sent dead letter).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_client_id_id", "client_id", "id"),
        # retention keeps the positions that messages still waiting here refer to
        sa.Index("ix_outbox_ref_id", "ref_id"),
        # ids only grow, even after the newest rows are pruned: sinks read by id
        IDS_NEVER_REUSED,
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BigID)
    client_id: int = Field(sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")])
    kind: str = Field(max_length=20)  # "location" | "alert"
    device_id: int | None = None
    ref_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    sink_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("sinks.id", ondelete="CASCADE")]
    )
    created_at: datetime = _created()


class SinkState(StrEnum):
    NEW = "new"  # nothing attempted yet
    OK = "ok"  # the last request succeeded
    RETRYING = "retrying"  # requests fail since the last success (or the receiver is down)
    FAILING = "failing"  # every request failed for longer than its failing period
    PAUSED = "paused"  # disabled by a user


class SinkRow(SQLModel, table=True):
    """A configured delivery target of a client: a location relay or its alerts webhook.

    ``cursor`` is the outbox id up to which every message for this sink is delivered,
    dead-lettered or kept in ``sink_pending``; ``inflight_upto`` is the last outbox id
    of a batch being sent (so a restart sends the same batch, with the same id).
    ``probe_at`` is set while the receiver is down: when the next probe is due, and
    ``probe_interval_s`` the interval that led to it (it doubles after a failed probe).
    """

    __tablename__ = "sinks"
    __table_args__ = (IDS_NEVER_REUSED,)
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(
        sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")], index=True
    )
    name: str = Field(max_length=200)
    kind: str = Field(max_length=100)
    format: str = Field(max_length=100)
    purpose: str = Field(max_length=20)  # "locations" | "alerts"
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    format_options: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    secrets: str = Field(default="", sa_type=sa.Text)  # Fernet: headers, signing secrets
    enabled: bool = True
    failing_after_s: int | None = None  # None: the hub's default
    cursor: int = Field(default=0, sa_type=sa.BigInteger)
    inflight_upto: int | None = Field(default=None, sa_type=sa.BigInteger)
    state: str = Field(default=SinkState.NEW, max_length=20)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    failing_since: datetime | None = _ts()
    last_attempt_at: datetime | None = _ts()
    last_success_at: datetime | None = _ts()
    delivered: int = Field(default=0, sa_type=sa.BigInteger)
    failed_attempts: int = Field(default=0, sa_type=sa.BigInteger)
    probe_at: datetime | None = _ts()
    probe_interval_s: float | None = None
    created_at: datetime = _created()
    updated_at: datetime = _created()


class SinkPending(SQLModel, table=True):
    """A message a sink still owes after a failure, or one queued behind it (same
    device, ``attempts`` 0): each device's messages go out in outbox order."""

    __tablename__ = "sink_pending"
    sink_id: int = Field(
        primary_key=True, sa_column_args=[sa.ForeignKey("sinks.id", ondelete="CASCADE")]
    )
    outbox_id: int = Field(primary_key=True, sa_type=sa.BigInteger)
    device_id: int | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = _ts()
    first_failed_at: datetime | None = _ts()
    delivery_id: str | None = Field(default=None, max_length=100)
    last_error: str | None = Field(default=None, sa_type=sa.Text)


class DeadLetter(SQLModel, table=True):
    """A message a receiver refused for good (or that exhausted its retries)."""

    __tablename__ = "dead_letters"
    __table_args__ = (sa.Index("ix_dead_letters_sink_id_id", "sink_id", "id"), IDS_NEVER_REUSED)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigID)
    sink_id: int = Field(sa_column_args=[sa.ForeignKey("sinks.id", ondelete="CASCADE")])
    outbox_id: int = Field(sa_type=sa.BigInteger)
    device_id: int | None = None
    delivery_id: str = Field(max_length=100)
    attempts: int = 0
    status: int | None = None  # the HTTP status of the last answer, if any
    error: str = Field(default="", sa_type=sa.Text)
    excerpt: str = Field(default="", sa_type=sa.Text)  # the start of the answer's body
    created_at: datetime = _created()


HUB_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case
HUB_ID_LENGTH = 12  # 60 random bits


def new_hub_id() -> str:
    """A random id for one hub installation (its database)."""
    return "".join(secrets.choice(HUB_ID_ALPHABET) for _ in range(HUB_ID_LENGTH))


class HubMeta(SQLModel, table=True):
    """Facts about this hub's database, by key: ``hub_id`` (see ``new_hub_id``), made
    when the database is created and never changed; it is in every ``webhook-id``."""

    __tablename__ = "hub_meta"
    key: str = Field(primary_key=True, max_length=50)
    value: str = Field(sa_type=sa.Text)


class SourceCursor(SQLModel, table=True):
    """Where polling of one device stands; committed with the positions it covers."""

    __tablename__ = "source_cursors"
    device_id: int = Field(
        primary_key=True, sa_column_args=[sa.ForeignKey("devices.id", ondelete="CASCADE")]
    )
    connection_id: int = Field(
        sa_column_args=[sa.ForeignKey("connections.id", ondelete="CASCADE")], index=True
    )
    last_fix_time: datetime | None = _ts()
    state: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    updated_at: datetime = _created()


class PluginState(SQLModel, table=True):
    """A plugin's private key-value state per connection; values are encrypted."""

    __tablename__ = "plugin_state"
    connection_id: int = Field(
        primary_key=True, sa_column_args=[sa.ForeignKey("connections.id", ondelete="CASCADE")]
    )
    key: str = Field(primary_key=True, max_length=200)
    value: str = Field(sa_type=sa.Text)
    updated_at: datetime = _created()


class ChangeLogRow(SQLModel, table=True):
    """One change to what running hubs act on, written in the transaction that makes it
    (see ``hub.changes``).  Ids only grow, even after old rows are pruned."""

    __tablename__ = "change_log"
    __table_args__ = ({"sqlite_autoincrement": True},)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigID)
    kind: str = Field(max_length=20)  # a ``hub.changes.ChangeKind``
    op: str = Field(max_length=20)  # a ``hub.changes.ChangeOp``
    object_id: int | None = Field(default=None, sa_type=sa.BigInteger)  # None: several
    client_id: int | None = None  # no foreign key: the client may be gone
    created_at: datetime = _created()


class ClusterNode(SQLModel, table=True):
    """A running hub process on PostgreSQL, renewed every round (``hub.cluster``); one
    whose heartbeat is older than the lease time is dead."""

    __tablename__ = "cluster_nodes"
    node_id: str = Field(primary_key=True, max_length=40)
    host: str = Field(max_length=255)
    pid: int
    started_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    heartbeat_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Lease(SQLModel, table=True):
    """Who runs a resource ("connection:12", "sink:3", "maintenance") until when
    (``hub.cluster``)."""

    __tablename__ = "leases"
    resource: str = Field(primary_key=True, max_length=100)
    owner: str = Field(max_length=40)
    acquired_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


metadata = SQLModel.metadata


def _table(model: type[SQLModel]) -> sa.Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


# The Core tables, for the statements of the hot path and the derivation stage.
clients_t = _table(Client)
users_t = _table(User)
connections_t = _table(Connection)
devices_t = _table(Device)
positions_t = _table(Position)
cursors_t = _table(SourceCursor)
states_t = _table(DeviceStateRow)
geofences_t = _table(Geofence)
members_t = _table(GeofenceMembership)
rules_t = _table(AlertRule)
alerts_t = _table(Alert)
outbox_t = _table(OutboxEntry)
sinks_t = _table(SinkRow)
pending_t = _table(SinkPending)
dead_t = _table(DeadLetter)
hub_meta_t = _table(HubMeta)
change_log_t = _table(ChangeLogRow)
cluster_nodes_t = _table(ClusterNode)
leases_t = _table(Lease)


def bump_client_version(conn: sa.Connection, client_id: int, column: str) -> None:
    """Add one to a client's ``geo_version``, ``rules_version`` or ``devices_version``:
    pipelines reload what they cached of it."""
    if column not in ("geo_version", "rules_version", "devices_version"):
        raise ValueError(f"{column!r} is not a version column")
    t = clients_t
    conn.execute(sa.update(t).where(t.c.id == client_id).values({column: t.c[column] + 1}))
