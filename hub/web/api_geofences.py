"""Geofences (POIs) as GeoJSON Features, and their groups.

A geofence is a ``Point`` with ``properties.radius_m`` (a circle), a ``Polygon``, or a
``LineString`` with ``properties.width_m`` (a corridor).  The store validates the shape
and answers errors naming the GeoJSON field (``geometry.coordinates.0.3``,
``properties.radius_m``); a bulk import names ``features.N.…`` and stores nothing when
any feature is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.models import Geofence, GeofenceGroup
from hub.positions import utc_text
from hub.text import text_problem
from hub.web.auth import Access, filter_client, owning_client
from hub.web.errors import invalid
from hub.web.routing import ApiRequest, ApiRoute
from hub.web.schemas import (
    ClientFilter,
    GeofenceCollection,
    GeofenceCreate,
    GeofenceFeature,
    GeofenceImport,
    GeofenceUpdate,
    GroupCreate,
    GroupList,
    GroupOut,
)

_SHAPE_PROPS = ("radius_m", "width_m")


def feature(g: Geofence, group_ids: list[int]) -> dict[str, Any]:
    return GeofenceFeature(
        id=g.id or 0,
        geometry=g.geometry,
        properties={
            "name": g.name,
            "contact": g.contact,
            "kind": g.kind,
            "group_ids": group_ids,
            "client_id": g.client_id,
            **(g.properties or {}),
            "created_at": utc_text(g.created_at),
            "updated_at": utc_text(g.updated_at),
        },
    ).model_dump(mode="json")


async def _features(req: ApiRequest, rows: list[Geofence]) -> list[dict[str, Any]]:
    groups = await req.run(req.hub.store.geofences.group_ids, [g.id or 0 for g in rows])
    return [feature(g, groups.get(g.id or 0, [])) for g in rows]


def _check_texts(props: Mapping[str, Any], where: str, *, require_name: bool) -> None:
    """A geofence's ``name`` is one line of text; its ``contact`` may span lines
    (``hub.text``).  Both are named as the properties they are."""
    name = props.get("name")
    if name is not None or require_name:
        if not isinstance(name, str) or not name.strip():
            raise invalid(f"{where}properties.name", "required: a non-empty string")
        problem = text_problem(name)
        if problem:
            raise invalid(f"{where}properties.name", problem)
    contact = props.get("contact")
    if contact is not None:
        if not isinstance(contact, str):
            raise invalid(f"{where}properties.contact", "must be text")
        problem = text_problem(contact, multiline=True)
        if problem:
            raise invalid(f"{where}properties.contact", problem)


def geofence_item(props: Any, geometry: Any, where: str = "") -> dict[str, Any]:
    """The store's description of a geofence from a Feature's parts (``gpshub geofence
    import`` uses it too)."""
    if not isinstance(props, Mapping):
        raise invalid(f"{where}properties", "must be an object")
    _check_texts(props, where, require_name=True)
    group_ids = props.get("group_ids")
    if group_ids is not None and not isinstance(group_ids, list):
        raise invalid(f"{where}properties.group_ids", "must be a list of group ids")
    return {
        "name": props.get("name"),
        "geometry": geometry,
        "properties": {k: props[k] for k in _SHAPE_PROPS if k in props},
        "contact": props.get("contact"),
        "group_ids": group_ids or (),
    }


def collection_items(body: GeofenceImport) -> list[dict[str, Any]]:
    """The store's descriptions of the geofences of an import (errors name
    ``features.N.…``); store them with ``create_many(client, items, "features.")``."""
    items = []
    for i, f in enumerate(body.features):
        if not isinstance(f, Mapping):
            raise invalid(f"features.{i}", "must be a GeoJSON Feature object")
        items.append(geofence_item(f.get("properties") or {}, f.get("geometry"), f"features.{i}."))
    if not items:
        raise invalid("features", "must hold at least one Feature")
    return items


# -- geofences -------------------------------------------------------------------------
async def list_geofences(req: ApiRequest) -> dict[str, Any]:
    client_id = filter_client(req.principal, req.query_as(ClientFilter).client_id)
    rows = await req.run(req.hub.store.geofences.list, client_id)
    return {"type": "FeatureCollection", "features": await _features(req, rows)}


async def create_geofence(req: ApiRequest) -> dict[str, Any]:
    body = req.body_as(GeofenceCreate)
    client_id = await owning_client(req.hub, req.principal, body.client_id)
    item = geofence_item(body.properties, body.geometry)
    (g,) = await req.run(req.hub.store.geofences.create_many, client_id, [item])
    return (await _features(req, [g]))[0]


async def import_geofences(req: ApiRequest) -> dict[str, Any]:
    body = req.body_as(GeofenceImport)
    client_id = await owning_client(req.hub, req.principal, body.client_id)
    items = collection_items(body)
    rows = await req.run(req.hub.store.geofences.create_many, client_id, items, "features.")
    return {"type": "FeatureCollection", "features": await _features(req, rows)}


async def get_geofence(req: ApiRequest) -> dict[str, Any]:
    g = await req.run(req.hub.store.geofences.get, req.path_int("id"), req.scope)
    return (await _features(req, [g]))[0]


async def update_geofence(req: ApiRequest) -> dict[str, Any]:
    body = req.body_as(GeofenceUpdate)
    store = req.hub.store.geofences
    geofence_id = req.path_int("id")
    old = await req.run(store.get, geofence_id, req.scope)
    props = body.properties
    _check_texts(props, "", require_name="name" in props)
    fields: dict[str, Any] = {}
    for name in ("name", "contact"):
        if name in props:
            fields[name] = props[name]
    if "group_ids" in props:
        if props["group_ids"] is not None and not isinstance(props["group_ids"], list):
            raise invalid("properties.group_ids", "must be a list of group ids")
        fields["group_ids"] = props["group_ids"] or []
    if body.geometry is not None:
        fields["geometry"] = body.geometry
    if body.geometry is not None or any(k in props for k in _SHAPE_PROPS):
        kept = {} if body.geometry is not None else dict(old.properties or {})
        fields["properties"] = {**kept, **{k: props[k] for k in _SHAPE_PROPS if k in props}}
        if body.geometry is not None and not fields["properties"]:
            fields["properties"] = dict(old.properties or {})  # the same size, a new place
    g = await req.run(store.update, geofence_id, req.scope, **fields)
    return (await _features(req, [g]))[0]


async def delete_geofence(req: ApiRequest) -> None:
    await req.run(req.hub.store.geofences.delete, req.path_int("id"), req.scope)


# -- groups ----------------------------------------------------------------------------
def group_out(g: GeofenceGroup) -> GroupOut:
    return GroupOut.model_validate(g.model_dump())


async def list_groups(req: ApiRequest) -> GroupList:
    client_id = filter_client(req.principal, req.query_as(ClientFilter).client_id)
    groups = await req.run(req.hub.store.geofences.list_groups, client_id)
    return GroupList(groups=[group_out(g) for g in groups])


async def create_group(req: ApiRequest) -> GroupOut:
    body = req.body_as(GroupCreate)
    client_id = await owning_client(req.hub, req.principal, body.client_id)
    return group_out(await req.run(req.hub.store.geofences.create_group, client_id, body.name))


async def delete_group(req: ApiRequest) -> None:
    await req.run(req.hub.store.geofences.delete_group, req.path_int("id"), req.scope)


TAG = "geofences"
ROUTES = [
    ApiRoute("GET", "/api/geofences", list_geofences, Access.USER,
             "List geofences as a GeoJSON FeatureCollection", TAG, query=ClientFilter,
             response=GeofenceCollection),
    ApiRoute("POST", "/api/geofences", create_geofence, Access.MANAGER,
             "Create a geofence from a GeoJSON Feature", TAG, body=GeofenceCreate,
             response=GeofenceFeature, status=201, errors=(422,),
             description="`Point` + `properties.radius_m` (circle), `Polygon`, or "
             "`LineString` + `properties.width_m` (corridor); `properties` also carry "
             "`name`, `contact` and `group_ids`."),
    ApiRoute("POST", "/api/geofences/import", import_geofences, Access.MANAGER,
             "Create geofences from a GeoJSON FeatureCollection, all or nothing", TAG,
             body=GeofenceImport, response=GeofenceCollection, status=201, errors=(422,),
             description="Errors name `features.N.…`; nothing is stored then."),
    ApiRoute("GET", "/api/geofences/{id:int}", get_geofence, Access.USER,
             "Read a geofence as a GeoJSON Feature", TAG, response=GeofenceFeature,
             errors=(404,)),
    ApiRoute("PATCH", "/api/geofences/{id:int}", update_geofence, Access.MANAGER,
             "Change a geofence", TAG, body=GeofenceUpdate, response=GeofenceFeature,
             errors=(404, 422)),
    ApiRoute("DELETE", "/api/geofences/{id:int}", delete_geofence, Access.MANAGER,
             "Delete a geofence", TAG, status=204, errors=(404,)),
    ApiRoute("GET", "/api/geofence-groups", list_groups, Access.USER,
             "List geofence groups", TAG, query=ClientFilter, response=GroupList),
    ApiRoute("POST", "/api/geofence-groups", create_group, Access.MANAGER,
             "Create a geofence group", TAG, body=GroupCreate, response=GroupOut,
             status=201, errors=(409, 422)),
    ApiRoute("DELETE", "/api/geofence-groups/{id:int}", delete_group, Access.MANAGER,
             "Delete a geofence group (its geofences stay)", TAG, status=204,
             errors=(404,)),
]  # fmt: skip
