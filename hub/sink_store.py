"""Storing sinks, what each still owes (``sink_pending``), dead letters, and the outbox
reads and writes of delivery.

A sink's progress is its ``cursor`` over the outbox: every message at or below it is
delivered, dead-lettered or kept in ``sink_pending``.  The delivery worker of a sink is
the only writer of its cursor and pending rows; the API adds work by writing outbox
rows aimed at one sink (a replay, re-sent dead letters), so the two never race.

A ``webhook-id`` is made of the hub's id (``hub_meta``) and outbox ids, so outbox ids
must never be given to two messages: pruning does not free them (AUTOINCREMENT on
SQLite, a sequence on PostgreSQL), and at every start ``skip_outbox_ids`` moves the
counter past the clock, so a database restored from a backup does not give out again
the ids its original went on to use after the backup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from hub import db
from hub.changes import ChangeKind, ChangeOp, record_change
from hub.models import (
    Client,
    DeadLetter,
    HubMeta,
    SinkRow,
    SinkState,
    UTCDateTime,
    alerts_t,
    clients_t,
    dead_t,
    devices_t,
    new_hub_id,
    outbox_t,
    pending_t,
    positions_t,
    sinks_t,
    utcnow,
)
from hub.secrets import SecretBox
from hub.store import UNSET, Conflict, Invalid, NotFound

KIND_OF = {"locations": "location", "alerts": "alert"}
MAX_REPLAY = 1_000_000
"""The most messages one replay may queue (ask for a narrower range beyond that)."""
OUTBOX_IDS_PER_S = 1_000_000
"""At every start the outbox ids go on from at least the clock in microseconds since
1970: an outbox given fewer ids a second than this never repeats one after a restore."""

_ITEM_COLUMNS = tuple(c for c in positions_t.c if c.name != "raw")
_ITEM_NAMES = tuple(c.name for c in _ITEM_COLUMNS)
_DEVICE_COLUMNS = ("name", "license_plate", "imei", "remote_id", "tags", "driver")
_SQLITE_FROM = "FROM positions p JOIN devices d ON d.id = p.device_id"


def imei_key(imei: str | None) -> str | None:
    """The text two devices' IMEIs are compared by: without surrounding spaces and leading
    zeros, so ``"012345"`` and ``"12345 "`` are the same IMEI (as numbers they are);
    ``None`` without an IMEI."""
    if imei is None:
        return None
    text = imei.strip(" ")
    return text.lstrip("0") if text else None


def _mark_imei_first(conn: sa.Connection, devices: Iterable[dict[str, Any]]) -> None:
    """Set each device's ``imei_first``: no device (of any client) with a lower id has the
    same IMEI (``imei_key``); ``True`` for a device without one.  One query for all."""
    devices = list(devices)
    keys = {imei_key(d["imei"]) for d in devices} - {None}
    lowest: dict[str, int] = {}
    if keys:
        d = devices_t
        key = sa.func.ltrim(sa.func.trim(d.c.imei), "0")  # imei_key in SQL (trim: spaces)
        q = sa.select(key, d.c.id).where(
            d.c.imei.is_not(None), sa.func.trim(d.c.imei) != "", key.in_(sorted(keys))
        )
        for k, i in conn.execute(q):
            lowest[k] = min(i, lowest.get(k, i))
    for device in devices:
        k = imei_key(device["imei"])
        device["imei_first"] = k is None or lowest.get(k, device["id"]) >= device["id"]


_QUEUED = ("client_id", "kind", "device_id", "ref_id", "payload", "sink_id", "created_at")


def _aimed_at(sink: SinkRow, now: datetime) -> tuple[Any, Any]:
    """The ``sink_id`` and ``created_at`` columns of outbox rows queued for one sink."""
    return (
        sa.literal(sink.id).label("sink_id"),
        sa.bindparam("now", now, type_=UTCDateTime()).label("created_at"),
    )


def _queue(conn: sa.Connection, source: Any) -> int:
    """Add the rows ``source`` selects (columns ``_QUEUED``) to the outbox, in order."""
    db.lock_outbox(conn)
    return int(conn.execute(sa.insert(outbox_t).from_select(list(_QUEUED), source)).rowcount)


def _sqlite_time(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


@dataclass(slots=True)
class OutboxRow:
    id: int
    device_id: int | None
    ref_id: int | None
    payload: dict[str, Any]


@dataclass(slots=True)
class PendingRow:
    """A message a sink still owes (see ``hub.models.SinkPending``)."""

    outbox_id: int
    device_id: int | None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    first_failed_at: datetime | None = None
    delivery_id: str | None = None
    last_error: str | None = None

    def as_row(self, sink_id: int) -> dict[str, Any]:
        return {
            "sink_id": sink_id,
            "outbox_id": self.outbox_id,
            "device_id": self.device_id,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "first_failed_at": self.first_failed_at,
            "delivery_id": self.delivery_id,
            "last_error": self.last_error,
        }


@dataclass(slots=True)
class Progress:
    """What one round of a sink's worker changed, written in one transaction."""

    cursor: int | None = None  # the new cursor, when fresh messages were taken
    clear_inflight: bool = False
    delivered: int = 0  # items
    failed_attempts: int = 0  # requests
    removed: list[int] = field(default_factory=list)  # pending rows done with
    pending: list[PendingRow] = field(default_factory=list)  # new or changed pending rows
    dead: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)  # state, last_error, … columns


class SinkStore:
    def __init__(self, engine: Engine, secrets: SecretBox) -> None:
        self.engine = engine
        self.box = secrets
        self._hub_id: str | None = None

    def _session(self, write: bool = False) -> Session:
        bind = self.engine.execution_options(**db.WRITE) if write else self.engine
        return Session(bind, expire_on_commit=False)

    @staticmethod
    def _binding(sink_id: int) -> str:
        return f"sink:{sink_id}"

    # -- configuration -------------------------------------------------------------------
    def create(
        self,
        client_id: int,
        *,
        name: str,
        kind: str,
        format: str,
        purpose: str,
        settings: dict[str, Any],
        format_options: dict[str, Any] | None = None,
        secrets: dict[str, Any] | None = None,
        enabled: bool = True,
        failing_after_s: int | None = None,
    ) -> SinkRow:
        """A new sink; it delivers what is written to the outbox from now on."""
        if not name.strip():
            raise Invalid("name", "must not be empty")
        with self._session(write=True) as s, s.begin():
            if s.get(Client, client_id) is None:
                raise NotFound(f"client {client_id} not found")
            if purpose == "alerts":
                other = self._alerts_sink(s, client_id)
                if other is not None:
                    raise Conflict(
                        "kind",
                        f"the client has an alerts webhook already (sink {other.id}); "
                        "change that one",
                    )
            start = s.exec(select(sa.func.max(outbox_t.c.id))).one() or 0
            row = SinkRow(
                client_id=client_id,
                name=name.strip(),
                kind=kind,
                format=format,
                purpose=purpose,
                settings=settings,
                format_options=format_options or {},
                enabled=enabled,
                failing_after_s=failing_after_s,
                cursor=int(start),
                state=SinkState.NEW if enabled else SinkState.PAUSED,
            )
            s.add(row)
            s.flush()
            row.secrets = self.box.encrypt(self._binding(row.id or 0), secrets or {})
            s.add(row)
            s.flush()
            record_change(s.connection(), ChangeKind.SINK, ChangeOp.CREATED, row.id, client_id)
            return row

    def _alerts_sink(self, s: Session, client_id: int) -> SinkRow | None:
        q = select(SinkRow).where(SinkRow.client_id == client_id, SinkRow.purpose == "alerts")
        return s.exec(q).first()

    def alerts_sink(self, client_id: int) -> SinkRow | None:
        """The client's alerts webhook, if it has one."""
        with self._session() as s:
            return self._alerts_sink(s, client_id)

    def get(self, sink_id: int, client_id: int | None = None) -> SinkRow:
        with self._session() as s:
            row = s.get(SinkRow, sink_id)
            if row is None or (client_id is not None and row.client_id != client_id):
                raise NotFound(f"sink {sink_id} not found")
            return row

    def list(self, client_id: int | None = None, *, enabled_only: bool = False) -> list[SinkRow]:
        with self._session() as s:
            q = select(SinkRow).order_by(SinkRow.id)  # type: ignore[arg-type]
            if client_id is not None:
                q = q.where(SinkRow.client_id == client_id)
            if enabled_only:
                q = q.where(SinkRow.enabled == True)  # noqa: E712 - SQL
            return list(s.exec(q))

    def secrets_of(self, row: SinkRow) -> dict[str, Any]:
        """The decrypted secrets of a sink (never to be returned or logged)."""
        if not row.secrets:
            return {}
        return dict(self.box.decrypt(self._binding(row.id or 0), row.secrets))

    def update(
        self,
        sink_id: int,
        client_id: int | None = None,
        *,
        name: str = UNSET,
        format: str = UNSET,
        settings: dict[str, Any] = UNSET,
        format_options: dict[str, Any] = UNSET,
        secrets: dict[str, Any] = UNSET,
        enabled: bool = UNSET,
        failing_after_s: int | None = UNSET,
    ) -> SinkRow:
        with self._session(write=True) as s, s.begin():
            row = s.get(SinkRow, sink_id)
            if row is None or (client_id is not None and row.client_id != client_id):
                raise NotFound(f"sink {sink_id} not found")
            if name is not UNSET:
                if not name.strip():
                    raise Invalid("name", "must not be empty")
                row.name = name.strip()
            for key, value in (
                ("format", format),
                ("settings", settings),
                ("format_options", format_options),
                ("failing_after_s", failing_after_s),
            ):
                if value is not UNSET:
                    setattr(row, key, value)
            if secrets is not UNSET:
                row.secrets = self.box.encrypt(self._binding(sink_id), secrets)
            if enabled is not UNSET:
                row.enabled = enabled
                if not enabled:
                    row.state = SinkState.PAUSED
                elif row.state == SinkState.PAUSED:
                    row.state = SinkState.NEW
            row.updated_at = utcnow()
            s.add(row)
            s.flush()
            record_change(s.connection(), ChangeKind.SINK, ChangeOp.UPDATED, sink_id, row.client_id)
            return row

    def delete(self, sink_id: int, client_id: int | None = None) -> None:
        with self._session(write=True) as s, s.begin():
            row = s.get(SinkRow, sink_id)
            if row is None or (client_id is not None and row.client_id != client_id):
                raise NotFound(f"sink {sink_id} not found")
            conn = s.connection()
            conn.execute(sa.delete(pending_t).where(pending_t.c.sink_id == sink_id))
            conn.execute(sa.delete(dead_t).where(dead_t.c.sink_id == sink_id))
            conn.execute(sa.delete(outbox_t).where(outbox_t.c.sink_id == sink_id))
            s.delete(row)
            record_change(conn, ChangeKind.SINK, ChangeOp.DELETED, sink_id, row.client_id)

    def rotate_secrets(self) -> int:
        """Re-encrypt every sink's secrets under the newest key; return how many."""
        count = 0
        with self._session(write=True) as s, s.begin():
            for row in s.exec(select(SinkRow)):
                if row.secrets:
                    row.secrets = self.box.rotate(row.secrets)
                    s.add(row)
                    count += 1
        return count

    # -- what the API shows ------------------------------------------------------------------
    def _fresh_filter(self, row: SinkRow, after: int) -> Any:
        o = outbox_t
        return sa.and_(
            o.c.client_id == row.client_id,
            o.c.kind == KIND_OF[row.purpose],
            o.c.id > after,
            sa.or_(o.c.sink_id.is_(None), o.c.sink_id == row.id),
        )

    def stats(self, row: SinkRow) -> dict[str, int]:
        """Messages pending, delivered (items), failed requests (refusals too), dead letters."""
        with self.engine.connect() as conn:
            fresh = conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox_t)
                .where(self._fresh_filter(row, row.cursor))
            ).scalar_one()
            owed = conn.execute(
                sa.select(sa.func.count()).where(pending_t.c.sink_id == row.id)
            ).scalar_one()
            dead = conn.execute(
                sa.select(sa.func.count()).where(dead_t.c.sink_id == row.id)
            ).scalar_one()
        return {
            "pending": int(fresh) + int(owed),
            "delivered": row.delivered,
            "failed": row.failed_attempts,
            "dead_letters": int(dead),
        }

    def owed_and_dead(self) -> dict[int, tuple[int, int]]:
        """Every sink's messages owed (as ``stats``' ``pending``) and dead letters, in
        three grouped queries whatever the number of sinks (for ``/metrics``)."""
        o, s = outbox_t, sinks_t
        kind = sa.case(*((s.c.purpose == p, k) for p, k in KIND_OF.items()), else_=s.c.purpose)
        fresh = (
            sa.select(s.c.id, sa.func.count(o.c.id))
            .select_from(
                s.join(
                    o,
                    sa.and_(
                        o.c.client_id == s.c.client_id,
                        o.c.kind == kind,
                        o.c.id > s.c.cursor,
                        sa.or_(o.c.sink_id.is_(None), o.c.sink_id == s.c.id),
                    ),
                )
            )
            .group_by(s.c.id)
        )

        def per_sink(table: sa.Table) -> Any:
            return sa.select(table.c.sink_id, sa.func.count()).group_by(table.c.sink_id)

        with self.engine.connect() as conn:
            owed: dict[int, int] = {int(i): int(n) for i, n in conn.execute(fresh)}
            for i, n in conn.execute(per_sink(pending_t)):
                owed[int(i)] = owed.get(int(i), 0) + int(n)
            dead = {int(i): int(n) for i, n in conn.execute(per_sink(dead_t))}
        return {i: (owed.get(i, 0), dead.get(i, 0)) for i in owed.keys() | dead.keys()}

    # -- dead letters, re-sending and replay ----------------------------------------------
    def dead_letters(self, sink_id: int, after_id: int = 0, limit: int = 100) -> list[DeadLetter]:
        with self._session() as s:
            q = (
                select(DeadLetter)
                .where(DeadLetter.sink_id == sink_id, DeadLetter.id > after_id)  # type: ignore[operator]
                .order_by(DeadLetter.id)  # type: ignore[arg-type]
                .limit(limit)
            )
            return list(s.exec(q))

    def _dead_filter(self, sink_id: int, ids: Sequence[int] | None) -> Any:
        cond = dead_t.c.sink_id == sink_id
        return cond if ids is None else sa.and_(cond, dead_t.c.id.in_(list(ids)))

    def resend_dead(self, sink: SinkRow, ids: Sequence[int] | None, now: datetime) -> int:
        """Queue dead letters (``ids``, or all) for the sink again, as new messages."""
        o = outbox_t
        chosen = sa.select(dead_t.c.outbox_id).where(self._dead_filter(sink.id or 0, ids))
        source = (
            sa.select(o.c.client_id, o.c.kind, o.c.device_id, o.c.ref_id, o.c.payload,
                      *_aimed_at(sink, now))
            .where(o.c.id.in_(chosen))
            .order_by(o.c.id)
        )  # fmt: skip
        with db.write_tx(self.engine) as conn:
            count = _queue(conn, source)
            conn.execute(sa.delete(dead_t).where(self._dead_filter(sink.id or 0, ids)))
            return count

    def discard_dead(self, sink_id: int, ids: Sequence[int] | None) -> int:
        with db.write_tx(self.engine) as conn:
            return int(
                conn.execute(sa.delete(dead_t).where(self._dead_filter(sink_id, ids))).rowcount
            )

    def replay(
        self,
        sink: SinkRow,
        start: datetime,
        end: datetime,
        device_ids: Sequence[int] | None,
        now: datetime,
    ) -> int:
        """Queue the client's locations (or alerts) with a fix time in [start, end) for
        this sink again, oldest first; the number queued."""
        if end <= start:
            raise Invalid("to", "must be after 'from'")
        if sink.purpose == "locations":
            p, d = positions_t, devices_t
            what = sa.select(
                d.c.client_id, sa.literal("location").label("kind"), p.c.device_id,
                p.c.id.label("ref_id"), sa.literal_column("'{}'").label("payload"),
                *_aimed_at(sink, now),
            ).join(d, p.c.device_id == d.c.id)  # fmt: skip
            client, table = d.c.client_id, p
        else:
            a = alerts_t
            what = sa.select(
                a.c.client_id, sa.literal("alert").label("kind"), a.c.device_id,
                a.c.id.label("ref_id"), a.c.payload, *_aimed_at(sink, now),
            )  # fmt: skip
            client, table = a.c.client_id, a
        source = what.where(
            client == sink.client_id, table.c.fix_time >= start, table.c.fix_time < end
        ).order_by(table.c.fix_time, table.c.id)
        if device_ids is not None:
            source = source.where(table.c.device_id.in_(list(device_ids)))
        with db.write_tx(self.engine) as conn:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(source.order_by(None).subquery())
            ).scalar_one()
            if count > MAX_REPLAY:
                raise Invalid(
                    "from", f"{count} messages in that range; at most {MAX_REPLAY} per replay"
                )
            return _queue(conn, source)

    # -- identity ------------------------------------------------------------------------------
    def hub_id(self) -> str:
        """This hub's id, made once with its database (by migration 0004)."""
        if self._hub_id is None:
            with self._session(write=True) as s, s.begin():
                row = s.get(HubMeta, "hub_id")
                if row is None:  # someone deleted it: a new one is as good
                    row = HubMeta(key="hub_id", value=new_hub_id())
                    s.add(row)
                self._hub_id = row.value
        return self._hub_id

    def skip_outbox_ids(self, now: datetime) -> int:
        """Make the next outbox id at least ``now`` in microseconds since 1970 (a no-op
        when it is past that already); return the lowest id it may give next."""
        floor = int(now.timestamp() * OUTBOX_IDS_PER_S)
        with db.write_tx(self.engine) as conn:
            db.lock_outbox(conn)
            if conn.dialect.name == "sqlite":
                seq = conn.exec_driver_sql(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'"
                ).scalar()
                if seq is None:
                    conn.exec_driver_sql(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)", (floor,)
                    )
                elif seq < floor:
                    conn.exec_driver_sql(
                        "UPDATE sqlite_sequence SET seq = ? WHERE name = 'outbox'", (floor,)
                    )
                return max(int(seq or 0), floor) + 1
            used = conn.execute(
                sa.text(
                    "SELECT COALESCE(pg_sequence_last_value(s::regclass), 0) FROM"
                    " (SELECT pg_get_serial_sequence('outbox', 'id') AS s) AS q"
                )
            ).scalar_one()
            if used < floor:
                conn.execute(
                    sa.text("SELECT setval(pg_get_serial_sequence('outbox', 'id'), :floor)"),
                    {"floor": floor},
                )
            return max(int(used), floor) + 1

    # -- the delivery worker's side --------------------------------------------------------
    def pending(self, sink_id: int) -> list[PendingRow]:
        t = pending_t
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    t.c.outbox_id,
                    t.c.device_id,
                    t.c.attempts,
                    t.c.next_attempt_at,
                    t.c.first_failed_at,
                    t.c.delivery_id,
                    t.c.last_error,
                )
                .where(t.c.sink_id == sink_id)
                .order_by(t.c.outbox_id)
            )
            return [PendingRow(*r) for r in rows]

    def fetch(
        self, row: SinkRow, after: int, limit: int, upto: int | None = None
    ) -> list[OutboxRow]:
        """Outbox messages for the sink after ``after`` (up to ``upto``), oldest first."""
        if self.engine.dialect.name == "sqlite" and row.purpose == "locations":
            return self._sqlite_fetch(row, after, limit, upto)
        o = outbox_t
        payload = o.c.payload if row.purpose == "alerts" else sa.null()  # locations: empty
        q = sa.select(o.c.id, o.c.device_id, o.c.ref_id, payload).where(
            self._fresh_filter(row, after)
        )
        if upto is not None:
            q = q.where(o.c.id <= upto)
        with self.engine.connect() as conn:
            return [OutboxRow(*r) for r in conn.execute(q.order_by(o.c.id).limit(limit))]

    def _sqlite_fetch(
        self, row: SinkRow, after: int, limit: int, upto: int | None
    ) -> list[OutboxRow]:
        """``fetch`` of location messages on SQLite, through the driver (the hot path)."""
        query = (
            "SELECT id, device_id, ref_id FROM outbox WHERE client_id = ? AND kind = ?"
            " AND id > ? AND (sink_id IS NULL OR sink_id = ?) AND id <= ? ORDER BY id LIMIT ?"
        )
        top = upto if upto is not None else 2**62
        params = (row.client_id, KIND_OF[row.purpose], after, row.id, top, limit)
        with self.engine.connect() as conn:
            return [OutboxRow(i, d, r, {}) for i, d, r in conn.exec_driver_sql(query, params)]

    def rows(self, sink_id: int, outbox_ids: Iterable[int]) -> dict[int, OutboxRow]:
        o = outbox_t
        ids = list(outbox_ids)
        if not ids:
            return {}
        with self.engine.connect() as conn:
            q = sa.select(o.c.id, o.c.device_id, o.c.ref_id, o.c.payload).where(o.c.id.in_(ids))
            return {r[0]: OutboxRow(*r) for r in conn.execute(q)}

    def client_info(self, client_id: int) -> dict[str, Any]:
        c = clients_t
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(c.c.id, c.c.name, c.c.timezone).where(c.c.id == client_id)
            ).one()
        return {"id": row[0], "name": row[1], "timezone": row[2]}

    def location_items(
        self,
        rows: Sequence[OutboxRow],
        client: dict[str, Any],
        fields: Sequence[str] | None = None,
    ) -> dict[int, dict[str, Any]]:
        """The location item of each outbox row (rows whose position is gone are left
        out); with ``fields``, only those position fields (see ``Format.fields``)."""
        by_position = {r.ref_id: r.id for r in rows if r.ref_id is not None}
        if not by_position:
            return {}
        if self.engine.dialect.name == "sqlite":
            return self._sqlite_location_items(by_position, client, fields)
        return self._core_location_items(by_position, client, fields)

    def _core_location_items(
        self,
        by_position: dict[int, int],
        client: dict[str, Any],
        fields: Sequence[str] | None = None,
    ) -> dict[int, dict[str, Any]]:
        p, d = positions_t, devices_t
        wanted = None if fields is None else {"id", "device_id", *fields}
        columns = [c for c in _ITEM_COLUMNS if wanted is None or c.name in wanted]
        q = (
            sa.select(*columns, *(d.c[n].label(f"device_{n}") for n in _DEVICE_COLUMNS))
            .join(d, p.c.device_id == d.c.id)
            .where(p.c.id.in_(list(by_position)))
        )
        out: dict[int, dict[str, Any]] = {}
        devices: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(q).mappings():
                item = {c.name: r[c.name] for c in columns}
                device = devices.get(item["device_id"])
                if device is None:
                    device = devices[item["device_id"]] = {"id": item["device_id"]}
                    device.update({n: r[f"device_{n}"] for n in _DEVICE_COLUMNS})
                item["device"] = device
                item["client"] = client
                out[by_position[item["id"]]] = item
            _mark_imei_first(conn, devices.values())
        return out

    def _sqlite_location_items(
        self,
        by_position: dict[int, int],
        client: dict[str, Any],
        fields: Sequence[str] | None = None,
    ) -> dict[int, dict[str, Any]]:
        """``location_items`` on SQLite: the driver's rows decoded here (orjson, the C
        ``fromisoformat``), as the ingest path does; SQLAlchemy's per-value processing
        would cost most of a batch's delivery."""
        names = _ITEM_NAMES
        if fields is not None:
            wanted = {"id", "device_id", *fields}
            names = tuple(n for n in _ITEM_NAMES if n in wanted)
        times = [k for k in ("fix_time", "server_time") if k in names]
        docs = [k for k in ("sensors", "poi_ids", "poi_group_ids") if k in names]
        flags = [k for k in ("valid", "ignition") if k in names]
        select = ", ".join([*(f"p.{n}" for n in names), *(f"d.{n}" for n in _DEVICE_COLUMNS)])
        width = len(names)
        out: dict[int, dict[str, Any]] = {}
        devices: dict[int, dict[str, Any]] = {}
        parsed: dict[str, datetime] = {}
        ids = list(by_position)
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 1000):
                part = ids[i : i + 1000]
                marks = ",".join("?" * len(part))
                query = f"SELECT {select} {_SQLITE_FROM} WHERE p.id IN ({marks})"
                for r in conn.exec_driver_sql(query, tuple(part)):
                    item = dict(zip(names, r[:width], strict=True))
                    for key in times:  # a batch's positions share their server time
                        text = item[key]
                        when = parsed.get(text)
                        if when is None:
                            when = parsed[text] = _sqlite_time(text)
                        item[key] = when
                    for key in docs:
                        value = item[key]
                        item[key] = orjson.loads(value) if value is not None else None
                    for key in flags:
                        if item[key] is not None:
                            item[key] = bool(item[key])
                    device_id = item["device_id"]
                    device = devices.get(device_id)
                    if device is None:
                        extra = dict(zip(_DEVICE_COLUMNS, r[width:], strict=True))
                        extra["tags"] = orjson.loads(extra["tags"]) if extra["tags"] else []
                        device = devices[device_id] = {"id": device_id, **extra}
                    item["device"] = device
                    item["client"] = client
                    out[by_position[item["id"]]] = item
            _mark_imei_first(conn, devices.values())
        return out

    def client_devices(self, client_id: int) -> list[dict[str, Any]]:
        """The client's devices as location items carry them (``device``, with
        ``imei_first``), by id: what a format's ``device_warnings`` looks at."""
        d = devices_t
        q = sa.select(d.c.id, *(d.c[n] for n in _DEVICE_COLUMNS)).where(d.c.client_id == client_id)
        with self.engine.connect() as conn:
            devices = [dict(r) for r in conn.execute(q.order_by(d.c.id)).mappings()]
            _mark_imei_first(conn, devices)
        return devices

    def mark_inflight(self, sink_id: int, upto: int) -> None:
        with db.write_tx(self.engine) as conn:
            conn.execute(
                sa.update(sinks_t).where(sinks_t.c.id == sink_id).values(inflight_upto=upto)
            )

    def label_pending(self, sink_id: int, outbox_ids: Sequence[int], delivery_id: str) -> None:
        """Give pending rows the id of the request that is about to carry them."""
        t = pending_t
        with db.write_tx(self.engine) as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.sink_id == sink_id, t.c.outbox_id.in_(list(outbox_ids)))
                .values(delivery_id=delivery_id)
            )

    def save_progress(self, sink_id: int, progress: Progress) -> None:
        t = pending_t
        with db.write_tx(self.engine) as conn:
            changed = [p.outbox_id for p in progress.pending]
            gone = progress.removed + changed
            for i in range(0, len(gone), 500):
                conn.execute(
                    sa.delete(t).where(t.c.sink_id == sink_id, t.c.outbox_id.in_(gone[i : i + 500]))
                )
            if progress.pending:
                conn.execute(sa.insert(t), [p.as_row(sink_id) for p in progress.pending])
            if progress.dead:
                conn.execute(sa.insert(dead_t), [{"sink_id": sink_id, **d} for d in progress.dead])
            values: dict[str, Any] = dict(progress.status)
            if progress.cursor is not None:
                values["cursor"] = progress.cursor
            if progress.clear_inflight:
                values["inflight_upto"] = None
            if progress.delivered:
                values["delivered"] = sinks_t.c.delivered + progress.delivered
            if progress.failed_attempts:
                values["failed_attempts"] = sinks_t.c.failed_attempts + progress.failed_attempts
            if values:
                conn.execute(sa.update(sinks_t).where(sinks_t.c.id == sink_id).values(**values))

    def prune_outbox(self) -> int:
        """Delete outbox rows that every sink concerned is done with; how many."""
        o = outbox_t
        with self.engine.connect() as conn:
            tops = conn.execute(
                sa.select(o.c.client_id, o.c.kind, sa.func.max(o.c.id)).group_by(
                    o.c.client_id, o.c.kind
                )
            ).all()
            sinks = conn.execute(
                sa.select(sinks_t.c.client_id, sinks_t.c.purpose, sinks_t.c.cursor)
            ).all()
        floor: dict[tuple[int, str], int] = {}
        for client_id, purpose, cursor in sinks:
            key = (client_id, KIND_OF.get(purpose, purpose))
            floor[key] = min(floor.get(key, cursor), cursor)
        deleted = 0
        kept = sa.union(sa.select(pending_t.c.outbox_id), sa.select(dead_t.c.outbox_id))
        for client_id, kind, top in tops:
            bound = floor.get((client_id, kind), top)
            with db.write_tx(self.engine) as conn:
                deleted += conn.execute(
                    sa.delete(o).where(
                        o.c.client_id == client_id,
                        o.c.kind == kind,
                        o.c.id <= bound,
                        o.c.id.not_in(kept),
                    )
                ).rowcount
        return deleted
