"""Alert rules, their types, and the alerts they raised.

A rule belongs to a client and is owned by the user who created it (its name is kept
in the rule and in every alert).  The store validates the type, its ``params`` (POIs
and geofence groups must be the client's own), ``device_ids``, ``tags`` and the
``schedule``, and errors name the field (``params.poi_ids``, ``schedule.windows.0.days``).
"""

from __future__ import annotations

from typing import Any

from hub.alerts import alert_json
from hub.models import Alert, AlertRule
from hub.rules import RULE_TYPES
from hub.web.auth import Access, filter_client, owning_client
from hub.web.routing import ApiRequest, ApiRoute
from hub.web.schemas import (
    AlertPage,
    AlertQuery,
    ClientFilter,
    RuleCreate,
    RuleList,
    RuleOut,
    RuleTypeList,
    RuleTypeOut,
    RuleUpdate,
)
from hub.web.times import client_zone, resolve


def rule_out(rule: AlertRule) -> RuleOut:
    return RuleOut.model_validate(rule.model_dump())


def alert_out(alert: Alert) -> dict[str, Any]:
    """A stored alert as ``GET /api/alerts`` shows it (``gpshub alert list --json`` too)."""
    return alert_json({**alert.payload, "eventId": alert.id, "clientId": alert.client_id})


async def rule_types(req: ApiRequest) -> RuleTypeList:
    return RuleTypeList(
        types=[
            RuleTypeOut(
                name=name,
                message_id=t.message_id,
                description=t.description,
                params=t.params.model_json_schema(),
            )
            for name, t in RULE_TYPES.items()
        ]
    )


async def list_rules(req: ApiRequest) -> RuleList:
    client_id = filter_client(req.principal, req.query_as(ClientFilter).client_id)
    rules = await req.run(req.hub.store.rules.list, client_id)
    return RuleList(rules=[rule_out(r) for r in rules])


async def create_rule(req: ApiRequest) -> RuleOut:
    body = req.body_as(RuleCreate)
    client_id = await owning_client(req.hub, req.principal, body.client_id)
    owner = await req.run(req.hub.store.get_user, req.principal.user_id)
    fields = body.model_dump(exclude={"client_id"})
    rule = await req.run(req.hub.store.rules.create, client_id, owner, **fields)
    return rule_out(rule)


async def get_rule(req: ApiRequest) -> RuleOut:
    return rule_out(await req.run(req.hub.store.rules.get, req.path_int("id"), req.scope))


async def update_rule(req: ApiRequest) -> RuleOut:
    fields: dict[str, Any] = req.body_as(RuleUpdate).model_dump(exclude_unset=True)
    for name in ("type", "enabled", "webhook"):  # not clearable
        if fields.get(name, 0) is None:
            del fields[name]
    rule = await req.run(req.hub.store.rules.update, req.path_int("id"), req.scope, **fields)
    return rule_out(rule)


async def delete_rule(req: ApiRequest) -> None:
    await req.run(req.hub.store.rules.delete, req.path_int("id"), req.scope)


async def list_alerts(req: ApiRequest) -> dict[str, Any]:
    q = req.query_as(AlertQuery)
    client_id = filter_client(req.principal, q.client_id)
    zone = await client_zone(req, client_id, q.start, q.end)
    rows = await req.run(
        req.hub.store.rules.alerts,
        client_id,
        device_id=q.device_id,
        rule_id=q.rule_id,
        start=resolve(q.start, zone, "from"),
        end=resolve(q.end, zone, "to"),
        after_id=q.after_id,
        limit=q.limit,
        before_id=q.before_id,
        newest_first=q.order == "desc",
    )
    alerts = [alert_out(a) for a in rows]
    ids = [a.id or 0 for a in rows]
    return {
        "alerts": alerts,
        "next_after_id": max(ids) if ids else q.after_id,
        "next_before_id": min(ids) if ids else q.before_id,
    }


TAG = "rules"
ROUTES = [
    ApiRoute("GET", "/api/rule-types", rule_types, Access.USER, "List the alert rule types",
             TAG, response=RuleTypeList,
             description="Each with the `message_id` of its alerts and its params' schema."),
    ApiRoute("GET", "/api/rules", list_rules, Access.USER, "List alert rules", TAG,
             query=ClientFilter, response=RuleList),
    ApiRoute("POST", "/api/rules", create_rule, Access.MANAGER, "Create an alert rule", TAG,
             body=RuleCreate, response=RuleOut, status=201, errors=(422,),
             description="The caller becomes the rule's owner."),
    ApiRoute("GET", "/api/rules/{id:int}", get_rule, Access.USER, "Read an alert rule", TAG,
             response=RuleOut, errors=(404,)),
    ApiRoute("PATCH", "/api/rules/{id:int}", update_rule, Access.MANAGER,
             "Change an alert rule", TAG, body=RuleUpdate, response=RuleOut,
             errors=(404, 422)),
    ApiRoute("DELETE", "/api/rules/{id:int}", delete_rule, Access.MANAGER,
             "Delete an alert rule (its alerts stay)", TAG, status=204, errors=(404,)),
    ApiRoute("GET", "/api/alerts", list_alerts, Access.USER, "List alerts", TAG,
             query=AlertQuery, response=AlertPage,
             description="Oldest first; poll with `after_id` = the last `next_after_id`.  "
             "`order=desc`: newest first, and `before_id` = the last `next_before_id` pages "
             "back to older ones (a dashboard's list).  The "
             "same alert objects come on the live feed (`alert` messages) and in the "
             "`gpshub-alert` webhook format."),
]  # fmt: skip
