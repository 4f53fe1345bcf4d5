"""The store: everything the hub keeps, behind one small synchronous API.

Calls block (SQLAlchemy), so async code runs them with ``hub.blocking.run_blocking``.
Management operations use SQLModel sessions; the ingest hot path lives in
``hub.positions`` and uses Core bulk statements.  Tenancy is enforced by the callers
passing ``client_id`` (``None`` means "every client", for the system administrator).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub import db, tokens
from hub.changes import ChangeKind, ChangeOp, record_change, record_changes
from hub.config import Settings
from hub.models import (
    MAX_RETENTION_DAYS,
    REMOTE_ID_RE,
    REMOTE_ID_RULE,
    ApiToken,
    Client,
    Connection,
    ConnectionState,
    CounterSource,
    Device,
    PluginState,
    Role,
    SinkRow,
    SourceCursor,
    TokenScope,
    User,
    bump_client_version,
    utcnow,
)
from hub.positions import PositionStore
from hub.secrets import SecretBox
from hub.source import Cursor, DeviceRef, RemoteDevice
from hub.store_errors import Conflict, Invalid, NotFound
from hub.text import check_text


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user acting through one API token or one browser session."""

    user_id: int
    client_id: int | None
    role: str
    token_id: int | None = None
    name: str = ""
    token_scope: str = TokenScope.ALL  # "metrics": the token may only read /metrics
    session_id: int | None = None  # set when it is a browser session, not a token

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN and self.client_id is None

    @property
    def can_write(self) -> bool:
        return self.role in (Role.ADMIN, Role.MANAGER)

    @property
    def scope(self) -> int | None:
        """The client whose data this principal may see (``None``: all)."""
        return None if self.is_admin else self.client_id


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """What ``Store.check_token`` found: the principal, or ``None`` and why not
    (``malformed token``, ``unknown or revoked token``, ``expired token``)."""

    principal: Principal | None
    reason: str


def _future_expiry(when: datetime) -> datetime:
    """An expiry time as stored: aware UTC, in the future."""
    if when.tzinfo is None:
        raise Invalid("expires_at", "give a time zone (e.g. 2027-01-01T00:00:00Z)")
    try:
        when = when.astimezone(UTC)
    except OverflowError:
        raise Invalid("expires_at", "too far in the future") from None
    if when <= utcnow():
        raise Invalid("expires_at", "must be in the future")
    return when


UNSET: Any = object()
TOKEN_USE_RESOLUTION = timedelta(minutes=1)  # how often a token's last use is recorded
DEVICE_FIELDS = (
    "name",
    "license_plate",
    "imei",
    "remote_id",
    "tags",
    "driver",
    "offline_timeout_s",
    "odometer_source",
    "hours_source",
)


class Store:
    def __init__(self, engine: Engine, secrets: SecretBox) -> None:
        self.engine = engine
        self.secrets = secrets
        self.positions = PositionStore(engine)
        from hub.rule_store import GeofenceStore, RuleStore  # they use this module's errors

        self.geofences = GeofenceStore(engine)
        self.rules = RuleStore(engine)
        from hub.sink_store import SinkStore

        self.sinks = SinkStore(engine, secrets)
        from hub.session_store import SessionStore

        self.sessions = SessionStore(engine)

    @classmethod
    def open(
        cls, url: str, secrets: SecretBox, *, migrate: bool = True, synchronous: str = "NORMAL"
    ) -> Store:
        """The store at ``url``; ``synchronous`` is SQLite's setting of that name."""
        store = cls(db.create_engine(url, synchronous=synchronous), secrets)
        if migrate:
            store.migrate()
        return store

    @classmethod
    def for_settings(cls, settings: Settings) -> Store:
        """The store ``settings`` name: its data directory made, its key read (or made on
        first use), the schema migrated."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        secrets = SecretBox.from_env_or_file(settings.data_dir)
        return cls.open(settings.db_url, secrets, synchronous=settings.sqlite_synchronous)

    def migrate(self) -> None:
        db.migrate(self.engine)

    def close(self) -> None:
        self.positions.writer.close()
        self.engine.dispose()

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        with db.orm_session(self.engine, write=write) as session:
            yield session

    # -- clients, users, tokens ------------------------------------------------------
    def is_empty(self) -> bool:
        with self.session() as s:
            return s.exec(select(sa.func.count()).select_from(User)).one() == 0

    def create_client(
        self,
        name: str,
        *,
        positions_retention_days: int | None = None,
        alerts_retention_days: int | None = None,
    ) -> Client:
        name = _required_text("name", name)
        keep = {
            "positions_retention_days": _retention_days(
                "positions_retention_days", positions_retention_days
            ),
            "alerts_retention_days": _retention_days(
                "alerts_retention_days", alerts_retention_days
            ),
        }
        try:
            with self.session(write=True) as s:
                client = Client(name=name, **keep)
                s.add(client)
                s.flush()
                record_change(
                    s.connection(), ChangeKind.CLIENT, ChangeOp.CREATED, client.id, client.id
                )
                return client
        except IntegrityError:
            raise Conflict("name", f"a client named {name!r} exists already") from None

    def list_clients(self) -> list[Client]:
        with self.session() as s:
            return list(s.exec(select(Client).order_by(Client.id)))

    def get_client(self, client_id: int) -> Client:
        with self.session() as s:
            client = s.get(Client, client_id)
            if client is None:
                raise NotFound(f"client {client_id} not found")
            return client

    def client_by_name(self, name: str) -> Client | None:
        with self.session() as s:
            return s.exec(select(Client).where(Client.name == name)).first()

    def update_client(
        self,
        client_id: int,
        *,
        name: str = UNSET,
        timezone: str = UNSET,
        positions_retention_days: int | None = UNSET,
        alerts_retention_days: int | None = UNSET,
    ) -> Client:
        """Change the fields given; a retention of ``None`` keeps rows forever."""
        from hub.rule_store import check_timezone

        keep = {
            field: _retention_days(field, value)
            for field, value in (
                ("positions_retention_days", positions_retention_days),
                ("alerts_retention_days", alerts_retention_days),
            )
            if value is not UNSET
        }
        try:
            with self.session(write=True) as s:
                client = s.get(Client, client_id)
                if client is None:
                    raise NotFound(f"client {client_id} not found")
                if name is not UNSET:
                    client.name = _required_text("name", name)
                if timezone is not UNSET:
                    client.timezone = check_timezone(timezone)
                    client.rules_version += 1  # schedules are read in the client's zone
                for field, value in keep.items():
                    setattr(client, field, value)
                s.add(client)
                s.flush()
                record_change(
                    s.connection(), ChangeKind.CLIENT, ChangeOp.UPDATED, client_id, client_id
                )
                return client
        except IntegrityError:
            raise Conflict("name", f"a client named {name!r} exists already") from None

    def delete_client(self, client_id: int) -> None:
        with self.session(write=True) as s:
            client = s.get(Client, client_id)
            if client is None:
                raise NotFound(f"client {client_id} not found")
            # what goes with the client, for the running hubs (users and tokens: by client)
            going = {
                kind: s.exec(select(model.id).where(model.client_id == client_id)).all()
                for kind, model in (
                    (ChangeKind.CONNECTION, Connection),
                    (ChangeKind.DEVICE, Device),
                    (ChangeKind.SINK, SinkRow),
                )
            }
            s.delete(client)
            s.flush()
            conn = s.connection()
            for kind, ids in going.items():
                record_changes(conn, kind, ChangeOp.DELETED, ids, client_id)
            record_change(conn, ChangeKind.CLIENT, ChangeOp.DELETED, client_id, client_id)

    def create_user(
        self, name: str, role: str, client_id: int | None, password_hash: str | None = None
    ) -> User:
        """``password_hash``: its first password, already hashed (``hub.passwords``)."""
        name = _required_text("name", name)
        if role not in set(Role):
            raise Invalid("role", f"must be one of {', '.join(Role)}")
        if (role == Role.ADMIN) != (client_id is None):
            raise Invalid("role", "the admin role is for system users, who belong to no client")
        try:
            with self.session(write=True) as s:
                if client_id is not None and s.get(Client, client_id) is None:
                    raise NotFound(f"client {client_id} not found")
                user = User(name=name, role=role, client_id=client_id, password_hash=password_hash)
                s.add(user)
                s.flush()
                record_change(s.connection(), ChangeKind.USER, ChangeOp.CREATED, user.id, client_id)
                return user
        except IntegrityError:
            raise Conflict("name", f"a user named {name!r} exists already") from None

    def list_users(self, client_id: int | None = None) -> list[User]:
        with self.session() as s:
            q = select(User).order_by(User.id)
            if client_id is not None:
                q = q.where(User.client_id == client_id)
            return list(s.exec(q))

    def get_user(self, user_id: int, client_id: int | None = None) -> User:
        with self.session() as s:
            user = s.get(User, user_id)
            if user is None or (client_id is not None and user.client_id != client_id):
                raise NotFound(f"user {user_id} not found")
            return user

    def update_user(
        self, user_id: int, client_id: int | None = None, *, name: str = UNSET, role: str = UNSET
    ) -> User:
        """Rename a user or change its role between manager and viewer (``client_id``
        limits it to that client's users).  The role of an administrator, who belongs to
        no client, cannot change."""
        try:
            with self.session(write=True) as s:
                user = s.get(User, user_id)
                if user is None or (client_id is not None and user.client_id != client_id):
                    raise NotFound(f"user {user_id} not found")
                if name is not UNSET:
                    user.name = _required_text("name", name)
                if role is not UNSET and role != user.role:
                    if role not in (Role.MANAGER, Role.VIEWER) or user.role == Role.ADMIN:
                        raise Invalid(
                            "role",
                            "a client's user is a manager or a viewer; an administrator stays one",
                        )
                    user.role = role
                s.add(user)
                s.flush()
                record_change(
                    s.connection(), ChangeKind.USER, ChangeOp.UPDATED, user_id, user.client_id
                )
                return user
        except IntegrityError:
            raise Conflict("name", f"a user named {name!r} exists already") from None

    def delete_user(self, user_id: int, client_id: int | None = None) -> None:
        """Delete a user and its tokens (``client_id`` limits it to that client's users)."""
        with self.session(write=True) as s:
            user = s.get(User, user_id)
            if user is None or (client_id is not None and user.client_id != client_id):
                raise NotFound(f"user {user_id} not found")
            if user.role == Role.ADMIN:
                admins = s.exec(
                    select(sa.func.count()).select_from(User).where(User.role == Role.ADMIN)
                ).one()
                if admins <= 1:
                    raise Conflict("user", "the last system administrator cannot be deleted")
            s.delete(user)
            record_change(
                s.connection(), ChangeKind.USER, ChangeOp.DELETED, user_id, user.client_id
            )

    def create_token(
        self,
        user_id: int,
        name: str = "",
        scope: str = TokenScope.ALL,
        *,
        expires_at: datetime | None = None,
    ) -> tuple[ApiToken, str]:
        """A new token for ``user_id``: the row and the plaintext (shown once).

        ``scope`` ``metrics`` makes a token that may only read ``/metrics``: the
        metrics are the whole hub's, so only the administrator may have one.
        ``expires_at`` (aware, in the future) is when it stops working; ``None``: never.
        """
        if scope not in set(TokenScope):
            raise Invalid("scope", f"must be one of {', '.join(TokenScope)}")
        if expires_at is not None:
            expires_at = _future_expiry(expires_at)
        plain = tokens.new_token()
        with self.session(write=True) as s:
            user = s.get(User, user_id)
            if user is None:
                raise NotFound(f"user {user_id} not found")
            if scope == TokenScope.METRICS and not (
                user.role == Role.ADMIN and user.client_id is None
            ):
                raise Invalid("scope", "only the system administrator may have a metrics token")
            row = ApiToken(
                user_id=user_id,
                name=name,
                prefix=tokens.display_prefix(plain),
                token_hash=tokens.token_hash(plain),
                scope=str(scope),
                expires_at=expires_at,
            )
            s.add(row)
            s.flush()
            record_change(s.connection(), ChangeKind.TOKEN, ChangeOp.CREATED, row.id)
            return row, plain

    def list_tokens(self, user_ids: Iterable[int] | None = None) -> list[ApiToken]:
        with self.session() as s:
            q = select(ApiToken).order_by(ApiToken.id)
            if user_ids is not None:
                q = q.where(col(ApiToken.user_id).in_(list(user_ids)))
            return list(s.exec(q))

    def delete_token(self, token_id: int, user_ids: Iterable[int] | None = None) -> None:
        with self.session(write=True) as s:
            row = s.get(ApiToken, token_id)
            if row is None or (user_ids is not None and row.user_id not in set(user_ids)):
                raise NotFound(f"token {token_id} not found")
            s.delete(row)
            record_change(s.connection(), ChangeKind.TOKEN, ChangeOp.DELETED, token_id)

    def authenticate(self, plain: str) -> Principal | None:
        """The principal of a valid token: issued, not revoked, not expired."""
        return self.check_token(plain).principal

    def check_token(self, plain: str) -> TokenCheck:
        """``authenticate`` saying why a token is refused (see ``TokenCheck``)."""
        if not tokens.well_formed(plain):
            return TokenCheck(None, "malformed token")
        digest = tokens.token_hash(plain)
        with self.session() as s:
            row = s.exec(
                select(ApiToken, User)
                .join(User, col(User.id) == ApiToken.user_id)
                .where(ApiToken.token_hash == digest)
            ).first()
        if row is None:
            return TokenCheck(None, "unknown or revoked token")
        token, user = row
        now = utcnow()
        if token.expires_at is not None and token.expires_at <= now:
            return TokenCheck(None, "expired token")
        if token.last_used_at is None or now - token.last_used_at > TOKEN_USE_RESOLUTION:
            with db.write_tx(self.engine) as conn:
                conn.execute(
                    sa.update(ApiToken).where(col(ApiToken.id) == token.id).values(last_used_at=now)
                )
        principal = Principal(
            user_id=user.id or 0,
            client_id=user.client_id,
            role=user.role,
            token_id=token.id,
            name=user.name,
            token_scope=token.scope,
        )
        return TokenCheck(principal, "")

    def bootstrap_admin(self) -> str | None:
        """On an empty database: create the system administrator and return its token."""
        if not self.is_empty():
            return None
        user = self.create_user("admin", Role.ADMIN, None)
        _, plain = self.create_token(user.id or 0, "created at first start")
        return plain

    # -- connections -----------------------------------------------------------------
    def _binding(self, connection_id: int) -> str:
        return f"connection:{connection_id}"

    def create_connection(
        self,
        client_id: int,
        kind: str,
        label: str,
        credentials: dict[str, Any],
        options: dict[str, Any] | None = None,
        enabled: bool = True,
    ) -> Connection:
        label = _required_text("label", label)
        with self.session(write=True) as s:
            if s.get(Client, client_id) is None:
                raise NotFound(f"client {client_id} not found")
            conn = Connection(
                client_id=client_id,
                kind=kind,
                label=label,
                options=options or {},
                enabled=enabled,
                state=ConnectionState.NEW if enabled else ConnectionState.DISABLED,
            )
            s.add(conn)
            s.flush()  # the id binds the ciphertext to this row
            conn.credentials = self.secrets.encrypt(self._binding(conn.id or 0), credentials)
            s.add(conn)
            s.flush()
            record_change(
                s.connection(), ChangeKind.CONNECTION, ChangeOp.CREATED, conn.id, client_id
            )
            return conn

    def get_connection(self, connection_id: int, client_id: int | None = None) -> Connection:
        with self.session() as s:
            conn = s.get(Connection, connection_id)
            if conn is None or (client_id is not None and conn.client_id != client_id):
                raise NotFound(f"connection {connection_id} not found")
            return conn

    def list_connections(
        self, client_id: int | None = None, *, enabled_only: bool = False
    ) -> list[Connection]:
        with self.session() as s:
            q = select(Connection).order_by(Connection.id)
            if client_id is not None:
                q = q.where(Connection.client_id == client_id)
            if enabled_only:
                q = q.where(col(Connection.enabled).is_(True))
            return list(s.exec(q))

    def connection_credentials(self, conn: Connection) -> dict[str, Any]:
        """The decrypted credentials of ``conn`` (never to be returned or logged)."""
        if not conn.credentials:
            return {}
        return dict(self.secrets.decrypt(self._binding(conn.id or 0), conn.credentials))

    def update_connection(
        self,
        connection_id: int,
        client_id: int | None = None,
        *,
        label: str = UNSET,
        credentials: dict[str, Any] = UNSET,
        options: dict[str, Any] = UNSET,
        enabled: bool = UNSET,
    ) -> Connection:
        with self.session(write=True) as s:
            conn = s.get(Connection, connection_id)
            if conn is None or (client_id is not None and conn.client_id != client_id):
                raise NotFound(f"connection {connection_id} not found")
            if label is not UNSET:
                conn.label = _required_text("label", label)
            if options is not UNSET:
                conn.options = options
                if conn.state == ConnectionState.BAD_CONFIG:
                    conn.state, conn.last_error = ConnectionState.NEW, None
                    conn.state_message = None
            if credentials is not UNSET:
                conn.credentials = self.secrets.encrypt(self._binding(connection_id), credentials)
                # new credentials: a "needs re-auth" connection gets another chance
                s.exec(
                    sa.delete(PluginState).where(col(PluginState.connection_id) == connection_id)
                )
                conn.state = ConnectionState.NEW
                conn.last_error = conn.state_message = None
            if enabled is not UNSET:
                conn.enabled = enabled
                if not enabled:
                    conn.state, conn.state_message = ConnectionState.DISABLED, None
                    conn.next_poll_at = None  # not polled until enabled
                elif conn.state == ConnectionState.DISABLED:
                    conn.state = ConnectionState.NEW
            conn.updated_at = utcnow()
            s.add(conn)
            s.flush()
            record_change(
                s.connection(),
                ChangeKind.CONNECTION,
                ChangeOp.UPDATED,
                connection_id,
                conn.client_id,
            )
            return conn

    def delete_connection(self, connection_id: int, client_id: int | None = None) -> None:
        with self.session(write=True) as s:
            conn = s.get(Connection, connection_id)
            if conn is None or (client_id is not None and conn.client_id != client_id):
                raise NotFound(f"connection {connection_id} not found")
            s.delete(conn)
            record_change(
                s.connection(),
                ChangeKind.CONNECTION,
                ChangeOp.DELETED,
                connection_id,
                conn.client_id,
            )

    def set_connection_status(
        self, connection_id: int, *, if_version: datetime | None = None, **fields: Any
    ) -> bool:
        """Record runner status (state, last_error, last_poll_at, next_poll_at, ...).

        With ``if_version`` (the ``updated_at`` the runner started from) nothing is
        written once the connection has been edited since: a runner that is being
        replaced must not overwrite what the edit set.  Returns whether it wrote.
        """
        allowed = {
            "state",
            "last_error",
            "state_message",
            "last_poll_at",
            "last_success_at",
            "next_poll_at",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"not status fields: {sorted(unknown)}")
        q = sa.update(Connection).where(col(Connection.id) == connection_id)
        if if_version is not None:
            q = q.where(col(Connection.updated_at) == if_version)
        with db.write_tx(self.engine) as conn:
            return conn.execute(q.values(**fields)).rowcount == 1

    def rotate_secrets(self) -> int:
        """Re-encrypt every stored secret under the newest key; return how many."""
        count = 0
        with self.session(write=True) as s:
            for conn in s.exec(select(Connection)):
                if conn.credentials:
                    conn.credentials = self.secrets.rotate(conn.credentials)
                    s.add(conn)
                    count += 1
            for row in s.exec(select(PluginState)):
                row.value = self.secrets.rotate(row.value)
                s.add(row)
                count += 1
        return count + self.sinks.rotate_secrets()

    # -- devices ---------------------------------------------------------------------
    def create_device(self, client_id: int, **fields: Any) -> Device:
        data = _device_fields(fields, creating=True)
        conn_id = fields.get("connection_id")
        upstream_id = fields.get("upstream_id")
        try:
            with self.session(write=True) as s:
                if s.get(Client, client_id) is None:
                    raise NotFound(f"client {client_id} not found")
                if conn_id is not None:
                    conn = s.get(Connection, conn_id)
                    if conn is None or conn.client_id != client_id:
                        raise Invalid("connection_id", f"connection {conn_id} not found")
                    if not upstream_id:
                        raise Invalid("upstream_id", "required when a connection is given")
                device = Device(
                    client_id=client_id,
                    connection_id=conn_id,
                    upstream_id=str(upstream_id) if upstream_id is not None else None,
                    **data,
                )
                s.add(device)
                s.flush()
                bump_client_version(s.connection(), client_id, "devices_version")
                _record_device(s, device.id, client_id, ChangeOp.CREATED, conn_id)
                return device
        except IntegrityError as exc:
            raise _device_conflict(exc) from None

    def get_device(self, device_id: int, client_id: int | None = None) -> Device:
        with self.session() as s:
            device = s.get(Device, device_id)
            if device is None or (client_id is not None and device.client_id != client_id):
                raise NotFound(f"device {device_id} not found")
            return device

    def list_devices(
        self, client_id: int | None = None, connection_id: int | None = None
    ) -> list[Device]:
        with self.session() as s:
            q = select(Device).order_by(Device.id)
            if client_id is not None:
                q = q.where(Device.client_id == client_id)
            if connection_id is not None:
                q = q.where(Device.connection_id == connection_id)
            return list(s.exec(q))

    def update_device(self, device_id: int, client_id: int | None = None, **fields: Any) -> Device:
        data = _device_fields(fields, creating=False)
        try:
            with self.session(write=True) as s:
                device = s.get(Device, device_id)
                if device is None or (client_id is not None and device.client_id != client_id):
                    raise NotFound(f"device {device_id} not found")
                relinked = None
                if "connection_id" in fields or "upstream_id" in fields:
                    conn_id = fields.get("connection_id", device.connection_id)
                    upstream = fields.get("upstream_id", device.upstream_id)
                    if conn_id is not None:
                        conn = s.get(Connection, conn_id)
                        if conn is None or conn.client_id != device.client_id:
                            raise Invalid("connection_id", f"connection {conn_id} not found")
                        if not upstream:
                            raise Invalid("upstream_id", "required when a connection is given")
                    if (conn_id, upstream) != (device.connection_id, device.upstream_id):
                        # another upstream device: its cursor no longer applies
                        s.exec(
                            sa.delete(SourceCursor).where(col(SourceCursor.device_id) == device_id)
                        )
                    relinked = (
                        conn_id
                        if (conn_id, upstream) != (device.connection_id, device.upstream_id)
                        else None
                    )
                    device.connection_id = conn_id
                    device.upstream_id = str(upstream) if upstream is not None else None
                for key, value in data.items():
                    setattr(device, key, value)
                device.updated_at = utcnow()
                s.add(device)
                s.flush()
                bump_client_version(s.connection(), device.client_id, "devices_version")
                _record_device(s, device_id, device.client_id, ChangeOp.UPDATED, relinked)
                return device
        except IntegrityError as exc:
            raise _device_conflict(exc) from None

    def delete_device(self, device_id: int, client_id: int | None = None) -> None:
        """Delete a device with its positions, alerts, state and cursor, and take it out
        of the rules that name it (``hub.rule_store.forget_devices``)."""
        from hub.rule_store import forget_devices

        with self.session(write=True) as s:
            device = s.get(Device, device_id)
            if device is None or (client_id is not None and device.client_id != client_id):
                raise NotFound(f"device {device_id} not found")
            s.delete(device)
            forget_devices(s.connection(), device.client_id, [device_id])
            bump_client_version(s.connection(), device.client_id, "devices_version")
            _record_device(s, device_id, device.client_id, ChangeOp.DELETED)

    def visible_device_ids(self, device_ids: Iterable[int], client_id: int | None) -> set[int]:
        """Those of ``device_ids`` that exist and belong to ``client_id`` (``None``: any)."""
        ids = list(device_ids)
        if not ids:
            return set()
        with self.session() as s:
            q = select(Device.id).where(col(Device.id).in_(ids))
            if client_id is not None:
                q = q.where(Device.client_id == client_id)
            return {int(i) for i in s.exec(q) if i is not None}

    def set_virtual_counters(
        self,
        device_id: int,
        client_id: int | None = None,
        *,
        odometer_km: float | None = None,
        hours: float | None = None,
    ) -> Device:
        """Set a device's virtual odometer / hour meter to a value from now on (stored as
        offsets over the system counters, which nobody can change)."""
        from hub.derive import DeviceState
        from hub.models import DeviceStateRow

        for field, value in (("odometer_km", odometer_km), ("hours", hours)):
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise Invalid(field, "must be a number of at least 0")
        with self.session(write=True) as s:
            device = s.get(Device, device_id)
            if device is None or (client_id is not None and device.client_id != client_id):
                raise NotFound(f"device {device_id} not found")
            row = s.get(DeviceStateRow, device_id)
            state = DeviceState.from_json(row.state if row else None)
            if odometer_km is not None:
                device.odometer_offset_km = float(odometer_km) - state.odometer_km
            if hours is not None:
                device.hours_offset = float(hours) - state.hours
            device.updated_at = utcnow()
            s.add(device)
            s.flush()
            bump_client_version(s.connection(), device.client_id, "devices_version")
            _record_device(s, device_id, device.client_id, ChangeOp.UPDATED)
            return device

    def device_refs(self, connection_id: int) -> list[DeviceRef]:
        with self.session() as s:
            rows = s.exec(
                select(Device.id, Device.upstream_id, Device.name)
                .where(Device.connection_id == connection_id)
                .order_by(Device.id)
            )
            return [DeviceRef(int(i), str(u), n) for i, u, n in rows if i is not None and u]

    def import_devices(
        self, connection_id: int, remote: Sequence[RemoteDevice]
    ) -> tuple[list[Device], list[Device]]:
        """Create a device per remote device not imported yet: (created, already there)."""
        conn = self.get_connection(connection_id)
        created: list[Device] = []
        existing: list[Device] = []
        with self.session(write=True) as s:
            known = {
                d.upstream_id: d
                for d in s.exec(select(Device).where(Device.connection_id == connection_id))
            }
            taken_remote_ids = set(
                s.exec(
                    select(Device.remote_id).where(
                        Device.client_id == conn.client_id, col(Device.remote_id).is_not(None)
                    )
                )
            )
            for rd in remote:
                upstream_id = str(rd.upstream_id)
                if upstream_id in known:
                    existing.append(known[upstream_id])
                    continue
                device = Device(
                    client_id=conn.client_id,
                    connection_id=connection_id,
                    upstream_id=upstream_id,
                    name=(rd.name or upstream_id)[:200],
                    imei=rd.imei,
                    license_plate=rd.license_plate,
                )
                remote_id = _suggest_remote_id(upstream_id, taken_remote_ids)
                if remote_id:
                    device.remote_id = remote_id
                    taken_remote_ids.add(remote_id)
                s.add(device)
                known[upstream_id] = device
                created.append(device)
            s.flush()
            if created:
                record_changes(
                    s.connection(),
                    ChangeKind.DEVICE,
                    ChangeOp.CREATED,
                    [d.id for d in created],
                    conn.client_id,
                )
                record_change(
                    s.connection(),
                    ChangeKind.CONNECTION,
                    ChangeOp.DEVICES,
                    connection_id,
                    conn.client_id,
                )
        return created, existing

    def sync_devices(self, connection_id: int, changes: Mapping[str, Mapping[str, str]]) -> int:
        """Set upstream properties (``name``, ``imei``, ``license_plate``) on the devices of
        ``connection_id``, keyed by upstream id; the number of devices changed."""
        limits = {"name": 200, "imei": 50, "license_plate": 50}
        changed = 0
        with self.session(write=True) as s:
            devices = s.exec(
                select(Device).where(
                    Device.connection_id == connection_id,
                    col(Device.upstream_id).in_(list(changes)),
                )
            )
            client_ids: set[int] = set()
            for device in devices:
                fields = changes.get(device.upstream_id or "", {})
                dirty = False
                for key, value in fields.items():
                    value = value[: limits[key]]
                    if getattr(device, key) != value:
                        setattr(device, key, value)
                        dirty = True
                if dirty:
                    device.updated_at = utcnow()
                    s.add(device)
                    client_ids.add(device.client_id)
                    changed += 1
            s.flush()
            for client_id in client_ids:
                bump_client_version(s.connection(), client_id, "devices_version")
                record_change(s.connection(), ChangeKind.DEVICE, ChangeOp.UPDATED, None, client_id)
        return changed

    # -- cursors and plugin state ----------------------------------------------------
    def load_cursors(self, connection_id: int) -> dict[int, Cursor]:
        with self.session() as s:
            rows = s.exec(select(SourceCursor).where(SourceCursor.connection_id == connection_id))
            return {r.device_id: Cursor(r.last_fix_time, dict(r.state or {})) for r in rows}

    def state_get(self, connection_id: int, key: str) -> Any:
        with self.session() as s:
            row = s.get(PluginState, (connection_id, key))
            if row is None:
                return UNSET
            return self.secrets.decrypt(f"state:{connection_id}:{key}", row.value)

    def state_set(self, connection_id: int, key: str, value: Any) -> None:
        token = self.secrets.encrypt(f"state:{connection_id}:{key}", value)
        with self.session(write=True) as s:
            row = s.get(PluginState, (connection_id, key))
            if row is None:
                row = PluginState(connection_id=connection_id, key=key, value=token)
            row.value = token
            row.updated_at = utcnow()
            s.add(row)

    def state_delete(self, connection_id: int, key: str) -> None:
        with db.write_tx(self.engine) as conn:
            conn.execute(
                sa.delete(PluginState).where(
                    col(PluginState.connection_id) == connection_id,
                    col(PluginState.key) == key,
                )
            )


def _record_device(
    s: Session, device_id: int | None, client_id: int, op: ChangeOp, linked_to: int | None = None
) -> None:
    """Record a device's change, and when it was linked to a connection, the connection's
    (its runner may have work now)."""
    record_change(s.connection(), ChangeKind.DEVICE, op, device_id, client_id)
    if linked_to is not None:
        record_change(s.connection(), ChangeKind.CONNECTION, ChangeOp.DEVICES, linked_to, client_id)


def _retention_days(field: str, value: Any) -> int | None:
    """A retention in whole days, 1 to ``MAX_RETENTION_DAYS``; ``None``: forever."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(field, "must be a whole number of days, or null to keep forever")
    if not 1 <= value <= MAX_RETENTION_DAYS:
        raise Invalid(field, f"must be between 1 and {MAX_RETENTION_DAYS} days, or null")
    return value


def _required_text(field: str, value: Any) -> str:
    """A name or a label: a non-empty single line (``hub.text``), trimmed."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(field, "must be a non-empty string")
    return check_text(field, value.strip())


def validate_remote_id(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not REMOTE_ID_RE.match(value):
        raise Invalid("remote_id", REMOTE_ID_RULE)
    return value


def _device_fields(fields: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    unknown = set(fields) - set(DEVICE_FIELDS) - {"connection_id", "upstream_id"}
    if unknown:
        raise Invalid(sorted(unknown)[0], "unknown device field")
    data = {k: v for k, v in fields.items() if k in DEVICE_FIELDS}
    if creating or "name" in data:
        data["name"] = _required_text("name", data.get("name"))
    if "remote_id" in data:
        data["remote_id"] = validate_remote_id(data["remote_id"])
    if data.get("offline_timeout_s") is not None:
        timeout = data["offline_timeout_s"]
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 30:
            raise Invalid("offline_timeout_s", "must be a whole number of seconds, at least 30")
    for name in ("odometer_source", "hours_source"):
        if name in data and data[name] is None:
            data[name] = CounterSource.HUB  # null: back to the default
        if name in data and data[name] not in set(CounterSource):
            raise Invalid(name, "must be 'hub' (the hub's own count) or 'platform'")
    if "tags" in data:
        tags = data["tags"] or []
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            raise Invalid("tags", "must be a list of non-empty strings")
        data["tags"] = tags
    return data


def _suggest_remote_id(upstream_id: str, taken: set[str]) -> str | None:
    """Imported devices get the upstream id as remote id when it obeys the charset rule."""
    if REMOTE_ID_RE.match(upstream_id) and upstream_id not in taken and len(upstream_id) <= 100:
        return upstream_id
    return None


def _device_conflict(exc: IntegrityError) -> Exception:
    text = str(exc.orig).lower()
    if "remote_id" in text:
        return Conflict("remote_id", "another device of this client has this remote id")
    if "upstream_id" in text:
        return Conflict("upstream_id", "another device is linked to this upstream device")
    return Conflict("device", "conflicts with an existing device")


def dt_or_none(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
