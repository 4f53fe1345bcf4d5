"""The derive and rules stages of the pipeline, run inside the batch's transaction.

For each new fix, in fix-time order per device: the geofences containing it (and their
groups), a place name, the event code, odometers and hour meters (``hub.derive``), and
the alerts its rules fire (``hub.rules``).  Geofences and rules are cached per client
and rebuilt when the client's ``geo_version`` / ``rules_version`` moves, so a change
made through the API (by this hub or another on the same database) applies to the next
batch.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from hub import rawsql
from hub.derive import Derived, DeviceState, advance
from hub.fix import PLATFORM_ENGINE_HOURS, PLATFORM_ODOMETER_KM
from hub.geo import parse_shape
from hub.geofence_index import GeofenceIndex
from hub.models import (
    CounterSource,
    devices_t,
    geofences_t,
    members_t,
    positions_t,
    rules_t,
    sqlite_timestamp,
    users_t,
)
from hub.rules import (
    Engine,
    Facts,
    Firing,
    PoiParams,
    Rule,
    parse_params,
    parse_schedule,
    parse_zone,
)

log = logging.getLogger(__name__)


Geocoder = Callable[[float, float], str | None]
CLIENT_VERSIONS = "id, geo_version, rules_version, devices_version, timezone"
"""The columns of ``clients`` the caches follow, in the order of ``ClientVersions``."""
ClientVersions = tuple[int, int, int, int, str]


@dataclass
class ClientGeo:
    """A client's geofences, indexed."""

    version: int
    index: GeofenceIndex
    names: dict[int, str]
    contacts: dict[int, str]
    groups: dict[int, list[int]]  # geofence id -> group ids
    members: dict[int, set[int]]  # group id -> geofence ids

    def targets(self, params: PoiParams) -> frozenset[int] | None:
        if not params.poi_ids and not params.group_ids:
            return None
        ids = set(params.poi_ids)
        for g in params.group_ids:
            ids |= self.members.get(g, set())
        return frozenset(ids)


@dataclass
class ClientRules:
    version: int
    rules: list[Rule]
    by_device: dict[int, list[Rule]] = field(default_factory=dict)
    by_tag: dict[str, list[Rule]] = field(default_factory=dict)
    everywhere: list[Rule] = field(default_factory=list)
    _for_device: dict[tuple[int, tuple[str, ...]], list[Rule]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for r in self.rules:
            if r.device_ids is None and r.tags is None:
                self.everywhere.append(r)
                continue
            for d in r.device_ids or ():
                self.by_device.setdefault(d, []).append(r)
            for t in r.tags or ():
                self.by_tag.setdefault(t, []).append(r)

    def for_device(self, device_id: int, tags: Sequence[str]) -> list[Rule]:
        key = (device_id, tuple(tags))
        cached = self._for_device.get(key)
        if cached is None:
            cached = self._for_device[key] = self._find(device_id, tags)
        return cached

    def _find(self, device_id: int, tags: Iterable[str]) -> list[Rule]:
        found: dict[int, Rule] = {r.id: r for r in self.everywhere}
        for r in self.by_device.get(device_id, ()):
            found[r.id] = r
        for t in tags:
            for r in self.by_tag.get(t, ()):
                found[r.id] = r
        return [found[k] for k in sorted(found)]


@dataclass
class DeviceInfo:
    id: int
    client_id: int
    name: str
    license_plate: str | None
    driver: str | None
    tags: list[str]
    odometer_offset_km: float
    hours_offset: float
    status: str
    odometer_source: str = "hub"
    hours_source: str = "hub"

    @property
    def vehicle(self) -> str:
        """Name and plate, as Startrack shows a vehicle: ``truck 1 (P-123)``."""
        return f"{self.name} ({self.license_plate})" if self.license_plate else self.name


@dataclass
class PendingAlert:
    """An alert built during derivation; stored once its position has an id."""

    row: dict[str, Any]  # the position row that raised it
    device: DeviceInfo
    firing: Firing
    payload: dict[str, Any]


@dataclass
class DerivationResult:
    alerts: list[PendingAlert] = field(default_factory=list)
    came_online: list[int] = field(default_factory=list)  # devices whose status turned online


class Derivation:
    """Caches of geofences and rules, and the per-batch derive + rules work."""

    def __init__(
        self,
        save_states: Callable[[sa.Connection, list[dict[str, Any]]], object],
        geocoder: Geocoder | None = None,
        mark_seen: Callable[[sa.Connection, list[int], datetime], object] | None = None,
    ) -> None:
        self.save_states = save_states  # upserts device_state rows (the store's bulk path)
        self.mark_seen = mark_seen or mark_seen_now
        """Sets the devices' ``last_seen_at`` (the store may fold it into a later statement
        of the same transaction)."""
        self.geocoder = geocoder
        self.engine = Engine()
        self._geo: dict[int, ClientGeo] = {}
        self._rules: dict[int, ClientRules] = {}
        # Devices and their states, cached between batches: this pipeline is the only
        # writer of a device's state, and the store bumps ``devices_version`` when a
        # device changes.  A failed batch calls ``forget``.
        self._devices_version: dict[int, int] = {}
        self._device_info: dict[int, DeviceInfo] = {}
        self._states: dict[int, DeviceState] = {}
        # deleted clients and devices to drop, handed over from the trio thread
        self._gone_lock = threading.Lock()
        self._gone: tuple[set[int], set[int]] = (set(), set())

    def invalidate(self, clients: Iterable[int], devices: Iterable[int]) -> None:
        """Forget deleted clients and devices before the next batch (thread-safe): should
        their ids be given out again, nothing of theirs is reused."""
        with self._gone_lock:
            self._gone[0].update(clients)
            self._gone[1].update(devices)

    def _drop_gone(self) -> None:
        with self._gone_lock:
            clients, devices = self._gone
            self._gone = (set(), set())
        for cid in clients:
            self._geo.pop(cid, None)
            self._rules.pop(cid, None)
            self._devices_version.pop(cid, None)
            devices |= {d for d, info in self._device_info.items() if info.client_id == cid}
        for did in devices:
            self._device_info.pop(did, None)
            self._states.pop(did, None)

    def all_newer(
        self,
        rows: Sequence[dict[str, Any]],
        clients: dict[int, int],
        versions: Sequence[ClientVersions],
    ) -> bool:
        """Whether each of ``rows`` is newer than its device's newest fix derived so far,
        as a cached state still valid for this batch (``versions``: the clients' rows
        read in its transaction) knows it.  Such fixes cannot be stored yet, since every
        stored fix went through this derivation (``PositionStore.write_batch`` then skips
        its query for stored duplicates).  Never touches the database."""
        with self._gone_lock:
            if self._gone[0] or self._gone[1]:
                return False
        device_versions = {v[0]: v[3] for v in versions}
        for row in rows:
            device = row["device_id"]
            info = self._device_info.get(device)
            state = self._states.get(device)
            if (
                info is None
                or state is None
                or state.last_time is None
                or info.client_id != clients.get(device)
                or self._devices_version.get(info.client_id) != device_versions.get(info.client_id)
                or row["fix_time"].timestamp() <= state.last_time
            ):
                return False
        return True

    def forget(self) -> None:
        """Drop the cached device states (their batch was rolled back)."""
        self._states.clear()
        self._device_info.clear()

    # -- caches ------------------------------------------------------------------------
    def _load_client_caches(
        self,
        conn: sa.Connection,
        client_ids: set[int],
        versions: Sequence[ClientVersions] | None = None,
    ) -> dict[int, str]:
        """Bring the caches of ``client_ids`` up to date; their time zones.  ``versions``:
        the clients' rows (``CLIENT_VERSIONS`` columns) if the caller read them already in
        this transaction."""
        if versions is None:
            match, params = rawsql.in_ids(conn, client_ids)
            sql = f"SELECT {CLIENT_VERSIONS} FROM clients WHERE id {match}"  # noqa: S608
            rows: Sequence[ClientVersions] = rawsql.fetchall(conn, sql, params)  # type: ignore[assignment]
        else:
            rows = [r for r in versions if r[0] in client_ids]
        zones: dict[int, str] = {}
        for cid, geo_v, rules_v, dev_v, tz in rows:
            zones[cid] = tz
            if self._devices_version.get(cid) != dev_v:
                self._devices_version[cid] = dev_v
                # devices changed (by any process): reload them, and their states, which
                # are gone with a deleted device
                for k in [k for k, v in self._device_info.items() if v.client_id == cid]:
                    del self._device_info[k]
                    self._states.pop(k, None)
            cached = self._geo.get(cid)
            if cached is None or cached.version != geo_v:
                self._geo[cid] = self._build_geo(conn, cid, geo_v)
            cached_rules = self._rules.get(cid)
            if cached_rules is None or cached_rules.version != rules_v:
                self._rules[cid] = self._build_rules(conn, cid, rules_v, tz)
        return zones

    def _build_geo(self, conn: sa.Connection, client_id: int, version: int) -> ClientGeo:
        shapes = []
        names: dict[int, str] = {}
        contacts: dict[int, str] = {}
        for gid, name, contact, geometry, props in conn.execute(
            sa.select(
                geofences_t.c.id,
                geofences_t.c.name,
                geofences_t.c.contact,
                geofences_t.c.geometry,
                geofences_t.c.properties,
            ).where(geofences_t.c.client_id == client_id)
        ):
            try:
                shapes.append((gid, parse_shape(geometry, props)))
            except ValueError as exc:  # validated on save; a bad row must not stop ingest
                log.warning("geofence %s is unusable and ignored: %s", gid, exc)
                continue
            names[gid], contacts[gid] = name, contact or ""
        groups: dict[int, list[int]] = {}
        members: dict[int, set[int]] = {}
        if names:
            for gid, group in conn.execute(
                sa.select(members_t.c.geofence_id, members_t.c.group_id).where(
                    members_t.c.geofence_id.in_(list(names))
                )
            ):
                groups.setdefault(gid, []).append(group)
                members.setdefault(group, set()).add(gid)
        return ClientGeo(version, GeofenceIndex(shapes), names, contacts, groups, members)

    def _build_rules(
        self, conn: sa.Connection, client_id: int, version: int, tz: str
    ) -> ClientRules:
        rules = []
        q = (
            sa.select(rules_t, users_t.c.name.label("current_owner"))
            .select_from(rules_t.outerjoin(users_t, users_t.c.id == rules_t.c.owner_id))
            .where(rules_t.c.client_id == client_id, rules_t.c.enabled.is_(True))
        )
        for r in conn.execute(q).mappings():
            try:
                rules.append(
                    Rule(
                        id=r["id"],
                        client_id=client_id,
                        owner_id=r["owner_id"] or 0,
                        owner_name=r["current_owner"] or r["owner_name"],
                        name=r["name"],
                        type=r["type"],
                        params=parse_params(r["type"], r["params"]),
                        device_ids=frozenset(r["device_ids"])
                        if r["device_ids"] is not None
                        else None,
                        tags=frozenset(r["tags"]) if r["tags"] is not None else None,
                        schedule=parse_schedule(r["schedule"]),
                        zone=parse_zone(tz or "UTC"),
                        webhook=bool(r["webhook"]),
                    )
                )
            except ValueError as exc:  # validated on save
                log.warning("rule %s is unusable and ignored: %s", r["id"], exc)
        return ClientRules(version, rules)

    # -- the batch ---------------------------------------------------------------------
    def apply(
        self,
        conn: sa.Connection,
        rows: Sequence[dict[str, Any]],
        now: datetime,
        clients: dict[int, int],
        versions: Sequence[ClientVersions] | None = None,
    ) -> DerivationResult:
        """Fill the derived columns of ``rows`` (new fixes); say which alerts they raise.

        ``clients`` maps each device to its client; ``versions``, if given, are the
        clients' rows (``CLIENT_VERSIONS``) read in this transaction.  Device states are
        written here, in the caller's transaction.
        """
        if not rows:
            return DerivationResult()
        self._drop_gone()
        device_ids = sorted({r["device_id"] for r in rows})
        self._load_client_caches(conn, {clients[d] for d in device_ids}, versions)
        devices = self._devices(conn, device_ids, clients)
        states = self._load_states(conn, device_ids)
        alerts: list[PendingAlert] = []
        for row in sorted(rows, key=lambda r: (r["device_id"], r["fix_time"])):
            alerts += self._one(row, devices[row["device_id"]], states[row["device_id"]])
        self._save_states(conn, states, now)
        return DerivationResult(alerts, self._mark_online(conn, devices, now))

    def _load_states(self, conn: sa.Connection, device_ids: list[int]) -> dict[int, DeviceState]:
        missing = [d for d in device_ids if d not in self._states]
        if missing:
            match, params = rawsql.in_ids(conn, missing)
            sql = f"SELECT device_id, state FROM device_state WHERE device_id {match}"  # noqa: S608
            for did, state in rawsql.fetchall(conn, sql, params):
                self._states[did] = DeviceState.from_json(_json_value(state))
        return {d: self._states.setdefault(d, DeviceState()) for d in device_ids}

    def _devices(
        self, conn: sa.Connection, ids: list[int], clients: dict[int, int]
    ) -> dict[int, DeviceInfo]:
        for i in ids:
            cached = self._device_info.get(i)
            if cached is not None and cached.client_id != clients[i]:  # another device now
                del self._device_info[i]
                self._states.pop(i, None)
        missing = [i for i in ids if i not in self._device_info]
        if missing:
            self._device_info.update(self._query_devices(conn, missing))
        return {i: self._device_info[i] for i in ids if i in self._device_info}

    def _query_devices(self, conn: sa.Connection, ids: list[int]) -> dict[int, DeviceInfo]:
        match, params = rawsql.in_ids(conn, ids)
        sql = (
            "SELECT id, client_id, name, license_plate, driver, tags, odometer_offset_km,"  # noqa: S608
            " hours_offset, status, odometer_source, hours_source"
            f" FROM devices WHERE id {match}"
        )
        return {
            row[0]: DeviceInfo(*row[:5], list(_json_value(row[5]) or []), *row[6:])
            for row in rawsql.fetchall(conn, sql, params)
        }

    def _one(
        self, row: dict[str, Any], device: DeviceInfo, state: DeviceState
    ) -> list[PendingAlert]:
        geo = self._geo[device.client_id]
        lat, lon, valid = row["lat"], row["lon"], row["valid"]
        inside = geo.index.containing(lat, lon) if valid and len(geo.index) else []
        sensors = row["sensors"]
        derived = advance(
            state,
            row["fix_time"],
            lat,
            lon,
            row["speed_kmh"],
            row["ignition"],
            valid,
            inside,
            platform_odometer_km=_reading(sensors, PLATFORM_ODOMETER_KM)
            if device.odometer_source == CounterSource.PLATFORM
            else None,
            platform_hours=_reading(sensors, PLATFORM_ENGINE_HOURS)
            if device.hours_source == CounterSource.PLATFORM
            else None,
        )
        groups = sorted({g for p in inside for g in geo.groups.get(p, ())})
        place = ", ".join(geo.names[p] for p in inside) if inside else None
        if place is None and self.geocoder is not None:
            try:
                place = self.geocoder(lat, lon)
            except Exception:  # a plugin's geocoder must not stop ingest
                log.exception("the reverse geocoder failed")
        row.update(
            event_code=derived.event_code,
            odometer_km=derived.odometer_km,
            virtual_odometer_km=derived.odometer_km + device.odometer_offset_km,
            hours=derived.hours,
            virtual_hours=derived.hours + device.hours_offset,
            poi_ids=inside,
            poi_group_ids=groups,
            place=place,
            alerts_count=0,
        )
        rules = self._rules[device.client_id].for_device(device.id, device.tags)
        if not derived.in_order or not rules:
            return []
        facts = Facts(
            device_id=device.id,
            fix_time=row["fix_time"],
            lat=lat,
            lon=lon,
            speed_kmh=state.speed_kmh,
            ignition=row["ignition"],
            sensors=row["sensors"] or {},
            derived=derived,
            inside=frozenset(inside),
            poi_targets=geo.targets,
            distance_m=lambda poi: (
                geo.index.nearest_distance_m(poi, lat, lon) if poi in geo.names else None
            ),
        )
        pending = []
        for rule in rules:
            rule_state = state.rules.setdefault(str(rule.id), {})
            for firing in self.engine.evaluate(rule, rule_state, facts):
                pending.append(
                    PendingAlert(row, device, firing, self.alert_payload(firing, row, device, geo))
                )
        row["alerts_count"] = len(pending)
        return pending

    def alert_payload(
        self, firing: Firing, row: dict[str, Any], device: DeviceInfo, geo: ClientGeo
    ) -> dict[str, Any]:
        """Everything an alert object needs (``eventId`` is added once it is stored)."""
        rule = firing.rule
        fields = dict(firing.fields)
        poi_ids = fields.pop("poiIds", None)
        poi_id = fields.get("poiId")
        if poi_ids is None and poi_id is not None:
            poi_ids = [poi_id]
        payload: dict[str, Any] = {
            "messageId": firing.message_id,
            "deviceId": device.id,
            "vehicle": device.vehicle,
            "date": row["fix_time"].isoformat(),
            "place": row.get("place") or "",
            "lat": row["lat"],
            "lon": row["lon"],
            "driver": device.driver or "",
            "odometer": row.get("virtual_odometer_km"),
            "odometerUnits": "km",
            "ignOnTime": row.get("virtual_hours"),
            "ruleOwner": rule.owner_name,
            "ruleOwnerId": rule.owner_id,
            "urId": rule.id,
            "ruleName": rule.name,
            "vehicle_tags": list(device.tags),
            "poiContact": "",
        }
        if poi_ids:
            payload.update(
                poiIds=list(poi_ids),
                poiNames=[geo.names.get(p, "") for p in poi_ids],
                poiGroupIds=sorted({g for p in poi_ids for g in geo.groups.get(p, ())}),
                poiId=poi_ids[0],
                poiName=geo.names.get(poi_ids[0], ""),
                poiContact=geo.contacts.get(poi_ids[0], ""),
            )
        payload.update(fields)
        return payload

    def went_offline(
        self, conn: sa.Connection, device_ids: Sequence[int], now: datetime
    ) -> list[PendingAlert]:
        """Devices the status watcher found silent: mark their state and run their
        ``offline`` rules against their latest position."""
        self._drop_gone()
        fresh = self._query_devices(conn, list(device_ids))
        self._load_client_caches(conn, {d.client_id for d in fresh.values()})
        devices = self._devices(conn, list(fresh), {i: d.client_id for i, d in fresh.items()})
        states = self._load_states(conn, list(devices))
        latest = {
            r["device_id"]: dict(r)
            for r in conn.execute(
                sa.select(positions_t)
                .join(
                    devices_t,
                    sa.and_(
                        positions_t.c.device_id == devices_t.c.id,
                        positions_t.c.fix_time == devices_t.c.last_fix_time,
                    ),
                )
                .where(devices_t.c.id.in_(list(devices)))
            ).mappings()
        }
        pending = []
        for device in devices.values():
            device.status = "offline"
            state = states[device.id]
            state.offline = True
            last = latest.get(device.id)
            if last is None:
                continue
            row = {**last, "fix_time": now}  # the alert's date: when it went offline
            geo = self._geo[device.client_id]
            facts = Facts(
                device_id=device.id,
                fix_time=now,
                lat=row["lat"],
                lon=row["lon"],
                speed_kmh=None,
                ignition=row["ignition"],
                sensors=row["sensors"] or {},
                derived=Derived(
                    row["event_code"], state.odometer_km, state.hours, bool(state.moving)
                ),
                inside=frozenset(row["poi_ids"] or ()),
                poi_targets=geo.targets,
                distance_m=lambda poi: None,
                offline=True,
            )
            for rule in self._rules[device.client_id].for_device(device.id, device.tags):
                if rule.type != "offline":
                    continue
                rule_state = state.rules.setdefault(str(rule.id), {})
                for firing in self.engine.evaluate(rule, rule_state, facts):
                    pending.append(
                        PendingAlert(
                            row, device, firing, self.alert_payload(firing, row, device, geo)
                        )
                    )
        self._save_states(conn, states, now)
        return pending

    def _save_states(
        self, conn: sa.Connection, states: dict[int, DeviceState], now: datetime
    ) -> None:
        rows = [
            {"device_id": d, "state": s.to_json(), "updated_at": now} for d, s in states.items()
        ]
        self.save_states(conn, rows)

    def _mark_online(
        self, conn: sa.Connection, devices: dict[int, DeviceInfo], now: datetime
    ) -> list[int]:
        self.mark_seen(conn, list(devices), now)
        coming = [d for d in devices.values() if d.status != "online"]
        if coming:
            match, params = rawsql.in_ids(conn, [d.id for d in coming])
            when = now if rawsql.is_postgres(conn) else sqlite_timestamp(now)
            mark = rawsql.mark(conn)
            rawsql.execute(
                conn,
                f"UPDATE devices SET status = 'online', status_at = {mark} WHERE id {match}",  # noqa: S608
                [when, *params],
            )
            for d in coming:
                d.status = "online"
        return [d.id for d in coming]


def _json_value(value: Any) -> Any:
    """A JSON column's value as the driver returned it: decoded by psycopg, text on
    SQLite (``None`` stays ``None``)."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def mark_seen_now(conn: sa.Connection, device_ids: list[int], now: datetime) -> None:
    """Set the devices' ``last_seen_at`` to ``now``."""
    match, params = rawsql.in_ids(conn, device_ids)
    when = now if rawsql.is_postgres(conn) else sqlite_timestamp(now)
    rawsql.execute(
        conn,
        f"UPDATE devices SET last_seen_at = {rawsql.mark(conn)} WHERE id {match}",  # noqa: S608
        [when, *params],
    )


def _reading(sensors: dict[str, Any] | None, key: str) -> float | None:
    """A platform's counter reading from a fix's sensors: a finite number, not negative."""
    value = sensors.get(key) if sensors else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None
