"""Storing geofences (POIs), their groups, alert rules and alerts.

Every change to a client's geofences or rules bumps the client's ``geo_version`` /
``rules_version`` in the same transaction, which is how the pipeline knows to reload
them.  Everything is validated before anything is written: a refused change leaves
nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub import db
from hub.changes import ChangeKind, ChangeOp, record_changes
from hub.geo import GeometryError, parse_shape
from hub.models import (
    Alert,
    AlertRule,
    Client,
    Device,
    Geofence,
    GeofenceGroup,
    GeofenceMembership,
    User,
    bump_client_version,
    rules_t,
    utcnow,
)
from hub.rules import RuleError, parse_params, parse_schedule, parse_zone
from hub.store import UNSET, Conflict, Invalid, NotFound
from hub.text import check_text
from hub.timezones import is_iana_zone


def _changed(
    s: Session, client_id: int, version: str, op: ChangeOp, ids: Sequence[int | None]
) -> None:
    """Bump the client's ``version`` column (the pipeline reloads) and record the change
    for the running hubs (``hub.changes``)."""
    bump_client_version(s.connection(), client_id, version)
    kind = ChangeKind.GEOFENCE if version == "geo_version" else ChangeKind.RULE
    record_changes(s.connection(), kind, op, ids, client_id)


class _ClientRows:
    """What the geofence and rule stores share: rows of a client, read and deleted by
    id, every change bumping the client's version column."""

    model: ClassVar[Any]
    version: ClassVar[str]
    noun: ClassVar[str]

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self, write: bool = False) -> Session:
        bind = self.engine.execution_options(**db.WRITE) if write else self.engine
        return Session(bind, expire_on_commit=False)

    def _get(self, s: Session, row_id: int, client_id: int | None) -> Any:
        row = s.get(self.model, row_id)
        if row is None or (client_id is not None and row.client_id != client_id):
            raise NotFound(f"{self.noun} {row_id} not found")
        return row

    def get(self, row_id: int, client_id: int | None = None) -> Any:
        with self._session() as s:
            return self._get(s, row_id, client_id)

    def list(self, client_id: int | None = None) -> list[Any]:
        with self._session() as s:
            q = select(self.model).order_by(self.model.id)
            if client_id is not None:
                q = q.where(self.model.client_id == client_id)
            return list(s.exec(q))

    def delete(self, row_id: int, client_id: int | None = None) -> None:
        with self._session(write=True) as s, s.begin():
            row = self._get(s, row_id, client_id)
            s.delete(row)
            _changed(s, row.client_id, self.version, ChangeOp.DELETED, [row_id])


class GeofenceStore(_ClientRows):
    model = Geofence
    version = "geo_version"
    noun = "geofence"

    # -- geofences -------------------------------------------------------------------
    def create(
        self,
        client_id: int,
        name: str,
        geometry: Mapping[str, Any],
        properties: Mapping[str, Any] | None = None,
        contact: str = "",
        group_ids: Sequence[int] = (),
    ) -> Geofence:
        (created,) = self.create_many(
            client_id,
            [
                {
                    "name": name,
                    "geometry": geometry,
                    "properties": properties,
                    "contact": contact,
                    "group_ids": group_ids,
                }
            ],
        )
        return created

    def create_many(
        self, client_id: int, items: Sequence[Mapping[str, Any]], prefix: str = ""
    ) -> list[Geofence]:
        """Create geofences all or nothing; an error names ``{prefix}{index}.field``
        when there are several."""
        checked = []
        for i, item in enumerate(items):
            where = f"{prefix}{i}." if len(items) > 1 or prefix else ""
            checked.append(_checked_geofence(item, where))
        with self._session(write=True) as s, s.begin():
            if s.get(Client, client_id) is None:
                raise NotFound(f"client {client_id} not found")
            out = []
            for i, (name, kind, geometry, props, contact, groups) in enumerate(checked):
                where = f"{prefix}{i}." if len(items) > 1 or prefix else ""
                self._check_groups(s, client_id, groups, f"{where}group_ids")
                g = Geofence(
                    client_id=client_id,
                    name=name,
                    kind=kind,
                    geometry=geometry,
                    properties=props,
                    contact=contact,
                )
                s.add(g)
                s.flush()
                for group in groups:
                    s.add(GeofenceMembership(geofence_id=g.id or 0, group_id=group))
                out.append(g)
            _changed(s, client_id, "geo_version", ChangeOp.CREATED, [g.id for g in out])
            return out

    def update(self, geofence_id: int, client_id: int | None = None, **fields: Any) -> Geofence:
        with self._session(write=True) as s, s.begin():
            g = self._get(s, geofence_id, client_id)
            merged = {
                "name": fields.get("name", g.name),
                "geometry": fields.get("geometry", g.geometry),
                "properties": fields.get("properties", g.properties),
                "contact": fields.get("contact", g.contact),
                "group_ids": fields.get("group_ids", UNSET),
            }
            groups_given = merged["group_ids"] is not UNSET
            if not groups_given:
                merged["group_ids"] = ()
            name, kind, geometry, props, contact, groups = _checked_geofence(merged, "")
            g.name, g.kind, g.geometry, g.properties, g.contact = (
                name,
                kind,
                geometry,
                props,
                contact,
            )
            g.updated_at = utcnow()
            s.add(g)
            if groups_given:
                self._check_groups(s, g.client_id, groups, "group_ids")
                s.exec(
                    sa.delete(GeofenceMembership).where(
                        col(GeofenceMembership.geofence_id) == geofence_id
                    )
                )  # type: ignore[call-overload]
                for group in groups:
                    s.add(GeofenceMembership(geofence_id=geofence_id, group_id=group))
            _changed(s, g.client_id, "geo_version", ChangeOp.UPDATED, [geofence_id])
            return g

    def group_ids(self, geofence_ids: Iterable[int]) -> dict[int, list[int]]:
        ids = list(geofence_ids)
        out: dict[int, list[int]] = {i: [] for i in ids}
        with self._session() as s:
            for m in s.exec(
                select(GeofenceMembership).where(col(GeofenceMembership.geofence_id).in_(ids))
            ):
                out[m.geofence_id].append(m.group_id)
        return {k: sorted(v) for k, v in out.items()}

    @staticmethod
    def _check_groups(s: Session, client_id: int, groups: Sequence[int], field: str) -> None:
        missing = _not_the_clients(s, GeofenceGroup, groups, client_id)
        if missing:
            raise Invalid(field, f"no such geofence group of this client: {missing}")

    # -- groups ----------------------------------------------------------------------
    def create_group(self, client_id: int, name: str) -> GeofenceGroup:
        if not isinstance(name, str) or not name.strip():
            raise Invalid("name", "must be a non-empty string")
        try:
            with self._session(write=True) as s, s.begin():
                g = GeofenceGroup(client_id=client_id, name=name.strip())
                s.add(g)
                s.flush()
                return g
        except sa.exc.IntegrityError:
            raise Conflict("name", f"a geofence group named {name!r} exists already") from None

    def list_groups(self, client_id: int | None = None) -> list[GeofenceGroup]:
        with self._session() as s:
            q = select(GeofenceGroup).order_by(GeofenceGroup.id)
            if client_id is not None:
                q = q.where(GeofenceGroup.client_id == client_id)
            return list(s.exec(q))

    def delete_group(self, group_id: int, client_id: int | None = None) -> None:
        with self._session(write=True) as s, s.begin():
            g = s.get(GeofenceGroup, group_id)
            if g is None or (client_id is not None and g.client_id != client_id):
                raise NotFound(f"geofence group {group_id} not found")
            s.delete(g)
            _changed(s, g.client_id, "geo_version", ChangeOp.DELETED, [None])


def _checked_geofence(
    item: Mapping[str, Any], where: str
) -> tuple[str, str, dict[str, Any], dict[str, Any], str, list[int]]:
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise Invalid(f"{where}name", "must be a non-empty string")
    geometry = item.get("geometry")
    if not isinstance(geometry, Mapping):
        raise Invalid(f"{where}geometry", "must be a GeoJSON geometry object")
    props = dict(item.get("properties") or {})
    try:
        shape = parse_shape(dict(geometry), props)
    except GeometryError as exc:
        raise Invalid(f"{where}{exc.field}", exc.reason) from None
    check_text(f"{where}name", name)
    contact = item.get("contact") or ""
    if not isinstance(contact, str):
        raise Invalid(f"{where}contact", "must be text")
    check_text(f"{where}contact", contact, multiline=True)  # an address, phone numbers…
    groups = list(item.get("group_ids") or ())
    if not all(isinstance(g, int) and not isinstance(g, bool) for g in groups):
        raise Invalid(f"{where}group_ids", "must be a list of group ids")
    shape_props = {k: props[k] for k in ("radius_m", "width_m") if k in props}
    return name.strip(), shape.kind, dict(geometry), shape_props, contact, groups


class RuleStore(_ClientRows):
    model = AlertRule
    version = "rules_version"
    noun = "rule"

    def create(
        self,
        client_id: int,
        owner: User,
        name: str,
        type: str,
        params: Mapping[str, Any] | None = None,
        device_ids: Sequence[int] | None = None,
        tags: Sequence[str] | None = None,
        schedule: Mapping[str, Any] | None = None,
        enabled: bool = True,
        webhook: bool = False,
    ) -> AlertRule:
        if not isinstance(name, str) or not name.strip():
            raise Invalid("name", "must be a non-empty string")
        checked = _checked_rule(type, params, schedule, tags)
        with self._session(write=True) as s, s.begin():
            if s.get(Client, client_id) is None:
                raise NotFound(f"client {client_id} not found")
            _check_references(s, client_id, checked[0], device_ids)
            if webhook:
                _check_alerts_webhook(s, client_id)
            rule = AlertRule(
                client_id=client_id,
                owner_id=owner.id,
                owner_name=owner.name,
                name=name.strip(),
                type=type,
                params=checked[0].model_dump(mode="json"),
                device_ids=sorted(set(device_ids)) if device_ids is not None else None,
                tags=sorted(set(tags)) if tags is not None else None,
                schedule=checked[1].model_dump(mode="json") if checked[1] else None,
                enabled=enabled,
                webhook=webhook,
            )
            s.add(rule)
            s.flush()
            _changed(s, client_id, "rules_version", ChangeOp.CREATED, [rule.id])
            return rule

    def update(self, rule_id: int, client_id: int | None = None, **fields: Any) -> AlertRule:
        with self._session(write=True) as s, s.begin():
            rule = self._get(s, rule_id, client_id)
            if "name" in fields and (
                not isinstance(fields["name"], str) or not fields["name"].strip()
            ):
                raise Invalid("name", "must be a non-empty string")
            rtype = fields.get("type", rule.type)
            params = fields.get("params", rule.params if rtype == rule.type else {})
            schedule = fields.get("schedule", rule.schedule)
            tags = fields.get("tags", rule.tags)
            device_ids = fields.get("device_ids", rule.device_ids)
            p, sched = _checked_rule(rtype, params, schedule, tags)
            _check_references(s, rule.client_id, p, device_ids)
            rule.type, rule.params = rtype, p.model_dump(mode="json")
            rule.schedule = sched.model_dump(mode="json") if sched else None
            rule.tags = sorted(set(tags)) if tags is not None else None
            rule.device_ids = sorted(set(device_ids)) if device_ids is not None else None
            rule.name = fields.get("name", rule.name).strip()
            rule.enabled = bool(fields.get("enabled", rule.enabled))
            if fields.get("webhook") and not rule.webhook:
                _check_alerts_webhook(s, rule.client_id)
            rule.webhook = bool(fields.get("webhook", rule.webhook))
            rule.updated_at = utcnow()
            s.add(rule)
            _changed(s, rule.client_id, "rules_version", ChangeOp.UPDATED, [rule_id])
            return rule

    # -- alerts ----------------------------------------------------------------------
    def alerts(
        self,
        client_id: int | None = None,
        device_id: int | None = None,
        rule_id: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        after_id: int | None = None,
        limit: int = 1000,
        *,
        before_id: int | None = None,
        newest_first: bool = False,
    ) -> list[Alert]:
        """Alerts in the order they were raised (``newest_first``: the reverse), filtered;
        page with ``after_id`` (or ``before_id`` going back)."""
        with self._session() as s:
            order = col(Alert.id).desc() if newest_first else col(Alert.id)
            q = select(Alert).order_by(order).limit(limit)
            if client_id is not None:
                q = q.where(Alert.client_id == client_id)
            if device_id is not None:
                q = q.where(Alert.device_id == device_id)
            if rule_id is not None:
                q = q.where(Alert.rule_id == rule_id)
            if start is not None:
                q = q.where(Alert.fix_time >= start)
            if end is not None:
                q = q.where(Alert.fix_time < end)
            if after_id is not None:
                q = q.where(col(Alert.id) > after_id)
            if before_id is not None:
                q = q.where(col(Alert.id) < before_id)
            return list(s.exec(q))


def forget_devices(conn: sa.Connection, client_id: int, device_ids: Iterable[int]) -> list[int]:
    """Take devices being deleted out of the ``device_ids`` of the client's rules, in the
    caller's transaction; the ids of the rules changed.

    A rule whose list becomes empty keeps ``[]``: it applies to no device by id (``null``
    would mean every device), only to the devices its ``tags`` select if it has any.  It
    stays as its owner left it otherwise (enabled or not): a manager sees a rule that
    names no device and adds the replacement vehicle, and nothing fires meanwhile.
    """
    gone = set(device_ids)
    r = rules_t
    rows = conn.execute(
        sa.select(r.c.id, r.c.device_ids).where(r.c.client_id == client_id).order_by(r.c.id)
    ).all()
    changed = []
    now = utcnow()
    for rule_id, named in rows:
        if named and not gone.isdisjoint(named):
            kept = [d for d in named if d not in gone]
            conn.execute(
                sa.update(r).where(r.c.id == rule_id).values(device_ids=kept, updated_at=now)
            )
            changed.append(rule_id)
    if changed:
        bump_client_version(conn, client_id, "rules_version")
    return changed


def _checked_rule(rtype: str, params: Any, schedule: Any, tags: Any) -> tuple[Any, Any]:
    if tags is not None and not (
        isinstance(tags, list | tuple) and all(isinstance(t, str) and t for t in tags)
    ):
        raise Invalid("tags", "must be a list of non-empty strings")
    try:
        return parse_params(rtype, params), parse_schedule(schedule)
    except RuleError as exc:
        raise Invalid(exc.field, exc.reason) from None


def _check_references(
    s: Session, client_id: int, params: Any, device_ids: Sequence[int] | None
) -> None:
    """Devices, POIs and POI groups a rule names must be the client's own."""
    poi_id = getattr(params, "poi_id", None)
    pois = set(getattr(params, "poi_ids", ()) or ()) | ({poi_id} if poi_id is not None else set())
    for field, model, ids, what in (
        ("device_ids", Device, device_ids or (), "device"),
        ("params.poi_id" if poi_id is not None else "params.poi_ids", Geofence, pois, "geofence"),
        (
            "params.group_ids",
            GeofenceGroup,
            getattr(params, "group_ids", ()) or (),
            "geofence group",
        ),
    ):
        missing = _not_the_clients(s, model, ids, client_id)
        if missing:
            raise Invalid(field, f"no such {what} of this client: {missing}")


def _not_the_clients(s: Session, model: Any, ids: Iterable[int], client_id: int) -> list[int]:
    """Those of ``ids`` that are not rows of ``model`` belonging to ``client_id``."""
    wanted = set(ids)
    if not wanted:
        return []
    found = set(
        s.exec(
            select(model.id).where(col(model.id).in_(list(wanted)), model.client_id == client_id)
        )
    )
    return sorted(wanted - found)


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA zone name (``hub.timezones``), else ``Invalid``."""
    if not isinstance(name, str) or not is_iana_zone(name):
        raise Invalid(
            "timezone", f"unknown time zone {name!r}: give an IANA zone name, e.g. Europe/Madrid"
        )
    try:
        parse_zone(name)
    except RuleError as exc:
        raise Invalid("timezone", exc.reason) from None
    return name


def _check_alerts_webhook(s: Session, client_id: int) -> None:
    """A rule may alert by webhook only once its client has an alerts webhook."""
    from hub.models import SinkRow

    q = select(SinkRow.id).where(SinkRow.client_id == client_id, SinkRow.purpose == "alerts")
    if s.exec(q).first() is None:
        raise Invalid(
            "webhook",
            "the client has no alerts webhook; the system administrator or a manager "
            "sets one up first (POST /api/sinks)",
        )
