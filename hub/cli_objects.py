"""``gpshub device|geofence|rule|sink|alert``: a client's objects from the command line.

Each command checks its input with the same models and functions as the API (the
request bodies of ``hub.web.schemas``, the geofence and sink helpers of ``hub.web``)
and stores it with the same store methods, so the command line accepts and refuses
exactly what the API does.  A refusal is one line naming the field, as the API's error
names it (``params.limit_kmh``, ``features.2.properties.radius_m``), with the flag
that gave it when there is one (``--license-plate (license_plate)``), and exit status 2.

The arguments of these commands are declared in ``hub.cli_objects_parser`` (``--help``
needs them, not the modules imported here).

Objects belong to a client.  A command that makes one takes ``--client`` (name or id;
not needed while there is only one client); a listing shows every client's objects,
or one client's with ``--client``; a command on an object by id accepts ``--client``
to make sure the object is that client's.  The command line acts as the system
administrator: the rules it adds are owned by the first administrator, or by
``--owner``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import trio
from pydantic import BaseModel, ValidationError

from hub import cli as base
from hub.cli_output import (
    coord,
    fixed,
    flag,
    listing,
    number,
    numeric,
    print_json,
    print_table,
    text,
    when,
)
from hub.models import Role
from hub.positions import position_json
from hub.store import Conflict, Invalid, NotFound
from hub.web.errors import ApiError, first_error
from hub.web.schemas import (
    AlertQuery,
    DeviceCreate,
    DeviceOut,
    DeviceUpdate,
    GeofenceCreate,
    GeofenceImport,
    RuleCreate,
    RuleOut,
    SinkCreate,
)

# -- input -----------------------------------------------------------------------------
DEVICE_FLAGS = {
    "name": "NAME",
    "license_plate": "--license-plate",
    "imei": "--imei",
    "remote_id": "--remote-id",
    "tags": "--tag",
    "driver": "--driver",
    "connection_id": "--connection-id",
    "upstream_id": "--upstream-id",
    "offline_timeout_s": "--offline-timeout-s",
    "odometer_source": "--odometer-source",
    "hours_source": "--hours-source",
}
SINK_FLAGS = {
    "name": "--name",
    "kind": "--kind",
    "format": "--format",
    "settings.url": "--url",
    "failing_after_s": "--failing-after-s",
    "signing": "--signing",
    "enabled": "--disabled",
}
QUERY_FLAGS = {  # alert list and history export: as the API's query parameters
    "device_id": "--device-id",
    "rule_id": "--rule-id",
    "from": "--from",
    "start": "--from",
    "to": "--to",
    "end": "--to",
    "after_id": "--after-id",
    "limit": "--limit",
}


def _named(field: str | None, flags: Mapping[str, str]) -> str:
    """``field`` as an error names it, with the flag that gave it (if any)."""
    if not field:
        return ""
    for key in (field, field.split(".")[0]):
        if key in flags:
            return f"{flags[key]} ({field})"
    return field


@contextlib.contextmanager
def refusals(flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn the API's and the store's refusals into one line naming the field."""
    flags = flags or {}
    try:
        yield
    except ValidationError as exc:
        field, message = first_error(exc)
        raise base.CliError(_line(_named(field, flags), message)) from None
    except (Invalid, Conflict) as exc:
        raise base.CliError(_line(_named(exc.field, flags), exc.reason)) from None
    except ApiError as exc:
        raise base.CliError(_line(_named(exc.field, flags), exc.message)) from None


def query_times(
    hub: Any, client_id: int | None, start: datetime | date | None, end: datetime | date | None
) -> tuple[datetime | None, datetime | None]:
    """``--from`` and ``--to`` as instants, as the API reads them: a date alone is
    midnight in ``client_id``'s time zone (UTC for none)."""
    from hub.web.times import is_date, resolve, zone_of

    zone = zone_of(None)
    if client_id is not None and (is_date(start) or is_date(end)):
        zone = zone_of(hub.store.get_client(client_id).timezone)
    with refusals(QUERY_FLAGS):
        return resolve(start, zone, "from"), resolve(end, zone, "to")


def _line(field: str, message: str) -> str:
    message = " ".join(str(message).split())
    return f"{field}: {message}" if field else message


def _validated(model: type[BaseModel], data: Any, flags: Mapping[str, str] | None = None) -> Any:
    """``data`` as the API reads a request body of ``model``."""
    if not isinstance(data, dict):
        raise base.CliError("body: must be a JSON object")
    with refusals(flags):
        return model.model_validate(data)


def read_json(source: str) -> Any:
    """The JSON document in file ``source`` (``-``: standard input)."""
    name = "standard input" if source == "-" else source
    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise base.CliError(f"{name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise base.CliError(f"{name}: not UTF-8 text") from None
    if not raw.strip():
        raise base.CliError(f"{name}: empty; a JSON object is required")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise base.CliError(f"{name}: not valid JSON: {exc}") from None
    except RecursionError:
        raise base.CliError(f"{name}: nested too deeply") from None


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _scope(hub: Any, client: str | None) -> int | None:
    """The client a command on an object by id is limited to (``None``: any)."""
    return base._client_id(hub, client) if client else None


def _owning_client(hub: Any, client: str | None, body_client: int | None) -> int:
    """The client a new object goes to: ``--client``, else the body's ``client_id``,
    else the only client; a body naming another client than ``--client`` is refused."""
    if client:
        chosen = base._client_id(hub, client)
        if body_client is not None and body_client != chosen:
            raise base.CliError(
                f"client_id: the body names client {body_client}, --client client {chosen}"
            )
        return chosen
    if body_client is not None:
        try:
            hub.store.get_client(body_client)
        except NotFound:
            raise base.CliError(f"client_id: client {body_client} does not exist") from None
        return body_client
    return base._client_id(hub, None)


def _client_names(hub: Any) -> dict[int, str]:
    return {int(c.id): c.name for c in hub.store.list_clients()}


# -- devices ---------------------------------------------------------------------------
def _device_body(args: argparse.Namespace) -> dict[str, Any]:
    body = _given(
        license_plate=args.license_plate,
        imei=args.imei,
        remote_id=args.remote_id,
        tags=args.tag,
        driver=args.driver,
        connection_id=args.connection_id,
        upstream_id=args.upstream_id,
        offline_timeout_s=args.offline_timeout_s,
        odometer_source=args.odometer_source,
        hours_source=args.hours_source,
    )
    if args.name is not None:
        body["name"] = args.name
    return body


def cmd_device_add(args: argparse.Namespace) -> None:
    hub = base._open_hub(args)
    body = _validated(DeviceCreate, _device_body(args), DEVICE_FLAGS)
    client_id = base._client_id(hub, args.client)
    fields = body.model_dump(exclude={"client_id"})
    fields["tags"] = fields["tags"] or []
    with refusals(DEVICE_FLAGS):
        device = hub.store.create_device(client_id, **fields)
    base.out.print(f"device {device.id}: {device.name} (client {device.client_id})", soft_wrap=True)


def cmd_device_edit(args: argparse.Namespace) -> None:
    hub = base._open_hub(args)
    data = _device_body(args)
    for name in args.clear:
        field = name.replace("-", "_")
        if field not in DEVICE_FLAGS or field == "name":
            known = ", ".join(k for k in DEVICE_FLAGS if k != "name")
            raise base.CliError(f"--clear: {name!r} is not a field to clear (one of: {known})")
        if field in data:
            raise base.CliError(f"--clear: {name} is also given a value")
        data[field] = None
    if not data:
        raise base.CliError("nothing to change: give the fields to change (see --help)")
    body = _validated(DeviceUpdate, data, DEVICE_FLAGS)
    fields = body.model_dump(exclude_unset=True)
    if "tags" in fields:
        fields["tags"] = fields["tags"] or []
    with refusals(DEVICE_FLAGS):
        device = hub.store.update_device(args.id, _scope(hub, args.client), **fields)
    base.out.print(f"device {device.id}: {device.name} (changed)", soft_wrap=True)


def cmd_device_remove(args: argparse.Namespace) -> None:
    hub = base._open_hub(args)
    scope = _scope(hub, args.client)
    device = hub.store.get_device(args.id, scope)
    positions = hub.store.positions.count(device.id)
    hub.store.delete_device(args.id, scope)
    base.out.print(
        f"device {device.id}: {device.name} removed, with its {positions} position(s)",
        soft_wrap=True,
    )


def cmd_device_list(args: argparse.Namespace) -> None:
    hub = base._open_hub(args)
    client_id = base._client_id(hub, args.client) if args.client else None
    connection_id = getattr(args, "connection_id", None)
    devices = hub.store.list_devices(client_id, connection_id)
    latest = {r["device_id"]: r for r in hub.store.positions.latest(client_id=client_id)}
    rows = []
    for d in devices:
        pos = latest.get(d.id)
        row = DeviceOut.model_validate(d.model_dump()).model_dump(mode="json")
        row["latest"] = position_json(pos) if pos else None
        rows.append(row)
    if args.json:
        print_json(rows)
        return
    names = _client_names(hub)
    columns = [
        numeric("id"),
        text("client", 6).optional(4),
        text("name"),
        text("plate", 6).optional(2),
        text("remote id", 6).optional(1),
        numeric("conn").optional(3),
        fixed("status"),
        fixed("last fix"),
        numeric("lat"),
        numeric("lon"),
        numeric("km/h"),
    ]
    table = []
    for r in rows:
        p = r["latest"] or {}
        table.append(
            [
                r["id"],
                names.get(r["client_id"], r["client_id"]),
                r["name"],
                r["license_plate"],
                r["remote_id"],
                r["connection_id"],
                r["status"],
                when(p.get("fix_time")),
                coord(p.get("lat")),
                coord(p.get("lon")),
                number(p.get("speed_kmh")),
            ]
        )
    print_table(columns, table, empty="no devices")


# -- geofences -------------------------------------------------------------------------
def cmd_geofence_import(args: argparse.Namespace) -> None:
    from hub.web.api_geofences import collection_items, geofence_item

    hub = base._open_hub(args)
    data = read_json(args.file)
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "Feature":
        feature = _validated(GeofenceCreate, data)
        client_id = _owning_client(hub, args.client, feature.client_id)
        with refusals():
            items = [geofence_item(feature.properties, feature.geometry)]
            rows = hub.store.geofences.create_many(client_id, items)
    else:
        if isinstance(data, dict) and kind is None and "features" not in data:
            raise base.CliError("type: a GeoJSON FeatureCollection or Feature is required")
        collection = _validated(GeofenceImport, data)
        client_id = _owning_client(hub, args.client, collection.client_id)
        with refusals():
            items = collection_items(collection)
            rows = hub.store.geofences.create_many(client_id, items, "features.")
    ids = ", ".join(str(g.id) for g in rows)
    base.out.print(
        f"{len(rows)} geofence(s) imported for client {client_id}: {ids}", soft_wrap=True
    )


def cmd_geofence_list(args: argparse.Namespace) -> None:
    from hub.web.api_geofences import feature

    hub = base._open_hub(args)
    client_id = base._client_id(hub, args.client) if args.client else None
    store = hub.store.geofences
    rows = store.list(client_id)
    groups = store.group_ids([g.id or 0 for g in rows])
    features = [feature(g, groups.get(g.id or 0, [])) for g in rows]
    if args.json:
        print_json({"type": "FeatureCollection", "features": features})
        return
    names = _client_names(hub)
    table = []
    for f in features:
        props = f["properties"]
        table.append(
            [
                f["id"],
                names.get(props["client_id"], props["client_id"]),
                props["name"],
                props["kind"],
                number(props.get("radius_m", props.get("width_m"))),
                _where(f["geometry"]),
                listing(props.get("group_ids")),
            ]
        )
    columns = [
        numeric("id"),
        text("client", 6).optional(2),
        text("name"),
        fixed("kind"),
        numeric("size m"),
        text("where", 10),
        text("groups", 6).optional(1),
    ]
    print_table(columns, table, empty="no geofences")


def _where(geometry: Mapping[str, Any]) -> str:
    """A circle's centre (lat, lon), or how many points a polygon or a corridor has."""
    coords = geometry.get("coordinates") or []
    if geometry.get("type") == "Point" and len(coords) >= 2:
        return f"{coord(coords[1])},{coord(coords[0])}"
    if geometry.get("type") == "Polygon" and coords:
        return f"{max(len(coords[0]) - 1, 0)} vertices"
    return f"{len(coords)} points"


# -- rules -----------------------------------------------------------------------------
def cmd_rule_add(args: argparse.Namespace) -> None:
    hub = base._open_hub(args)
    body = _validated(RuleCreate, read_json(args.file))
    client_id = _owning_client(hub, args.client, body.client_id)
    owner = _rule_owner(hub, args.owner, client_id)
    fields = body.model_dump(exclude={"client_id"})
    with refusals():
        rule = hub.store.rules.create(client_id, owner, **fields)
    base.out.print(
        f"rule {rule.id}: {rule.name} ({rule.type}, client {rule.client_id}, owner {owner.name})",
        soft_wrap=True,
    )


def _rule_owner(hub: Any, name: str | None, client_id: int) -> Any:
    """The user a new rule is owned by, as the API's caller would be: an administrator
    or a manager of the rule's client."""
    users = hub.store.list_users()
    if name is None:
        admins = [u for u in users if u.role == Role.ADMIN]
        if not admins:
            raise base.CliError(
                "--owner: there is no system administrator yet; name the rule's owner "
                "(a manager of the client), or run gpshub serve once"
            )
        return admins[0]
    for u in users:
        if u.name == name or str(u.id) == name:
            if u.role == Role.ADMIN or (u.role == Role.MANAGER and u.client_id == client_id):
                return u
            raise base.CliError(
                f"--owner: {u.name!r} may not own rules of client {client_id} "
                "(an administrator or a manager of the client may)"
            )
    raise base.CliError(f"--owner: no user {name!r}")


def cmd_rule_list(args: argparse.Namespace) -> None:
    hub = base._open_hub(args)
    client_id = base._client_id(hub, args.client) if args.client else None
    rules = [
        RuleOut.model_validate(r.model_dump()).model_dump(mode="json")
        for r in hub.store.rules.list(client_id)
    ]
    if args.json:
        print_json(rules)
        return
    names = _client_names(hub)
    columns = [
        numeric("id"),
        text("client", 6).optional(4),
        text("name"),
        fixed("type"),
        text("params", 10),
        text("devices", 6),
        text("tags", 6).optional(1),
        fixed("on"),
        fixed("webhook").optional(2),
        text("owner", 6).optional(3),
    ]
    table = [
        [
            r["id"],
            names.get(r["client_id"], r["client_id"]),
            r["name"],
            r["type"],
            json.dumps(r["params"], separators=(",", ":")) if r["params"] else "",
            "all" if r["device_ids"] is None else listing(r["device_ids"]),
            "" if r["tags"] is None else listing(r["tags"]),
            flag(r["enabled"]),
            flag(r["webhook"]),
            r["owner_name"],
        ]
        for r in rules
    ]
    print_table(columns, table, empty="no rules")


# -- sinks -----------------------------------------------------------------------------
def cmd_sink_add(args: argparse.Namespace) -> None:
    from hub.sink_config import resolve_kind
    from hub.web.api_sinks import new_sink_fields

    hub = base._open_hub(args)
    data: dict[str, Any] = {}
    if args.file:
        loaded = read_json(args.file)
        if not isinstance(loaded, dict):
            raise base.CliError("body: must be a JSON object")
        data.update(loaded)
    data.update(_given(name=args.name, kind=args.kind, format=args.format))
    settings = base._parse_pairs(args.setting, "--setting")
    if args.url is not None:
        settings["url"] = args.url
    if settings:
        data["settings"] = {**(data.get("settings") or {}), **settings}
    options = base._parse_pairs(args.option, "--option")
    if options:
        data["format_options"] = {**(data.get("format_options") or {}), **options}
    headers = base._parse_pairs(args.header, "--header")
    if headers:
        data["headers"] = {**(data.get("headers") or {}), **headers}
    if args.signing:
        data["signing"] = True
    if args.disabled:
        data["enabled"] = False
    if args.failing_after_s is not None:
        data["failing_after_s"] = args.failing_after_s
    for required in ("name", "kind"):
        if required not in data:
            raise base.CliError(f"{SINK_FLAGS[required]} ({required}): required")
    body = _validated(SinkCreate, data, SINK_FLAGS)
    client_id = _owning_client(hub, args.client, body.client_id)
    with refusals(SINK_FLAGS):
        resolved = resolve_kind(hub.registry, body.kind, body.format)
        fields, signing_secret = new_sink_fields(hub, body, resolved)
        row = hub.store.sinks.create(client_id, **fields)
    base.out.print(
        f"sink {row.id}: {row.name} ({row.kind}, format {row.format}, {row.purpose}, "
        f"client {row.client_id})",
        soft_wrap=True,
    )
    fmt = hub.registry.formats.get(row.format)
    if fmt is not None and row.purpose == "locations":  # what the API's answer warns of
        for warning in fmt.device_warnings(hub.store.sinks.client_devices(row.client_id)):
            base.console.print(f"warning: {warning}", soft_wrap=True, markup=False)
    if signing_secret:
        base.console.print("signing secret (shown once, keep it safe):")
        base.out.print(signing_secret, soft_wrap=True)


def cmd_sink_list(args: argparse.Namespace) -> None:
    from hub.web.api_sinks import present_sink

    hub = base._open_hub(args)
    client_id = base._client_id(hub, args.client) if args.client else None
    sinks = [
        present_sink(hub, row).model_dump(mode="json") for row in hub.store.sinks.list(client_id)
    ]
    if args.json:
        print_json(sinks)
        return
    names = _client_names(hub)
    columns = [
        numeric("id"),
        text("client", 6).optional(5),
        text("name"),
        fixed("kind").optional(4),
        fixed("format").optional(3),
        text("url", 12),
        fixed("state"),
        fixed("on"),
        numeric("owed"),
        numeric("delivered").optional(2),
        numeric("dead").optional(1),
        text("last error"),
    ]
    table = [
        [
            s["id"],
            names.get(s["client_id"], s["client_id"]),
            s["name"],
            s["kind"],
            s["format"],
            s["settings"].get("url", ""),
            s["state"],
            flag(s["enabled"]),
            s["stats"]["pending"],
            s["stats"]["delivered"],
            s["stats"]["dead_letters"],
            s["last_error"],
        ]
        for s in sinks
    ]
    print_table(columns, table, empty="no sinks")


def cmd_sink_test(args: argparse.Namespace) -> int:
    from hub.sink_sample import send_sample

    hub = base._open_hub(args)
    row = hub.store.sinks.get(args.id, _scope(hub, args.client))
    with refusals():
        result = trio.run(send_sample, hub, row)
    target = row.settings.get("url", "its receiver")
    base.console.print(
        f"sink {row.id} ({row.name}): a sample {row.format} {row.purpose[:-1]} sent to "
        f"{target} (webhook-id {result.delivery_id})",
        soft_wrap=True,
        markup=False,
    )
    if args.show_body:
        base.console.print(result.body.decode("utf-8", "replace"), soft_wrap=True, markup=False)
    status = f"HTTP {result.status}" if result.status is not None else "no answer"
    word = {"delivered": "accepted", "failed": "failed", "refused": "refused"}[result.outcome]
    line = f"{word}: {result.message} in {result.seconds:.2f} s"
    if result.status is not None and status not in result.message:
        line += f" ({status})"
    if result.outcome == "failed":
        line += "; a delivery would be retried later"
    elif result.outcome == "refused":
        line += "; a delivery would become a dead letter"
        if result.excerpt:
            line += f"; the receiver said: {result.excerpt}"
    base.out.print(line, soft_wrap=True, markup=False)
    return 0 if result.ok else 1


# -- alerts ----------------------------------------------------------------------------
def cmd_alert_list(args: argparse.Namespace) -> None:
    from hub.web.api_rules import alert_out

    hub = base._open_hub(args)
    client_id = base._client_id(hub, args.client) if args.client else None
    query = _validated(
        AlertQuery,
        _given(
            device_id=args.device_id,
            rule_id=args.rule_id,
            after_id=args.after_id,
            limit=args.limit,
            **{"from": args.start, "to": args.end},
        ),
        QUERY_FLAGS,
    )
    start, end = query_times(hub, client_id, query.start, query.end)
    rows = hub.store.rules.alerts(
        client_id,
        device_id=query.device_id,
        rule_id=query.rule_id,
        start=start,
        end=end,
        after_id=query.after_id,
        limit=query.limit,
    )
    alerts = [alert_out(a) for a in rows]
    if args.json:
        print_json(alerts)
        return
    columns = [
        numeric("id"),
        fixed("time"),
        numeric("device"),
        text("vehicle", 6).optional(2),
        text("rule", 6).optional(3),
        fixed("message"),
        text("place", 6).optional(1),
        numeric("lat"),
        numeric("lon"),
    ]
    table = [
        [
            a.get("id"),
            when(a.get("fix_time")),
            a.get("device_id"),
            a.get("vehicle"),
            a.get("rule_name"),
            a.get("message_id"),
            a.get("place"),
            coord(a.get("lat")),
            coord(a.get("lon")),
        ]
        for a in alerts
    ]
    print_table(columns, table, empty="no alerts")
    if len(rows) == query.limit:
        base.console.print(f"more: --after-id {rows[-1].id}", markup=False)


__all__ = ["QUERY_FLAGS", "query_times", "read_json", "refusals"]
