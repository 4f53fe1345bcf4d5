"""Positions: the ingest hot path (Core bulk statements) and history queries."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from hub import db
from hub.fix import PositionFix
from hub.models import Connection, Device, Position, SourceCursor, sqlite_timestamp

positions_t: sa.Table = Position.__table__  # type: ignore[attr-defined]
devices_t: sa.Table = Device.__table__  # type: ignore[attr-defined]
cursors_t: sa.Table = SourceCursor.__table__  # type: ignore[attr-defined]
connections_t: sa.Table = Connection.__table__  # type: ignore[attr-defined]

POSITION_COLUMNS = (
    "id",
    "device_id",
    "connection_id",
    "fix_time",
    "server_time",
    "lat",
    "lon",
    "altitude_m",
    "speed_kmh",
    "course_deg",
    "satellites",
    "valid",
    "ignition",
    "accuracy_m",
    "sensors",
    "raw",
    "source_ip",
    "source_port",
)


@dataclass(slots=True)
class IngestItem:
    """One fix on its way into the store."""

    device_id: int
    connection_id: int | None
    fix: PositionFix


@dataclass(slots=True)
class CursorUpdate:
    device_id: int
    connection_id: int
    cursor: Any  # hub.source.Cursor


@dataclass(slots=True)
class WriteResult:
    """What one batch changed: new rows (as dicts) and the client of each device."""

    inserted: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    unknown_device: int = 0
    clients: dict[int, int] = field(default_factory=dict)
    moved_latest: set[int] = field(default_factory=set)


def _insert(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"unsupported database dialect {dialect!r}")


class _BulkStatements:
    """The four bulk statements of a batch, run through SQLAlchemy Core (any dialect)."""

    def __init__(self, dialect: str) -> None:
        ins = _insert(dialect)
        self.insert_positions = (
            ins(positions_t)
            .on_conflict_do_nothing(index_elements=["device_id", "fix_time"])
            .returning(positions_t.c.id, positions_t.c.device_id, positions_t.c.fix_time)
        )
        cur = ins(cursors_t)
        self.upsert_cursor = cur.on_conflict_do_update(
            index_elements=["device_id"],
            set_={
                "connection_id": cur.excluded.connection_id,
                "last_fix_time": cur.excluded.last_fix_time,
                "state": cur.excluded.state,
                "updated_at": cur.excluded.updated_at,
            },
        )
        self.move_latest = (
            sa.update(devices_t)
            .where(devices_t.c.id == sa.bindparam("b_id"))
            .where(
                sa.or_(
                    devices_t.c.last_fix_time.is_(None),
                    devices_t.c.last_fix_time
                    < sa.bindparam("b_t", type_=devices_t.c.last_fix_time.type),
                )
            )
            .values(last_fix_time=sa.bindparam("b_t"))
        )
        self.count_received = (
            sa.update(connections_t)
            .where(connections_t.c.id == sa.bindparam("b_id"))
            .values(positions_received=connections_t.c.positions_received + sa.bindparam("b_n"))
        )

    def insert_new(
        self, conn: sa.Connection, rows: list[dict[str, Any]]
    ) -> list[tuple[int, int, datetime]]:
        """Insert ``rows`` that are not stored yet: (id, device id, fix time) of each new one."""
        return [tuple(r) for r in conn.execute(self.insert_positions, rows)]  # type: ignore[misc]

    def execute(self, conn: sa.Connection, stmt: Any, rows: list[dict[str, Any]]) -> int:
        return conn.execute(stmt, rows).rowcount


class _SqliteBulkStatements(_BulkStatements):
    """The same statements on SQLite, compiled once and run with the driver's
    ``executemany`` on values we encode ourselves.

    SQLAlchemy's per-row bind processing costs about three times what SQLite itself
    spends on an insert; this keeps the statements SQLAlchemy's while skipping that.
    Rows are vetted for duplicates with one indexed query under the write lock
    (``BEGIN IMMEDIATE``), so the insert needs no ``ON CONFLICT``, and the new rows'
    ids follow from ``last_insert_rowid()``: SQLite numbers them consecutively.
    """

    def __init__(self) -> None:
        super().__init__("sqlite")
        dialect = sqlite.dialect()
        self._insert_sql, self._insert_order = _compiled(
            sa.insert(positions_t).values({c: sa.bindparam(c) for c in POSITION_COLUMNS[1:]}),
            dialect,
        )
        self._compiled = {
            id(self.upsert_cursor): _compiled(self.upsert_cursor, dialect),
            id(self.move_latest): _compiled(self.move_latest, dialect),
            id(self.count_received): _compiled(self.count_received, dialect),
        }

    def insert_new(
        self, conn: sa.Connection, rows: list[dict[str, Any]]
    ) -> list[tuple[int, int, datetime]]:
        device_ids = sorted({r["device_id"] for r in rows})
        earliest = sqlite_timestamp(min(r["fix_time"] for r in rows))
        marks = ",".join("?" * len(device_ids))
        query = f"SELECT device_id, fix_time FROM positions WHERE fix_time >= ? AND device_id IN ({marks})"  # noqa: S608 - placeholders only
        stored = {tuple(r) for r in conn.exec_driver_sql(query, (earliest, *device_ids))}
        stamps = [sqlite_timestamp(r["fix_time"]) for r in rows]
        fresh = [
            (r, t) for r, t in zip(rows, stamps, strict=True) if (r["device_id"], t) not in stored
        ]
        if not fresh:
            return []
        conn.exec_driver_sql(self._insert_sql, _position_tuples(fresh, self._insert_order))
        new = [r for r, _ in fresh]
        last = int(conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
        first = last - len(new) + 1
        return [(first + i, r["device_id"], r["fix_time"]) for i, r in enumerate(new)]

    def execute(self, conn: sa.Connection, stmt: Any, rows: list[dict[str, Any]]) -> int:
        sql, order = self._compiled[id(stmt)]
        return conn.exec_driver_sql(sql, [_encode(r, order) for r in rows]).rowcount


def _compiled(stmt: Any, dialect: sa.Dialect) -> tuple[str, tuple[str, ...]]:
    compiled = stmt.compile(dialect=dialect)
    return compiled.string, tuple(compiled.positiontup or ())


def _encode(row: dict[str, Any], order: tuple[str, ...]) -> tuple[Any, ...]:
    """``row``'s values in statement order, as SQLite keeps them."""
    out = []
    for name in order:
        value = row[name]
        if isinstance(value, datetime):
            value = sqlite_timestamp(value)
        elif isinstance(value, dict | list):
            value = json.dumps(value)
        out.append(value)
    return tuple(out)


def _position_tuples(
    rows: list[tuple[dict[str, Any], str]], order: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    """(position row, its fix time as stored) pairs as SQLite keeps them: ``_encode``
    unrolled, for the hot path."""
    assert order == POSITION_COLUMNS[1:], order
    server_time = sqlite_timestamp(rows[0][0]["server_time"])  # one per batch
    dumps = json.dumps
    return [
        (
            r["device_id"], r["connection_id"], fix_time, server_time,
            r["lat"], r["lon"], r["altitude_m"], r["speed_kmh"], r["course_deg"],
            r["satellites"], r["valid"], r["ignition"], r["accuracy_m"],
            dumps(r["sensors"]) if r["sensors"] else "{}",
            None if r["raw"] is None else dumps(r["raw"]),
            r["source_ip"], r["source_port"],
        )
        for r, fix_time in rows
    ]  # fmt: skip


class PositionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        name = engine.dialect.name
        self._bulk = _SqliteBulkStatements() if name == "sqlite" else _BulkStatements(name)

    # -- the hot path -------------------------------------------------------------------
    def write_batch(
        self,
        items: Sequence[IngestItem],
        cursors: Sequence[CursorUpdate] = (),
        server_time: datetime | None = None,
    ) -> WriteResult:
        """Store ``items`` and advance ``cursors`` in one transaction.

        Repeated (device, fix time) pairs are dropped silently; fixes of devices that no
        longer exist are dropped and counted; a fix older than its device's latest is
        stored but does not move "latest".
        """
        now = server_time or datetime.now(UTC)
        result = WriteResult()
        bulk = self._bulk
        with db.write_tx(self.engine) as conn:
            device_ids = {it.device_id for it in items} | {c.device_id for c in cursors}
            if device_ids:
                rows = conn.execute(
                    sa.select(devices_t.c.id, devices_t.c.client_id).where(
                        devices_t.c.id.in_(device_ids)
                    )
                )
                result.clients = {int(i): int(c) for i, c in rows}
            params: dict[tuple[int, datetime], dict[str, Any]] = {}
            for it in items:
                if it.device_id not in result.clients:
                    result.unknown_device += 1
                    continue
                fix = it.fix
                t = fix.fix_time.astimezone(UTC)
                key = (it.device_id, t)
                if key in params:
                    result.duplicates += 1
                    continue
                params[key] = {
                    "device_id": it.device_id,
                    "connection_id": it.connection_id,
                    "fix_time": t,
                    "server_time": now,
                    "lat": fix.lat,
                    "lon": fix.lon,
                    "altitude_m": fix.altitude_m,
                    "speed_kmh": fix.speed_kmh,
                    "course_deg": fix.course_deg,
                    "satellites": fix.satellites,
                    "valid": fix.valid,
                    "ignition": fix.ignition,
                    "accuracy_m": fix.accuracy_m,
                    "sensors": fix.sensors,
                    "raw": fix.raw,
                    "source_ip": fix.source_ip,
                    "source_port": fix.source_port,
                }
            if params:
                inserted = bulk.insert_new(conn, list(params.values()))
                result.duplicates += len(params) - len(inserted)
                newest: dict[int, datetime] = {}
                received: dict[int, int] = {}
                for pid, device_id, fix_time in inserted:
                    row = params[(device_id, fix_time)]
                    row["id"] = pid
                    result.inserted.append(row)
                    if device_id not in newest or fix_time > newest[device_id]:
                        newest[device_id] = fix_time
                    if row["connection_id"] is not None:
                        received[row["connection_id"]] = received.get(row["connection_id"], 0) + 1
                if newest:
                    moved = bulk.execute(
                        conn, bulk.move_latest, [{"b_id": d, "b_t": t} for d, t in newest.items()]
                    )
                    if moved == len(newest):
                        result.moved_latest = set(newest)
                    else:
                        result.moved_latest = self._latest_equal(conn, newest)
                if received:
                    bulk.execute(
                        conn,
                        bulk.count_received,
                        [{"b_id": c, "b_n": n} for c, n in received.items()],
                    )
            live_cursors = [c for c in cursors if c.device_id in result.clients]
            if live_cursors:
                bulk.execute(
                    conn,
                    bulk.upsert_cursor,
                    [
                        {
                            "device_id": c.device_id,
                            "connection_id": c.connection_id,
                            "last_fix_time": c.cursor.last_fix_time,
                            "state": c.cursor.state,
                            "updated_at": now,
                        }
                        for c in live_cursors
                    ],
                )
        result.inserted.sort(key=lambda r: (r["fix_time"], r["id"]))
        return result

    def _latest_equal(self, conn: sa.Connection, newest: dict[int, datetime]) -> set[int]:
        rows = conn.execute(
            sa.select(devices_t.c.id, devices_t.c.last_fix_time).where(
                devices_t.c.id.in_(list(newest))
            )
        )
        return {int(i) for i, t in rows if t is not None and t == newest[int(i)]}

    # -- queries ----------------------------------------------------------------------
    def latest(
        self, device_ids: Iterable[int] | None = None, client_id: int | None = None
    ) -> list[dict[str, Any]]:
        """The latest position of each device (devices without positions are left out)."""
        p, d = positions_t, devices_t
        q = (
            sa.select(p)
            .join(d, sa.and_(p.c.device_id == d.c.id, p.c.fix_time == d.c.last_fix_time))
            .order_by(p.c.device_id)
        )
        if device_ids is not None:
            q = q.where(d.c.id.in_(list(device_ids)))
        if client_id is not None:
            q = q.where(d.c.client_id == client_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def history(
        self,
        device_ids: Sequence[int],
        start: datetime | None = None,
        end: datetime | None = None,
        cursor: str | None = None,
        limit: int = 1000,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Positions of ``device_ids`` in [start, end) by fix time, one page at a time.

        Returns the page and the cursor of the next page (``None`` at the end).
        """
        p = positions_t
        q = sa.select(p).where(p.c.device_id.in_(list(device_ids)))
        if start is not None:
            q = q.where(p.c.fix_time >= start)
        if end is not None:
            q = q.where(p.c.fix_time < end)
        if cursor:
            after_time, after_id = decode_cursor(cursor)
            q = q.where(
                sa.or_(
                    p.c.fix_time > after_time,
                    sa.and_(p.c.fix_time == after_time, p.c.id > after_id),
                )
            )
        q = q.order_by(p.c.fix_time, p.c.id).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = encode_cursor(rows[-1]["fix_time"], rows[-1]["id"])
        return rows, next_cursor

    def since(
        self,
        client_id: int | None,
        since: datetime | None = None,
        cursor: str | None = None,
        limit: int = 1000,
    ) -> tuple[list[dict[str, Any]], str | None, str | None]:
        """Positions of a client's devices (``None``: all) in arrival order.

        ``since`` keeps fixes from that time on; ``cursor`` continues after a previous
        page.  Arrival order means a fix that arrives late, with an older time than the
        ones before it, is still seen by a client that follows the cursor.  Returns the
        page, the cursor of the next page (``None`` when this one is the last) and the
        cursor to resume from later.
        """
        p, d = positions_t, devices_t
        q = sa.select(p)
        if client_id is not None:
            q = q.join(d, p.c.device_id == d.c.id).where(d.c.client_id == client_id)
        if since is not None:
            q = q.where(p.c.fix_time >= since)
        if cursor:
            q = q.where(p.c.id > decode_arrival_cursor(cursor))
        q = q.order_by(p.c.id).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        more = len(rows) > limit
        rows = rows[:limit]
        resume = encode_arrival_cursor(rows[-1]["id"]) if rows else cursor
        return rows, resume if more else None, resume

    def count(self, device_id: int | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(positions_t)
        if device_id is not None:
            q = q.where(positions_t.c.device_id == device_id)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())


def encode_cursor(fix_time: datetime, row_id: int) -> str:
    raw = json.dumps([fix_time.astimezone(UTC).isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        t, i = json.loads(raw)
        return datetime.fromisoformat(t), int(i)
    except (ValueError, TypeError) as exc:
        raise ValueError("cursor: not a cursor this API returned") from exc


def encode_arrival_cursor(row_id: int) -> str:
    raw = json.dumps(["arrival", row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_arrival_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        tag, row_id = json.loads(raw)
        if tag != "arrival":
            raise ValueError(tag)
        return int(row_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("cursor: not a cursor this API returned") from exc


def position_json(row: dict[str, Any], *, include_raw: bool = False) -> dict[str, Any]:
    """A stored position as the API and the live feed show it."""
    out = {k: row.get(k) for k in POSITION_COLUMNS if k != "raw" or include_raw}
    for key in ("fix_time", "server_time"):
        if isinstance(out.get(key), datetime):
            out[key] = out[key].astimezone(UTC).isoformat().replace("+00:00", "Z")
    return out
