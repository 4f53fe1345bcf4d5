"""Positions: the ingest hot path (Core bulk statements) and history queries."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine

from hub import db, rawsql
from hub.derivation import (
    CLIENT_VERSIONS,
    ClientVersions,
    Derivation,
    PendingAlert,
    mark_seen_now,
)
from hub.fix import PositionFix
from hub.models import (
    alerts_t,
    connections_t,
    cursors_t,
    devices_t,
    outbox_t,
    positions_t,
    sqlite_timestamp,
    states_t,
)
from hub.timestamps import utc_text
from hub.writer_connection import WriterConnection

log = logging.getLogger(__name__)

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
    "event_code",
    "odometer_km",
    "virtual_odometer_km",
    "hours",
    "virtual_hours",
    "poi_ids",
    "poi_group_ids",
    "place",
    "alerts_count",
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
    alerts: list[dict[str, Any]] = field(default_factory=list)  # alert objects, stored
    came_online: list[int] = field(default_factory=list)  # devices now online
    outbox_clients: set[int] = field(default_factory=set)  # clients with new outbox rows
    change_head: int | None = None  # the change log's newest id once committed, if asked


def _insert(dialect: str) -> Any:
    if dialect == "postgresql":  # imported here: SQLite's hub never loads the dialect
        from sqlalchemy.dialects.postgresql import insert

        return insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"unsupported database dialect {dialect!r}")


@dataclass(slots=True)
class _BatchContext:
    clients: dict[int, int] = field(default_factory=dict)  # device -> client
    versions: list[ClientVersions] = field(default_factory=list)
    relayed: set[int] = field(default_factory=set)  # clients with a location relay


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
        st = ins(states_t)
        self.upsert_state = st.on_conflict_do_update(
            index_elements=["device_id"],
            set_={"state": st.excluded.state, "updated_at": st.excluded.updated_at},
        )
        self.count_received = (
            sa.update(connections_t)
            .where(connections_t.c.id == sa.bindparam("b_id"))
            .values(positions_received=connections_t.c.positions_received + sa.bindparam("b_n"))
        )

    def add_locations(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """Outbox rows for new positions: (client id, device id, position id, time)."""
        conn.execute(sa.insert(outbox_t), rows)

    def find_new(
        self, conn: sa.Connection, rows: list[dict[str, Any]], *, known_new: bool = False
    ) -> list[dict[str, Any]]:
        """Those of ``rows`` whose (device, fix time) is not stored yet (all of them,
        without a query, when the caller knows: ``known_new``)."""
        if known_new:
            return rows
        p = positions_t
        stored = {
            (d, t)
            for d, t in conn.execute(
                sa.select(p.c.device_id, p.c.fix_time).where(
                    p.c.device_id.in_({r["device_id"] for r in rows}),
                    p.c.fix_time >= min(r["fix_time"] for r in rows),
                )
            )
        }
        return [r for r in rows if (r["device_id"], r["fix_time"]) not in stored]

    def insert(
        self, conn: sa.Connection, rows: list[dict[str, Any]]
    ) -> list[tuple[int, int, datetime]]:
        """Insert new ``rows``: (id, device id, fix time) of each one stored.  (A row another
        writer stored in the meantime is skipped.)"""
        return [tuple(r) for r in conn.execute(self.insert_positions, rows)]  # type: ignore[misc]

    def execute(self, conn: sa.Connection, stmt: Any, rows: list[dict[str, Any]]) -> int:
        return conn.execute(stmt, rows).rowcount

    def batch_context(self, conn: sa.Connection, device_ids: set[int]) -> _BatchContext:
        """One query for what a batch needs to know of its devices that exist: their
        clients, the clients' versions (``hub.derivation.CLIENT_VERSIONS``) and which of
        the clients have a location relay (a sink of locations)."""
        match, params = rawsql.in_ids(conn, device_ids)
        client_columns = ", ".join(f"c.{n.strip()}" for n in CLIENT_VERSIONS.split(","))
        sql = (
            f"SELECT d.id, {client_columns}, EXISTS (SELECT 1 FROM sinks s"  # noqa: S608
            " WHERE s.purpose = 'locations' AND s.client_id = d.client_id)"
            f" FROM devices d JOIN clients c ON c.id = d.client_id WHERE d.id {match}"
        )
        ctx = _BatchContext()
        versions: dict[int, ClientVersions] = {}
        for device_id, *client, relays in rawsql.fetchall(conn, sql, params):
            ctx.clients[device_id] = client[0]
            versions[client[0]] = tuple(client)  # type: ignore[assignment]
            if relays:
                ctx.relayed.add(client[0])
        ctx.versions = list(versions.values())
        return ctx


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
            id(self.upsert_state): _compiled(self.upsert_state, dialect),
        }
        # how each bound value is kept: times as text, mappings as JSON, the rest as is
        self._encoders = {
            key: tuple(_encoder_for(stmt_name) for stmt_name in order)
            for key, (_, order) in self._compiled.items()
        }

    def find_new(
        self, conn: sa.Connection, rows: list[dict[str, Any]], *, known_new: bool = False
    ) -> list[dict[str, Any]]:
        if known_new:
            for r in rows:
                r[_STAMP] = sqlite_timestamp(r["fix_time"])
            return rows
        device_ids = sorted({r["device_id"] for r in rows})
        earliest = sqlite_timestamp(min(r["fix_time"] for r in rows))
        marks = ",".join("?" * len(device_ids))
        query = f"SELECT device_id, fix_time FROM positions WHERE fix_time >= ? AND device_id IN ({marks})"  # noqa: S608 - placeholders only
        stored = set(rawsql.fetchall(conn, query, (earliest, *device_ids)))
        new = []
        for r in rows:
            r[_STAMP] = stamp = sqlite_timestamp(r["fix_time"])
            if (r["device_id"], stamp) not in stored:
                new.append(r)
        return new

    @staticmethod
    def move_latest_seen(
        conn: sa.Connection, device: int, fix_time: datetime, now: datetime
    ) -> bool:
        """``move_latest`` and the derivation's ``last_seen_at`` for one device in one
        statement; whether its latest moved (to ``fix_time``, a fix just stored)."""
        t = sqlite_timestamp(fix_time)
        rows = rawsql.fetchall(
            conn,
            "UPDATE devices SET last_seen_at = ?, last_fix_time = CASE WHEN"
            " last_fix_time IS NULL OR last_fix_time < ? THEN ? ELSE last_fix_time END"
            " WHERE id = ? RETURNING last_fix_time = ?",
            (sqlite_timestamp(now), t, t, device, t),
        )
        return bool(rows and rows[0][0])

    def add_locations(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        rawsql.executemany(
            conn,
            "INSERT INTO outbox (client_id, kind, device_id, ref_id, payload, created_at)"
            " VALUES (?, 'location', ?, ?, '{}', ?)",
            [
                (r["client_id"], r["device_id"], r["ref_id"], sqlite_timestamp(r["created_at"]))
                for r in rows
            ],
        )

    def insert(
        self, conn: sa.Connection, rows: list[dict[str, Any]]
    ) -> list[tuple[int, int, datetime]]:
        values = _position_tuples(rows, self._insert_order)
        if len(values) == 1:  # a fix alone (a push source's): its id without a query
            last = int(rawsql.insert_one(conn, self._insert_sql, values[0]))
        else:
            rawsql.executemany(conn, self._insert_sql, values)
            last = int(rawsql.fetchall(conn, "SELECT last_insert_rowid()")[0][0])
        first = last - len(rows) + 1
        return [(first + i, r["device_id"], r["fix_time"]) for i, r in enumerate(rows)]

    def execute(self, conn: sa.Connection, stmt: Any, rows: list[dict[str, Any]]) -> int:
        sql, order = self._compiled[id(stmt)]
        encoders = self._encoders[id(stmt)]
        params = [
            tuple([r[n] if f is None else f(r[n]) for n, f in zip(order, encoders, strict=True)])
            for r in rows
        ]
        return rawsql.executemany(conn, sql, params)


class _PgBulkStatements(_BulkStatements):
    """The same statements on PostgreSQL, sent by psycopg, one round trip per stage.

    SQLAlchemy's per-row bind processing (and its multi-row ``VALUES`` for inserts with
    ``RETURNING``) costs the hub far more CPU than PostgreSQL spends storing the rows.
    Here the writes that follow derivation go in one statement (``store_rows``) whose
    rows travel as one JSON document encoded by orjson; cursors (and device states
    outside a batch) go column-wise as binary arrays to one ``unnest`` statement
    (psycopg's text format escapes each string with a regular expression).  Duplicates
    stay PostgreSQL's to settle (``ON CONFLICT``), since other writers (other hub
    processes) may store the same fix.
    """

    def __init__(self) -> None:
        super().__init__("postgresql")
        self._by_stmt = {
            id(self.upsert_cursor): self._upsert_cursors,
            id(self.upsert_state): self._upsert_states,
        }

    @staticmethod
    def _cursor(conn: sa.Connection) -> Any:
        return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def find_new(
        self, conn: sa.Connection, rows: list[dict[str, Any]], *, known_new: bool = False
    ) -> list[dict[str, Any]]:
        if known_new:
            return rows
        with self._cursor(conn) as cur:
            cur.execute(
                "SELECT device_id, fix_time FROM positions"
                " WHERE device_id = ANY(%b::int8[]) AND fix_time >= %s",
                (list({r["device_id"] for r in rows}), min(r["fix_time"] for r in rows)),
            )
            stored = set(cur.fetchall())
        return [r for r in rows if (r["device_id"], r["fix_time"]) not in stored]

    def add_locations(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        with self._cursor(conn) as cur:
            cur.execute(
                "INSERT INTO outbox (client_id, kind, device_id, ref_id, payload, created_at)"
                " SELECT c, 'location', d, r, '{}'::jsonb, %s"
                " FROM unnest(%b::int8[], %b::int8[], %b::int8[]) WITH ORDINALITY AS u(c, d, r, n)"
                " ORDER BY n",
                (
                    rows[0]["created_at"],
                    [r["client_id"] for r in rows],
                    [r["device_id"] for r in rows],
                    [r["ref_id"] for r in rows],
                ),
            )

    def execute(self, conn: sa.Connection, stmt: Any, rows: list[dict[str, Any]]) -> int:
        with self._cursor(conn) as cur:
            self._by_stmt[id(stmt)](cur, rows)
            return int(cur.rowcount)

    def store_rows(
        self,
        conn: sa.Connection,
        rows: list[dict[str, Any]],
        states: list[dict[str, Any]],
        seen: list[int],
        now: datetime,
    ) -> tuple[list[tuple[int, int, datetime]], set[int]]:
        """The batch's writes after derivation in one statement: the derived ``states``
        (``device_state`` rows), the position ``rows``, the devices' ``last_seen_at``
        (``seen``) and latest fix, the connections' counts of positions received.

        Returns (id, device id, fix time) of each position stored (a row another writer
        stored meanwhile is skipped) and the devices whose latest is now their newest
        fix of the batch."""
        params = [
            now,
            _json_text(states),
            *_position_columns(rows),
            now,
            seen,
        ]
        with self._cursor(conn) as cur:
            cur.execute(_PG_STORE_ROWS, params)
            inserted, moved = [], set()
            for kind, row_id, device_id, fix_time in cur.fetchall():
                if kind == "p":
                    inserted.append((row_id, device_id, fix_time))
                else:
                    moved.add(row_id)
        return inserted, moved

    @staticmethod
    def _upsert_cursors(cur: Any, rows: list[dict[str, Any]]) -> None:
        last = {r["device_id"]: r for r in rows}  # as executemany: a later row wins
        cur.execute(
            "INSERT INTO source_cursors (device_id, connection_id, last_fix_time, state,"
            " updated_at) SELECT d, c, t, s::jsonb, %s"
            " FROM unnest(%b::int8[], %b::int8[], %b::timestamptz[], %b::text[]) AS u(d, c, t, s)"
            " ON CONFLICT (device_id) DO UPDATE SET connection_id = excluded.connection_id,"
            " last_fix_time = excluded.last_fix_time, state = excluded.state,"
            " updated_at = excluded.updated_at",
            (
                rows[0]["updated_at"],
                list(last),
                [r["connection_id"] for r in last.values()],
                [r["last_fix_time"] for r in last.values()],
                [_json_text(r["state"]) for r in last.values()],
            ),
        )

    @staticmethod
    def _upsert_states(cur: Any, rows: list[dict[str, Any]]) -> None:
        last = {r["device_id"]: r for r in rows}
        cur.execute(
            "INSERT INTO device_state (device_id, state, updated_at) SELECT d, s::jsonb, %s"
            " FROM unnest(%b::int8[], %b::text[]) AS u(d, s)"
            " ON CONFLICT (device_id) DO UPDATE SET state = excluded.state,"
            " updated_at = excluded.updated_at",
            (
                rows[0]["updated_at"],
                list(last),
                [_json_text(r["state"]) for r in last.values()],
            ),
        )


_PG_POSITION_TYPES = {
    "device_id": "int8", "connection_id": "int8", "fix_time": "timestamptz",
    "lat": "float8", "lon": "float8", "altitude_m": "float8", "speed_kmh": "float8",
    "course_deg": "float8", "satellites": "int8", "valid": "bool", "ignition": "bool",
    "accuracy_m": "float8", "sensors": "jsonb", "raw": "jsonb", "source_ip": "text",
    "source_port": "int8", "event_code": "int8", "odometer_km": "float8",
    "virtual_odometer_km": "float8", "hours": "float8", "virtual_hours": "float8",
    "poi_ids": "jsonb", "poi_group_ids": "jsonb", "place": "text", "alerts_count": "int8",
}  # fmt: skip
_PG_ROWS_FROM_JSON = (
    "ROWS FROM (json_to_recordset(%s::json) AS"
    f" ({', '.join(f'{c} {t}' for c, t in _PG_POSITION_TYPES.items())}))"
    f" WITH ORDINALITY AS u({', '.join(_PG_POSITION_TYPES)}, n)"
)
_PG_INSERT_POSITIONS = (
    f"INSERT INTO positions ({', '.join(POSITION_COLUMNS[1:])})"  # noqa: S608 - constants only
    f" SELECT {', '.join(f'u.{c}' if c != 'server_time' else '%s' for c in POSITION_COLUMNS[1:])}"
    f" FROM {_PG_ROWS_FROM_JSON} ORDER BY n"
    " ON CONFLICT (device_id, fix_time) DO NOTHING RETURNING id, device_id, fix_time"
)
"""One statement for the batch's positions, sent as one JSON array of the rows (the
batch's ``server_time`` apart), stored in the rows' order.  One parameter that orjson
encodes costs far less than an array per column, which psycopg dumps in Python."""

_PG_STORE_ROWS = (
    "WITH st AS (INSERT INTO device_state (device_id, state, updated_at)"  # noqa: S608
    " SELECT device_id, state, %s FROM json_to_recordset(%s::json) AS u(device_id int8, state jsonb)"
    " ON CONFLICT (device_id) DO UPDATE SET state = excluded.state,"
    " updated_at = excluded.updated_at),"
    f" ins AS ({_PG_INSERT_POSITIONS}, connection_id),"
    " newest AS (SELECT device_id, max(fix_time) AS t FROM ins GROUP BY device_id),"
    " dev AS (UPDATE devices SET"
    " last_seen_at = CASE WHEN v.s THEN %s ELSE devices.last_seen_at END,"
    " last_fix_time = CASE WHEN v.t IS NOT NULL AND (devices.last_fix_time IS NULL"
    " OR devices.last_fix_time < v.t) THEN v.t ELSE devices.last_fix_time END"
    " FROM (SELECT coalesce(a.id, newest.device_id) AS id, a.id IS NOT NULL AS s, newest.t"
    " FROM unnest(%b::int8[]) AS a(id) FULL JOIN newest ON newest.device_id = a.id) AS v"
    " WHERE devices.id = v.id"
    " RETURNING devices.id, v.t IS NOT NULL AND devices.last_fix_time = v.t AS moved),"
    " cnt AS (UPDATE connections SET positions_received = positions_received + x.n"
    " FROM (SELECT connection_id, count(*) AS n FROM ins WHERE connection_id IS NOT NULL"
    " GROUP BY connection_id) AS x WHERE connections.id = x.connection_id)"
    " SELECT 'p', id, device_id, fix_time FROM ins"
    " UNION ALL SELECT 'd', id, NULL::int8, NULL::timestamptz FROM dev WHERE moved"
)
"""``_PgBulkStatements.store_rows``: data-modifying ``WITH`` queries, each run once."""


def _position_columns(rows: list[dict[str, Any]]) -> list[Any]:
    """The parameters of ``_PG_INSERT_POSITIONS`` for ``rows``."""
    return [rows[0]["server_time"], _json_text(rows)]


def _compiled(stmt: Any, dialect: sa.Dialect) -> tuple[str, tuple[str, ...]]:
    compiled = stmt.compile(dialect=dialect)
    return compiled.string, tuple(compiled.positiontup or ())


_TIME_PARAMS = {"last_fix_time", "updated_at", "b_t"}
_JSON_PARAMS = {"state"}


def _optional_time(value: datetime | None) -> str | None:
    return None if value is None else sqlite_timestamp(value)


def _encoder_for(param: str) -> Any:
    """How a bound parameter of the per-device statements is kept in SQLite."""
    if param in _TIME_PARAMS:
        return _optional_time
    if param in _JSON_PARAMS:
        return _json_text
    return None


def _json_text(value: Any) -> str:
    """JSON as the database keeps it (orjson: this is on the hot path)."""
    return orjson.dumps(value).decode()


_STAMP = "_fix_time_text"  # a row's fix time as SQLite keeps it, computed once


def _position_tuples(rows: list[dict[str, Any]], order: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Position rows as SQLite keeps them: ``_encode`` unrolled, for the hot path."""
    assert order == POSITION_COLUMNS[1:], order
    server_time = sqlite_timestamp(rows[0]["server_time"])  # one per batch
    dumps = _json_text
    return [
        (
            r["device_id"], r["connection_id"], r[_STAMP], server_time,
            r["lat"], r["lon"], r["altitude_m"], r["speed_kmh"], r["course_deg"],
            r["satellites"], r["valid"], r["ignition"], r["accuracy_m"],
            dumps(r["sensors"]) if r["sensors"] else "{}",
            None if r["raw"] is None else dumps(r["raw"]),
            r["source_ip"], r["source_port"],
            r["event_code"], r["odometer_km"], r["virtual_odometer_km"], r["hours"],
            r["virtual_hours"], dumps(r["poi_ids"]) if r["poi_ids"] else "[]",
            dumps(r["poi_group_ids"]) if r["poi_group_ids"] else "[]", r["place"],
            r["alerts_count"],
        )
        for r in rows
    ]  # fmt: skip


def _commit_and_read_head(conn: sa.Connection, sqlite_db: bool) -> int:
    """The change log's newest id as of the batch's commit.

    On SQLite it is read inside the transaction, which holds the write lock: nothing
    commits in between.  On PostgreSQL the batch is committed and the head read in one
    round trip (two statements in one simple query); the transaction SQLAlchemy then
    commits is already over, which psycopg sees and skips.
    """
    if sqlite_db:
        return int(rawsql.fetchall(conn, "SELECT max(id) FROM change_log")[0][0] or 0)
    with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
        cur.execute("COMMIT; SELECT max(id) FROM change_log")
        cur.nextset()
        return int(cur.fetchone()[0] or 0)


class _Deferred(threading.local):
    """What the derivation wrote in this thread's batch (the devices whose
    ``last_seen_at`` it set; on PostgreSQL, the device states too), held until
    ``write_batch`` stores it with its update of the devices' latest fix (on
    PostgreSQL, with all the batch's other writes in one statement).  Outside
    ``write_batch`` (the status watcher's ``went_offline``) they are written at once."""

    active: bool = False
    ids: list[int] | None = None
    states: list[dict[str, Any]] | None = None

    def start(self) -> None:
        self.active, self.ids, self.states = True, None, None

    def take(self) -> tuple[list[int], list[dict[str, Any]]]:
        ids, states = self.ids or [], self.states or []
        self.active, self.ids, self.states = False, None, None
        return ids, states

    def defer_seen(self, conn: sa.Connection, device_ids: list[int], now: datetime) -> None:
        if self.active:
            self.ids = device_ids
        else:
            mark_seen_now(conn, device_ids, now)


class PositionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        name = engine.dialect.name
        self._bulk: _BulkStatements
        if name == "sqlite":
            self._bulk = _SqliteBulkStatements()
        elif name == "postgresql" and engine.dialect.driver == "psycopg":
            self._bulk = _PgBulkStatements()
        else:
            self._bulk = _BulkStatements(name)
        # the derivation's last_seen_at update is folded into the batch's update of
        # last_fix_time (one statement on the devices' rows, not two); on PostgreSQL the
        # device states join the batch's one statement too
        self._deferred = _Deferred()
        self._pg = isinstance(self._bulk, _PgBulkStatements)
        folds = self._pg or isinstance(self._bulk, _SqliteBulkStatements)
        self.derivation = Derivation(
            self._save_states, mark_seen=self._deferred.defer_seen if folds else None
        )
        self.before_commit: Callable[[sa.Connection, WriteResult, datetime], None] | None = None
        """Called last in a batch's transaction (``hub.live_relay``: its NOTIFY)."""
        self.writer = WriterConnection(engine)
        """The connection ``write_batch`` writes on (``hub.writer_connection``)."""

    def _save_states(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        if self._deferred.active and self._pg:
            self._deferred.states = rows
        else:
            self._bulk.execute(conn, self._bulk.upsert_state, rows)

    @contextmanager
    def _write_tx(self, *, batch: bool = False, nowait: bool = False) -> Iterator[sa.Connection]:
        """A write transaction (``batch``: on the writer's own connection); if it fails,
        the derived states cached for it are dropped."""
        try:
            if batch:
                with self.writer.transaction(nowait=nowait) as conn:
                    yield conn
            else:
                with db.write_tx(self.engine) as conn:
                    yield conn
        except db.WriteLockBusy:
            raise  # nothing was done
        except BaseException:
            self.derivation.forget()
            raise

    # -- the hot path -------------------------------------------------------------------
    def write_batch(
        self,
        items: Sequence[IngestItem],
        cursors: Sequence[CursorUpdate] = (),
        server_time: datetime | None = None,
        *,
        change_head: bool = False,
        nowait: bool = False,
    ) -> WriteResult:
        """Store ``items`` and advance ``cursors`` in one transaction.

        Repeated (device, fix time) pairs are dropped silently; fixes of devices that no
        longer exist are dropped and counted; a fix older than its device's latest is
        stored but does not move "latest".

        ``change_head``: also read the change log's newest id as of the batch's commit
        (``WriteResult.change_head``), on the batch's connection
        (``_commit_and_read_head``).  ``nowait`` (SQLite): raise ``db.WriteLockBusy``,
        having done nothing, if another connection holds the write lock.

        A batch whose connection turns out to be dropped by the server (PostgreSQL
        restarted since the last batch) is written once more on a new connection.
        """
        try:
            return self._write_batch(items, cursors, server_time, change_head, nowait)
        except sa.exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.info("the database connection was lost; writing the batch on a new one")
            return self._write_batch(items, cursors, server_time, change_head, nowait)

    def _write_batch(
        self,
        items: Sequence[IngestItem],
        cursors: Sequence[CursorUpdate],
        server_time: datetime | None,
        change_head: bool,
        nowait: bool,
    ) -> WriteResult:
        now = server_time or datetime.now(UTC)
        result = WriteResult()
        bulk = self._bulk
        pg = self._pg
        self._deferred.active = False
        sqlite_db = self.engine.dialect.name == "sqlite"

        with self._write_tx(batch=True, nowait=nowait) as conn:
            device_ids = {it.device_id for it in items} | {c.device_id for c in cursors}
            if device_ids:
                ctx = bulk.batch_context(conn, device_ids)
                result.clients = ctx.clients
            else:
                ctx = _BatchContext()
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
            rows = list(params.values())
            known_new = self.derivation.all_newer(rows, result.clients, ctx.versions)
            new_rows = bulk.find_new(conn, rows, known_new=known_new) if rows else []
            result.duplicates += len(params) - len(new_rows)
            if new_rows:
                self._deferred.start()
                derived = self.derivation.apply(conn, new_rows, now, result.clients, ctx.versions)
                if isinstance(bulk, _PgBulkStatements):  # one statement for all that follows
                    seen, states = self._deferred.take()
                    inserted, result.moved_latest = bulk.store_rows(
                        conn, new_rows, states, seen, now
                    )
                else:
                    inserted = bulk.insert(conn, new_rows)
                result.duplicates += len(new_rows) - len(inserted)
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
                if not pg:  # (on PostgreSQL, store_rows did)
                    seen, _ = self._deferred.take()
                    result.moved_latest = self._move_latest(conn, newest, seen, now)
                if received and not pg:
                    bulk.execute(
                        conn,
                        bulk.count_received,
                        [{"b_id": c, "b_n": n} for c, n in received.items()],
                    )
                result.alerts = self._store_alerts(conn, derived.alerts, now, result)
                result.came_online = derived.came_online
                self._relay_locations(conn, result, now, ctx.relayed)
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
            if self.before_commit is not None:
                self.before_commit(conn, result, now)  # last in the transaction
            if change_head:
                result.change_head = _commit_and_read_head(conn, sqlite_db)
        result.inserted.sort(key=lambda r: (r["fix_time"], r["id"]))
        return result

    def _relay_locations(
        self, conn: sa.Connection, result: WriteResult, now: datetime, relayed: set[int]
    ) -> None:
        """Outbox rows for the new positions of clients that have location relays, in
        fix-time order (so each device's go out in the order of its fixes)."""
        if not relayed:
            return
        rows = [
            {
                "client_id": result.clients[r["device_id"]],
                "kind": "location",
                "device_id": r["device_id"],
                "ref_id": r["id"],
                "payload": {},
                "created_at": now,
            }
            for r in sorted(result.inserted, key=lambda r: (r["fix_time"], r["id"]))
            if result.clients[r["device_id"]] in relayed
        ]
        if rows:
            db.lock_outbox(conn)
            self._bulk.add_locations(conn, rows)
            result.outbox_clients |= relayed

    def _store_alerts(
        self,
        conn: sa.Connection,
        pending: list[PendingAlert],
        now: datetime,
        result: WriteResult | None = None,
    ) -> list[dict[str, Any]]:
        """Store the alerts of this batch, with outbox entries for those of rules that
        alert by webhook; the alert objects."""
        pending = [a for a in pending if "id" in a.row]  # raised by a position now stored
        if not pending:
            return []
        ids = (
            conn.execute(
                sa.insert(alerts_t).returning(alerts_t.c.id, sort_by_parameter_order=True),
                [
                    {
                        "client_id": a.device.client_id,
                        "device_id": a.device.id,
                        "rule_id": a.firing.rule.id,
                        "position_id": a.row["id"],
                        "message_id": a.firing.message_id,
                        "fix_time": a.row["fix_time"],
                        "server_time": now,
                        "payload": a.payload,
                    }
                    for a in pending
                ],
            )
            .scalars()
            .all()
        )
        alerts = [
            {"eventId": alert_id, **a.payload, "clientId": a.device.client_id}
            for alert_id, a in zip(ids, pending, strict=True)
        ]
        hooked = [alert for alert, a in zip(alerts, pending, strict=True) if a.firing.rule.webhook]
        if hooked:
            db.lock_outbox(conn)
            conn.execute(
                sa.insert(outbox_t),
                [
                    {
                        "client_id": alert["clientId"],
                        "kind": "alert",
                        "device_id": alert["deviceId"],
                        "ref_id": alert["eventId"],
                        "payload": alert,
                        "created_at": now,
                    }
                    for alert in hooked
                ],
            )
            if result is not None:
                result.outbox_clients |= {a["clientId"] for a in hooked}
        return alerts

    def mark_offline(
        self, now: datetime, default_timeout_s: float
    ) -> tuple[list[tuple[int, int]], list[dict[str, Any]]]:
        """Mark online devices silent for longer than their offline timeout as offline.

        Returns (device id, client id) of each and the alerts their ``offline`` rules
        raised (stored, with outbox entries, in the same transaction).
        """
        d = devices_t
        with self._write_tx() as conn:
            rows = conn.execute(
                sa.select(d.c.id, d.c.client_id, d.c.last_seen_at, d.c.offline_timeout_s).where(
                    d.c.status == "online"
                )
            ).all()
            silent = [
                (i, c)
                for i, c, seen, timeout in rows
                if seen is None or (now - seen).total_seconds() > (timeout or default_timeout_s)
            ]
            if not silent:
                return [], []
            conn.execute(
                sa.update(d)
                .where(d.c.id.in_([i for i, _ in silent]))
                .values(status="offline", status_at=now)
            )
            pending = self.derivation.went_offline(conn, [i for i, _ in silent], now)
            if conn.dialect.name == "postgresql":  # several processes may cache their state
                from hub.changes import ChangeKind, ChangeOp, record_changes

                by_client: dict[int, list[int | None]] = {}
                for i, c in silent:
                    by_client.setdefault(c, []).append(i)
                for c, ids in by_client.items():
                    record_changes(conn, ChangeKind.DEVICE, ChangeOp.OFFLINE, ids, c)
            return silent, self._store_alerts(conn, pending, now)

    def _move_latest(
        self, conn: sa.Connection, newest: dict[int, datetime], seen: list[int], now: datetime
    ) -> set[int]:
        """Move the devices' latest fix time to ``newest`` (device: its newest fix just
        stored) where that is later, and set ``last_seen_at`` of the devices ``seen`` (as
        the derivation left them); the devices whose latest moved."""
        bulk = self._bulk
        if isinstance(bulk, _SqliteBulkStatements) and len(newest) == 1 and seen == [*newest]:
            ((device, fix_time),) = newest.items()  # a fix alone: one statement
            return {device} if bulk.move_latest_seen(conn, device, fix_time, now) else set()
        if seen:
            mark_seen_now(conn, seen, now)
        if not newest:
            return set()
        moved = bulk.execute(
            conn, bulk.move_latest, [{"b_id": d, "b_t": t} for d, t in newest.items()]
        )
        return set(newest) if moved == len(newest) else self._latest_equal(conn, newest)

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


_SHOWN = tuple(c for c in POSITION_COLUMNS if c != "raw")


def position_json(row: dict[str, Any], *, include_raw: bool = False) -> dict[str, Any]:
    """A stored position as the API and the live feed show it."""
    out = {k: row.get(k) for k in (POSITION_COLUMNS if include_raw else _SHOWN)}
    for key in ("fix_time", "server_time"):
        value = out[key]
        if isinstance(value, datetime):
            out[key] = utc_text(value)
    return out


def live_position(row: dict[str, Any]) -> dict[str, Any]:
    """``position_json`` for a row ``write_batch`` just stored (every column present,
    times in UTC), leaving the times to the feed's encoder: the hot path's version."""
    return {k: row[k] for k in _SHOWN}
