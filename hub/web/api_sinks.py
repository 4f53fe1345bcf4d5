"""Sinks: where a client's locations and alerts are delivered, their dead letters, replay.

Who configures what: a *location relay* (a sink of purpose ``locations``) is set up and
changed by the system administrator only; a client's *alerts webhook* (purpose
``alerts``, one per client) by the administrator or that client's manager.  Everyone of
the client may read them.

Custom header values and signing secrets are write-only: they are kept encrypted in the
sink's secrets (``SinkStore.secrets_of`` / ``update(secrets=…)``), a sink shows only the
header names and whether it signs, and a new signing secret is in the answer that made
it, never again.  The configuration is validated by ``hub.sink_config`` before anything
is stored; every change is applied to the running hub with ``DeliveryService.reload``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from hub.logging_setup import scrub
from hub.models import DeadLetter, SinkRow
from hub.secrets import SecretError
from hub.signing import generate_secret
from hub.sink_config import (
    ResolvedKind,
    checked_format_options,
    checked_headers,
    checked_settings,
    resolve_kind,
    usable_formats,
)
from hub.store import Principal
from hub.web.auth import Access, filter_client, owning_client
from hub.web.errors import ApiError, forbidden, invalid
from hub.web.routing import ApiRequest, ApiRoute
from hub.web.schemas import (
    ClientFilter,
    DeadLetterOut,
    DeadLetterPage,
    DeadLetterQuery,
    DeadLetterSelection,
    DiscardedOut,
    QueuedOut,
    ReplayRequest,
    SigningSecret,
    SinkCreate,
    SinkFormatOut,
    SinkKindList,
    SinkKindOut,
    SinkList,
    SinkOut,
    SinkSaved,
    SinkStats,
    SinkUpdate,
)
from hub.web.times import client_zone, resolve

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger("hub.web")

ROTATION_GRACE = timedelta(hours=24)
"""How long the secrets a rotation replaces are still honoured."""
RELAYS_ARE_ADMINS = "location relays are set up by the system administrator"


# -- secrets -----------------------------------------------------------------------------
def _secrets(hub: Hub, row: SinkRow) -> dict[str, Any]:
    """Blocking.  Secrets that no key decrypts count as none (to be set again)."""
    try:
        return hub.store.sinks.secrets_of(row)
    except SecretError:
        log.warning("sink %s: its secrets cannot be decrypted with the keys", row.id)
        return {}


def _secret_values(secrets: dict[str, Any]) -> list[str]:
    values = [str(v) for v in (secrets.get("headers") or {}).values()]
    values += [str(s.get("secret")) for s in secrets.get("signing") or []]
    return [v for v in values if v]


def _signing_entry(secret: str) -> dict[str, Any]:
    return {"secret": secret, "until": None}


# -- presenting --------------------------------------------------------------------------
def _present(hub: Hub, row: SinkRow, secrets: dict[str, Any] | None = None) -> SinkOut:
    """Blocking (it decrypts the secrets to tell what is set, and counts)."""
    if secrets is None:
        secrets = _secrets(hub, row)
    return SinkOut(
        id=row.id or 0,
        client_id=row.client_id,
        name=row.name,
        kind=row.kind,
        format=row.format,
        purpose=row.purpose,
        settings=dict(row.settings or {}),
        format_options=dict(row.format_options or {}),
        headers=list(secrets.get("headers") or {}),
        signing=bool(secrets.get("signing")),
        enabled=row.enabled,
        state=row.state,
        failing_after_s=row.failing_after_s,
        failing_since=row.failing_since,
        next_probe_at=row.probe_at,
        last_error=scrub(row.last_error, _secret_values(secrets)),
        last_attempt_at=row.last_attempt_at,
        last_success_at=row.last_success_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        stats=SinkStats(**hub.store.sinks.stats(row)),
    )


def _device_warnings(hub: Hub, row: SinkRow) -> list[str]:
    """Blocking.  What the relay's format says about the client's devices (see
    ``Format.device_warnings``), logged once here."""
    fmt = hub.registry.formats.get(row.format)
    if row.purpose != "locations" or fmt is None:
        return []
    warnings = fmt.device_warnings(hub.store.sinks.client_devices(row.client_id))
    if warnings:
        log.warning(
            "sink %s (%s) of client %s: %s", row.id, row.format, row.client_id, "; ".join(warnings)
        )
    return warnings


async def _saved(req: ApiRequest, row: SinkRow, signing_secret: str | None) -> SinkSaved:
    out = await req.run(_present, req.hub, row)
    warnings = await req.run(_device_warnings, req.hub, row)
    return SinkSaved(**out.model_dump(), signing_secret=signing_secret, warnings=warnings)


# -- access ------------------------------------------------------------------------------
def _may_configure(principal: Principal, purpose: str) -> None:
    """Location relays are the administrator's; alerts webhooks also the client's manager
    (the route's ``Access.MANAGER`` has let only managers and the administrator in)."""
    if purpose == "locations" and not principal.is_admin:
        raise forbidden(RELAYS_ARE_ADMINS)


async def _get(req: ApiRequest) -> SinkRow:
    return await req.run(req.hub.store.sinks.get, req.path_int("id"), req.scope)


async def _get_to_change(req: ApiRequest) -> SinkRow:
    row = await _get(req)
    _may_configure(req.principal, row.purpose)
    return row


# -- kinds -------------------------------------------------------------------------------
async def sink_kinds(req: ApiRequest) -> SinkKindList:
    registry = req.hub.registry
    kinds = []
    for name in sorted(registry.sinks):
        cls = registry.sinks[name]
        kinds.append(
            SinkKindOut(
                kind=cls.kind,
                title=cls.title,
                purpose=cls.purpose,
                default_format=cls.default_format,
                settings=cls.Settings.model_json_schema(),
                formats=[
                    SinkFormatOut(
                        kind=f.kind,
                        title=f.title,
                        purpose=f.purpose,
                        max_batch=f.max_batch,
                        options=f.Options.model_json_schema(),
                    )
                    for f in usable_formats(registry, cls)
                ],
            )
        )
    return SinkKindList(kinds=kinds)


# -- sinks -------------------------------------------------------------------------------
async def list_sinks(req: ApiRequest) -> SinkList:
    client_id = filter_client(req.principal, req.query_as(ClientFilter).client_id)
    hub = req.hub

    def load() -> list[SinkOut]:
        return [_present(hub, row) for row in hub.store.sinks.list(client_id)]

    return SinkList(sinks=await req.run(load))


async def create_sink(req: ApiRequest) -> SinkSaved:
    body = req.body_as(SinkCreate)
    hub = req.hub
    client_id = await owning_client(hub, req.principal, body.client_id)
    resolved = resolve_kind(hub.registry, body.kind, body.format)
    _may_configure(req.principal, resolved.purpose)
    fields, signing_secret = new_sink_fields(hub, body, resolved)
    row = await req.run(hub.store.sinks.create, client_id, **fields)
    await hub.delivery.reload(row.id or 0)
    return await _saved(req, row, signing_secret)


def new_sink_fields(
    hub: Hub, body: SinkCreate, resolved: ResolvedKind
) -> tuple[dict[str, Any], str | None]:
    """What ``SinkStore.create`` takes besides the client, every part checked (a refusal
    is an ``Invalid`` naming the field), and the new signing secret if the sink signs.
    ``gpshub sink add`` stores sinks with it too."""
    settings = checked_settings(resolved.sink_class, hub.outbound_policy, body.settings)
    options = checked_format_options(resolved.format_class, body.format_options)
    secrets: dict[str, Any] = {}
    headers = checked_headers(body.headers)
    if headers:
        secrets["headers"] = headers
    signing_secret = generate_secret() if body.signing else None
    if signing_secret is not None:
        secrets["signing"] = [_signing_entry(signing_secret)]
    fields = {
        "name": body.name,
        "kind": resolved.sink_class.kind,
        "format": resolved.format_class.kind,
        "purpose": resolved.purpose,
        "settings": settings,
        "format_options": options,
        "secrets": secrets,
        "enabled": body.enabled,
        "failing_after_s": body.failing_after_s,
    }
    return fields, signing_secret


def present_sink(hub: Hub, row: SinkRow) -> SinkOut:
    """Blocking: a sink as the API shows it (``gpshub sink list --json`` too)."""
    return _present(hub, row)


async def get_sink(req: ApiRequest) -> SinkOut:
    return await req.run(_present, req.hub, await _get(req))


async def update_sink(req: ApiRequest) -> SinkSaved:
    body = req.body_as(SinkUpdate)
    given = body.model_fields_set
    hub = req.hub
    row = await _get_to_change(req)
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    new_format = body.format is not None and body.format != row.format
    if new_format or body.settings is not None or body.format_options is not None:
        if row.kind not in hub.registry.sinks:
            raise ApiError(
                409, "kind_unavailable", f"the sink kind {row.kind!r} is not installed", "kind"
            )
        resolved = resolve_kind(hub.registry, row.kind, body.format or row.format)
        if resolved.purpose != row.purpose:
            raise invalid(
                "format",
                f"format {resolved.format_class.kind!r} encodes {resolved.purpose}; a sink "
                f"delivering {row.purpose} cannot change that (make another sink)",
            )
        settings = dict(row.settings or {})
        for key, value in (body.settings or {}).items():
            if value is None:
                settings.pop(key, None)
            else:
                settings[key] = value
        changes["settings"] = checked_settings(resolved.sink_class, hub.outbound_policy, settings)
        if body.format_options is not None:
            options = body.format_options
        else:
            options = {} if new_format else dict(row.format_options or {})
        changes["format_options"] = checked_format_options(resolved.format_class, options)
        if new_format:
            changes["format"] = resolved.format_class.kind
    headers = checked_headers(body.headers) if body.headers is not None else None
    if body.enabled is not None:
        changes["enabled"] = body.enabled
    if "failing_after_s" in given:
        changes["failing_after_s"] = body.failing_after_s
    signing_secret: str | None = None
    if headers is not None or body.signing is not None:
        secrets = await req.run(_secrets, hub, row)
        if headers is not None:
            secrets.pop("headers", None)
            if headers:
                secrets["headers"] = headers
        if body.signing is False:
            secrets.pop("signing", None)
        elif body.signing and not secrets.get("signing"):
            signing_secret = generate_secret()
            secrets["signing"] = [_signing_entry(signing_secret)]
        changes["secrets"] = secrets
    row = await req.run(hub.store.sinks.update, row.id or 0, req.scope, **changes)
    await hub.delivery.reload(row.id or 0)
    return await _saved(req, row, signing_secret)


async def delete_sink(req: ApiRequest) -> None:
    row = await _get_to_change(req)
    await req.run(req.hub.store.sinks.delete, row.id or 0, req.scope)
    await req.hub.delivery.reload(row.id or 0)


def _rotated(signing: list[dict[str, Any]], new: str, now: datetime) -> list[dict[str, Any]]:
    """``new`` first, then the secrets it replaces, each honoured for at most
    ``ROTATION_GRACE`` more (ones that have expired already are dropped)."""
    limit = now + ROTATION_GRACE
    kept = []
    for entry in signing:
        until = entry.get("until")
        ends = limit if until is None else min(datetime.fromisoformat(until), limit)
        if ends > now:
            kept.append({**entry, "until": ends.isoformat()})
    return [_signing_entry(new), *kept]


async def rotate_secret(req: ApiRequest) -> SigningSecret:
    hub = req.hub
    row = await _get_to_change(req)
    secrets = await req.run(_secrets, hub, row)
    if not secrets.get("signing"):
        raise invalid("signing", "the sink does not sign; turn signing on first (PATCH signing)")
    new = generate_secret()
    secrets["signing"] = _rotated(list(secrets["signing"]), new, hub.clock.now())
    await req.run(hub.store.sinks.update, row.id or 0, req.scope, secrets=secrets)
    await hub.delivery.reload(row.id or 0)
    return SigningSecret(signing_secret=new)


# -- dead letters and replay -------------------------------------------------------------
def _dead_letter_out(d: DeadLetter, secrets: list[str]) -> DeadLetterOut:
    return DeadLetterOut(
        id=d.id or 0,
        outbox_id=d.outbox_id,
        device_id=d.device_id,
        delivery_id=d.delivery_id,
        attempts=d.attempts,
        status=d.status,
        error=scrub(d.error, secrets) or "",
        excerpt=scrub(d.excerpt, secrets) or "",  # a receiver may echo the request's headers
        created_at=d.created_at,
    )


async def list_dead_letters(req: ApiRequest) -> DeadLetterPage:
    q = req.query_as(DeadLetterQuery)
    row = await _get(req)
    hub = req.hub

    def load() -> list[DeadLetterOut]:
        values = _secret_values(_secrets(hub, row))
        rows = hub.store.sinks.dead_letters(row.id or 0, after_id=q.after_id, limit=q.limit)
        return [_dead_letter_out(d, values) for d in rows]

    letters = await req.run(load)
    return DeadLetterPage(
        dead_letters=letters, next_after_id=letters[-1].id if letters else q.after_id
    )


async def resend_dead_letters(req: ApiRequest) -> QueuedOut:
    body = req.body_as(DeadLetterSelection)
    row = await _get_to_change(req)
    queued = await req.run(req.hub.store.sinks.resend_dead, row, body.ids, req.hub.clock.now())
    if queued:
        req.hub.delivery.notify({row.client_id})
    return QueuedOut(queued=queued)


async def discard_dead_letters(req: ApiRequest) -> DiscardedOut:
    body = req.body_as(DeadLetterSelection)
    row = await _get_to_change(req)
    discarded = await req.run(req.hub.store.sinks.discard_dead, row.id or 0, body.ids)
    return DiscardedOut(discarded=discarded)


async def replay(req: ApiRequest) -> QueuedOut:
    body = req.body_as(ReplayRequest)
    row = await _get_to_change(req)
    zone = await client_zone(req, row.client_id, body.start, body.end)
    start = resolve(body.start, zone, "from", body=True)
    end = resolve(body.end, zone, "to", body=True)
    assert start is not None and end is not None
    if end <= start:
        raise invalid("to", "must be after 'from'")
    hub = req.hub
    if body.device_ids is not None:
        devices = await req.run(hub.store.list_devices, row.client_id)
        own = {d.id for d in devices}
        foreign = sorted(set(body.device_ids) - own)
        if foreign:
            shown = ", ".join(str(i) for i in foreign[:10])
            raise invalid("device_ids", f"not devices of the sink's client: {shown}")
    queued = await req.run(
        hub.store.sinks.replay, row, start, end, body.device_ids, hub.clock.now()
    )
    if queued:
        hub.delivery.notify({row.client_id})
    return QueuedOut(queued=queued)


# -- the table ---------------------------------------------------------------------------
TAG = "sinks"
_WHO = (
    "  Location relays (purpose `locations`) are the system administrator's: a client's "
    "manager gets 403 for them."
)
_SECRETS = (
    "`headers` values and signing secrets are write-only; a new signing secret "
    "(`signing_secret`) is in this answer only."
)

ROUTES = [
    ApiRoute("GET", "/api/sink-kinds", sink_kinds, Access.USER, "List the sink kinds", TAG,
             response=SinkKindList,
             description="Each kind with its settings' JSON Schema and the formats it "
             "accepts, each with its options' JSON Schema."),
    ApiRoute("GET", "/api/sinks", list_sinks, Access.USER, "List sinks", TAG,
             query=ClientFilter, response=SinkList),
    ApiRoute("POST", "/api/sinks", create_sink, Access.MANAGER, "Create a sink", TAG,
             body=SinkCreate, response=SinkSaved, status=201, errors=(409, 422),
             description="The configuration is validated first (a refusal is a 422 naming "
             "the field, e.g. `settings.url`); nothing is stored on refusal.  A client has at "
             "most one alerts webhook (a second is 409).  " + _SECRETS + _WHO),
    ApiRoute("GET", "/api/sinks/{id:int}", get_sink, Access.USER, "Read a sink", TAG,
             response=SinkOut, errors=(404,)),
    ApiRoute("PATCH", "/api/sinks/{id:int}", update_sink, Access.MANAGER, "Change a sink", TAG,
             body=SinkUpdate, response=SinkSaved, errors=(404, 422),
             description="`settings` are merged into the saved ones and validated as a "
             "whole; `format_options` and `headers` are replaced.  The sink's worker "
             "restarts.  " + _SECRETS + _WHO),
    ApiRoute("DELETE", "/api/sinks/{id:int}", delete_sink, Access.MANAGER, "Delete a sink",
             TAG, status=204, errors=(404,),
             description="What it still owed and its dead letters go with it." + _WHO),
    ApiRoute("POST", "/api/sinks/{id:int}/rotate-secret", rotate_secret, Access.MANAGER,
             "Rotate a sink's signing secret", TAG, response=SigningSecret, errors=(404, 422),
             description="The new secret (in this answer only) signs from now on; the ones "
             "it replaces stay valid for 24 hours, so requests meanwhile carry two "
             "signatures.  A sink that does not sign answers 422 (`signing`)." + _WHO),
    ApiRoute("GET", "/api/sinks/{id:int}/dead-letters", list_dead_letters, Access.USER,
             "List a sink's dead letters", TAG, query=DeadLetterQuery,
             response=DeadLetterPage, errors=(404,),
             description="Messages the receiver refused for good or that exhausted their "
             "retries, oldest first; page with `after_id` = the last `next_after_id`."),
    ApiRoute("POST", "/api/sinks/{id:int}/dead-letters/resend", resend_dead_letters,
             Access.MANAGER, "Send dead letters again", TAG, body=DeadLetterSelection,
             body_required=False, response=QueuedOut, errors=(404,),
             description="The dead letters named in `ids` (null or absent: all) are queued "
             "again for this sink, as new messages, and leave the dead letters." + _WHO),
    ApiRoute("POST", "/api/sinks/{id:int}/dead-letters/discard", discard_dead_letters,
             Access.MANAGER, "Discard dead letters", TAG, body=DeadLetterSelection,
             body_required=False, response=DiscardedOut, errors=(404,),
             description="The dead letters named in `ids` (null or absent: all)." + _WHO),
    ApiRoute("POST", "/api/sinks/{id:int}/replay", replay, Access.MANAGER,
             "Deliver past locations or alerts again", TAG, body=ReplayRequest,
             response=QueuedOut, errors=(404, 422),
             description="Queues, for this sink only, the client's positions (a location "
             "relay) or alerts (an alerts webhook) with a fix time in [`from`, `to`), "
             "oldest first; `device_ids` limits it to some of the client's devices." + _WHO),
]  # fmt: skip
