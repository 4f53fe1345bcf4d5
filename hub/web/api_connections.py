"""Connections: CRUD, enable/disable, test, browse and import, status.

Credentials are write-only (see ``hub.web.credentials``) and validated with the source's
own model before anything is stored; every change is applied to the running hub with
``Hub.reload_connection``.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from hub.logging_setup import scrub
from hub.models import Connection
from hub.web.api_devices import device_out
from hub.web.auth import Access, filter_client, owning_client
from hub.web.credentials import (
    SourceClass,
    checked_credentials,
    checked_options,
    checked_urls,
    credential_states,
    merged,
    saved_credentials,
    secret_values,
)
from hub.web.errors import ApiError, invalid
from hub.web.routing import ApiRequest, ApiRoute
from hub.web.schemas import (
    ClientFilter,
    ConnectionCreate,
    ConnectionList,
    ConnectionOut,
    ConnectionStatus,
    ConnectionTest,
    ConnectionUpdate,
    ErrorDetail,
    ImportOutcome,
    ImportRequest,
    RemoteDeviceList,
    RemoteDeviceOut,
    SavedConnectionTest,
    StatusList,
    TestOutcome,
)
from hub.web.upstream import browse, run_test

if TYPE_CHECKING:
    from hub.core import Hub


# -- presenting ------------------------------------------------------------------------
def _present(hub: Hub, conn: Connection) -> ConnectionOut:
    """Blocking (it decrypts the credentials to tell which are set)."""
    cls = hub.registry.sources.get(conn.kind)
    creds = saved_credentials(hub, conn)
    return ConnectionOut(
        id=conn.id or 0,
        client_id=conn.client_id,
        kind=conn.kind,
        label=conn.label,
        enabled=conn.enabled,
        credentials=credential_states(cls, creds),
        options=dict(conn.options or {}),
        state=conn.state,
        last_error=scrub(conn.last_error, secret_values(cls, creds)),
        state_message=scrub(conn.state_message, secret_values(cls, creds)),
        last_poll_at=conn.last_poll_at,
        last_success_at=conn.last_success_at,
        next_poll_at=conn.next_poll_at,
        positions_received=conn.positions_received,
        created_at=conn.created_at,
        updated_at=conn.updated_at,
    )


def _status(hub: Hub, conn: Connection, devices: int) -> ConnectionStatus:
    """Blocking, like ``_present``."""
    cls = hub.registry.sources.get(conn.kind)
    creds = saved_credentials(hub, conn) if conn.last_error or conn.state_message else {}
    return ConnectionStatus(
        connection_id=conn.id or 0,
        client_id=conn.client_id,
        label=conn.label,
        kind=conn.kind,
        enabled=conn.enabled,
        running=(conn.id or 0) in hub.runners,
        state=conn.state,
        last_poll_at=conn.last_poll_at,
        last_success_at=conn.last_success_at,
        next_poll_at=conn.next_poll_at,
        last_error=scrub(conn.last_error, secret_values(cls, creds)),
        state_message=scrub(conn.state_message, secret_values(cls, creds)),
        positions_received=conn.positions_received,
        devices=devices,
    )


# -- validating ------------------------------------------------------------------------
def _source_class(hub: Hub, kind: str) -> SourceClass:
    cls = hub.registry.sources.get(kind)
    if cls is None:
        known = ", ".join(sorted(hub.registry.sources)) or "none installed"
        raise invalid("kind", f"unknown source kind {kind!r} (known: {known})")
    return cls


def _installed(hub: Hub, conn: Connection) -> SourceClass:
    cls = hub.registry.sources.get(conn.kind)
    if cls is None:
        raise ApiError(
            409, "kind_unavailable", f"the source kind {conn.kind!r} is not installed", "kind"
        )
    return cls


# -- handlers --------------------------------------------------------------------------
async def list_connections(req: ApiRequest) -> ConnectionList:
    client_id = filter_client(req.principal, req.query_as(ClientFilter).client_id)
    hub = req.hub

    def load() -> list[ConnectionOut]:
        return [_present(hub, c) for c in hub.store.list_connections(client_id)]

    return ConnectionList(connections=await req.run(load))


async def create_connection(req: ApiRequest) -> ConnectionOut:
    body = req.body_as(ConnectionCreate)
    client_id = await owning_client(req.hub, req.principal, body.client_id)
    cls = _source_class(req.hub, body.kind)
    creds = checked_credentials(cls, body.credentials)
    options = checked_options(cls, body.options)
    checked_urls(req.hub, cls, creds, options)
    conn = await req.run(
        req.hub.store.create_connection,
        client_id,
        body.kind,
        body.label,
        creds,
        options,
        body.enabled,
    )
    await req.hub.reload_connection(conn.id or 0)
    return await req.run(_present, req.hub, conn)


async def _get(req: ApiRequest) -> Connection:
    return await req.run(req.hub.store.get_connection, req.path_int("id"), req.scope)


async def get_connection(req: ApiRequest) -> ConnectionOut:
    return await req.run(_present, req.hub, await _get(req))


async def update_connection(req: ApiRequest) -> ConnectionOut:
    body = req.body_as(ConnectionUpdate)
    conn = await _get(req)
    changes: dict[str, Any] = {}
    if body.label is not None:
        changes["label"] = body.label
    if body.credentials is not None or body.options is not None:
        cls = _installed(req.hub, conn)
        if body.credentials is not None:
            saved = await req.run(saved_credentials, req.hub, conn)
            changes["credentials"] = checked_credentials(cls, merged(saved, body.credentials))
        if body.options is not None:
            changes["options"] = checked_options(cls, merged(conn.options, body.options))
        checked_urls(
            req.hub,
            cls,
            changes.get("credentials") or await req.run(saved_credentials, req.hub, conn),
            changes.get("options", conn.options),
        )
    if body.enabled is not None:
        changes["enabled"] = body.enabled
    store = req.hub.store
    conn = await req.run(store.update_connection, conn.id or 0, req.scope, **changes)
    await req.hub.reload_connection(conn.id or 0)
    return await req.run(_present, req.hub, conn)


async def delete_connection(req: ApiRequest) -> None:
    connection_id = req.path_int("id")
    await req.run(req.hub.store.delete_connection, connection_id, req.scope)
    await req.hub.reload_connection(connection_id)


async def _set_enabled(req: ApiRequest, enabled: bool) -> ConnectionOut:
    conn = await req.run(
        req.hub.store.update_connection, req.path_int("id"), req.scope, enabled=enabled
    )
    await req.hub.reload_connection(conn.id or 0)
    return await req.run(_present, req.hub, conn)


async def enable_connection(req: ApiRequest) -> ConnectionOut:
    return await _set_enabled(req, True)


async def disable_connection(req: ApiRequest) -> ConnectionOut:
    return await _set_enabled(req, False)


async def test_unsaved_connection(req: ApiRequest) -> TestOutcome:
    body = req.body_as(ConnectionTest)
    cls = _source_class(req.hub, body.kind)
    return await run_test(req.hub, cls, body.credentials, body.options)


async def test_saved_connection(req: ApiRequest) -> TestOutcome:
    body = req.body_as(SavedConnectionTest)
    conn = await _get(req)
    cls = req.hub.registry.sources.get(conn.kind)
    if cls is None:
        message = f"the source kind {conn.kind!r} is not installed"
        return TestOutcome(
            ok=False, error=ErrorDetail(code="bad_config", message=message, field="kind")
        )
    saved = await req.run(saved_credentials, req.hub, conn)
    return await run_test(
        req.hub,
        cls,
        merged(saved, body.credentials),
        merged(conn.options, body.options),
        connection_id=conn.id,
        label=conn.label,
    )


async def list_remote_devices(req: ApiRequest) -> RemoteDeviceList:
    conn = await _get(req)
    remote = await browse(req.hub, _installed(req.hub, conn), conn)
    devices = await req.run(req.hub.store.list_devices, None, conn.id)
    imported = {d.upstream_id: d.id for d in devices}
    return RemoteDeviceList(
        devices=[
            RemoteDeviceOut(
                upstream_id=str(r.upstream_id),
                name=r.name,
                imei=r.imei,
                license_plate=r.license_plate,
                imported_as=imported.get(str(r.upstream_id)),
            )
            for r in remote
        ]
    )


async def import_devices(req: ApiRequest) -> ImportOutcome:
    body = req.body_as(ImportRequest)
    conn = await _get(req)
    remote = await browse(req.hub, _installed(req.hub, conn), conn)
    if body.upstream_ids is not None:
        by_id = {str(r.upstream_id): r for r in remote}
        unknown = [u for u in body.upstream_ids if u not in by_id]
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:10])
            raise invalid("upstream_ids", f"not found upstream: {shown}")
        remote = [by_id[u] for u in dict.fromkeys(body.upstream_ids)]
    created, existing = await req.run(req.hub.store.import_devices, conn.id or 0, remote)
    if created:
        await req.hub.reload_connection(conn.id or 0)  # poll the new devices now
    return ImportOutcome(
        created=len(created),
        existing=len(existing),
        devices=[device_out(d) for d in [*created, *existing]],
    )


async def connection_status(req: ApiRequest) -> ConnectionStatus:
    conn = await _get(req)
    hub = req.hub

    def load() -> ConnectionStatus:
        return _status(hub, conn, len(hub.store.list_devices(None, conn.id)))

    return await req.run(load)


async def all_status(req: ApiRequest) -> StatusList:
    client_id = filter_client(req.principal, req.query_as(ClientFilter).client_id)
    hub = req.hub

    def load() -> list[ConnectionStatus]:
        counts = Counter(d.connection_id for d in hub.store.list_devices(client_id))
        return [_status(hub, c, counts.get(c.id, 0)) for c in hub.store.list_connections(client_id)]

    return StatusList(connections=await req.run(load))


# -- the table -------------------------------------------------------------------------
TAG = "connections"
_TEST_DOC = (
    "A failed test is a normal answer: 200 with `ok: false` and an `error` whose code is "
    "`invalid_auth` (with the `field` when the source names the refused credential), "
    "`cannot_connect`, `bad_config` (with the `field`), `rate_limited`, "
    "`update_failed`, `not_supported` or `source_error`.  Nothing is saved."
)
_UPSTREAM_DOC = (
    "A source without browse answers 400 `not_supported` (its kind says "
    "`supports_browse: false`).  Upstream failures answer 502 with the source's error code "
    "(`invalid_auth`, `cannot_connect`, `bad_config`, `rate_limited`, `update_failed`)."
)

ROUTES = [
    ApiRoute("GET", "/api/connections", list_connections, Access.USER,
             "List connections", TAG, query=ClientFilter, response=ConnectionList),
    ApiRoute("POST", "/api/connections", create_connection, Access.MANAGER,
             "Create a connection", TAG, body=ConnectionCreate, response=ConnectionOut,
             status=201, errors=(409, 422),
             description="The credentials are validated by the source kind first (a bad "
             "one is a 422 naming `credentials.<field>`); nothing is stored on refusal. "
             "An enabled connection starts polling at once."),
    ApiRoute("POST", "/api/connections/test", test_unsaved_connection, Access.MANAGER,
             "Test unsaved credentials", TAG, body=ConnectionTest, response=TestOutcome,
             errors=(422,), description=_TEST_DOC),
    ApiRoute("GET", "/api/connections/{id:int}", get_connection, Access.USER,
             "Read a connection", TAG, response=ConnectionOut, errors=(404,),
             description="Secret credential fields show only whether they are set."),
    ApiRoute("PATCH", "/api/connections/{id:int}", update_connection, Access.MANAGER,
             "Change a connection", TAG, body=ConnectionUpdate, response=ConnectionOut,
             errors=(404, 409, 422),
             description="`credentials` and `options` are merged into the saved values: a "
             "field left out keeps its value, so the password need not be typed again. "
             "The merged credentials are validated, and the runner restarts."),
    ApiRoute("DELETE", "/api/connections/{id:int}", delete_connection, Access.MANAGER,
             "Delete a connection", TAG, status=204, errors=(404,),
             description="Its runner stops; its devices stay, unlinked."),
    ApiRoute("POST", "/api/connections/{id:int}/enable", enable_connection, Access.MANAGER,
             "Enable a connection (starts polling)", TAG, response=ConnectionOut,
             errors=(404,)),
    ApiRoute("POST", "/api/connections/{id:int}/disable", disable_connection, Access.MANAGER,
             "Disable a connection (stops polling)", TAG, response=ConnectionOut,
             errors=(404,)),
    ApiRoute("POST", "/api/connections/{id:int}/test", test_saved_connection, Access.MANAGER,
             "Test a saved connection", TAG, body=SavedConnectionTest, body_required=False,
             response=TestOutcome, errors=(404,),
             description=_TEST_DOC + "  Credentials given are merged into the saved ones "
             "for this test only."),
    ApiRoute("GET", "/api/connections/{id:int}/remote-devices", list_remote_devices,
             Access.USER, "Browse the connection's remote devices", TAG,
             response=RemoteDeviceList, errors=(400, 404, 502), description=_UPSTREAM_DOC),
    ApiRoute("POST", "/api/connections/{id:int}/import", import_devices, Access.MANAGER,
             "Import remote devices as devices", TAG, body=ImportRequest, body_required=False,
             response=ImportOutcome, errors=(400, 404, 422, 502),
             description="All remote devices, or those named in `upstream_ids`.  Idempotent: "
             "a remote device imported before is reported under `existing`.  " + _UPSTREAM_DOC),
    ApiRoute("GET", "/api/connections/{id:int}/status", connection_status, Access.USER,
             "Polling status of a connection", TAG, response=ConnectionStatus, errors=(404,)),
    ApiRoute("GET", "/api/status", all_status, Access.USER,
             "Polling status of every visible connection", TAG, query=ClientFilter,
             response=StatusList),
]  # fmt: skip
