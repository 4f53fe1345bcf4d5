"""The OpenAPI 3.1 document, generated from the route table and the pydantic models."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from pydantic_core import core_schema

from hub.text import SINGLE_LINE_PATTERN
from hub.web.auth import Access
from hub.web.inputs import ID_SCHEMA, INT64_MAX, INT64_MIN, MAX_JSON_DEPTH
from hub.web.routing import ApiRoute
from hub.web.schemas import ErrorOut

REF = "#/components/schemas/{model}"
RETRY_AFTER_HEADER = {
    "description": "Seconds until the address may try a token again.",
    "schema": {"type": "integer", "minimum": 1},
}
_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")

DESCRIPTION = """\
The management API of gpshub: source kinds, connections, devices, position history,
tenancy, and a live WebSocket feed at `/api/live`.

**Authentication.**  Every route requires `Authorization: Bearer gph_…` except
`/healthz`, `/readyz` and `/openapi.json`, which are unauthenticated by design: they
expose no data.  A client's users (role `manager`: read and write; `viewer`: read only)
see and change only their client's data; another client's object answers 404, like a
missing one, so ids do not leak.  The system administrator (role `admin`) sees every
client and must give `client_id` when creating connections and devices.

**Errors** are `{"error": {"code", "message", "field"}}`: 400 for bad query parameters
(and `not_supported` for browsing a source without browse) and for a body that is not
JSON (`bad_json`), 401 for a missing, bad, revoked or expired token, 403 for a role that
may not do this, 404, 405 (with `Allow`), 409 for conflicts, 413 for bodies over 1 MiB,
422 for a bad body or path id (`field` is the dotted name of the first bad field), 429
(`too_many_attempts`, with `Retry-After`) once an address has made too many failed
authentication attempts (10 a minute by default; a token that already worked from that
address still works), 502 when the upstream fails while browsing or importing.  Testing
a connection answers 200 even
when the test fails (`ok: false` and the error).  No message ever contains a credential.

**Credentials** are write-only: a connection shows, per credential field, whether it is
set, and the value of non-secret fields only.

**Times** in answers are UTC with a `Z`.  `from`, `to` and `since` take a date-time with
an offset, or a date alone: midnight at the start of that day in the client's time zone
(UTC when the administrator asks across every client).  A date-time without an offset is
refused (400, or 422 in a body) with a message saying it needs one.

**Alerts** (`GET /api/alerts`, the live feed's `alert` messages, the `gpshub-alert`
webhook format) are one object in snake_case with a plain `id`.

**Browsers** on the origins in the `allowed_origins` setting (`*`: any) may call the API
(CORS: `GET`, `POST`, `PATCH`, `DELETE` with `Authorization` and `Content-Type`; never
credentials mode) and open the live feed.

**Input.**  Path ids are integers from 1 to 2^63−1; every other integer, in a query or
anywhere in a body, is within int64 unless the schema narrows it.  Bodies are UTF-8 JSON
objects (no `NaN` or `Infinity`) nested at most {depth} levels deep, validated strictly
against their schema: no `"5"` for an integer, no `1` for a boolean.  Text never holds
control characters: strings the schema declares are single lines (its `pattern`), and
strings inside free-form objects (credentials, options, settings, parameters, geofence
properties) may hold tab and line breaks but no other control character (no NUL).

**Live feed** (`GET /api/live`, a WebSocket): see that operation.
"""


class ApiJsonSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, plus the limits the API enforces on every model: integers
    within int64 (unless narrower), and request strings single-line (``hub.text``)."""

    def int_schema(self, schema: core_schema.IntSchema) -> dict[str, Any]:
        out = super().int_schema(schema)
        if "minimum" not in out and "exclusiveMinimum" not in out:
            out["minimum"] = INT64_MIN
        if "maximum" not in out and "exclusiveMaximum" not in out:
            out["maximum"] = INT64_MAX
        return out

    def str_schema(self, schema: core_schema.StringSchema) -> dict[str, Any]:
        out = super().str_schema(schema)
        if self.mode == "validation" and "pattern" not in out:
            out["pattern"] = SINGLE_LINE_PATTERN
        return out


def _path(path: str) -> str:
    """A Starlette path (``{id:int}``) as an OpenAPI path (``{id}``)."""
    return _PARAM.sub(r"{\1}", path)


def _path_parameters(path: str) -> list[dict[str, Any]]:
    out = []
    for name, convertor in _PARAM.findall(path):
        schema = dict(ID_SCHEMA) if convertor == "int" else {"type": "string"}
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    props = model.model_json_schema(mode="validation", schema_generator=ApiJsonSchema).get(
        "properties", {}
    )
    out = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        schema = dict(props.get(key, {}))
        description = schema.pop("description", info.description or "")
        schema.pop("title", None)
        out.append(
            {
                "name": key,
                "in": "query",
                "required": info.is_required(),
                "description": description,
                "schema": schema,
            }
        )
    return out


def _error_statuses(spec: ApiRoute) -> list[int]:
    statuses = set(spec.errors)
    if spec.access is not Access.PUBLIC:
        statuses |= {401, 429}
    if spec.access in (Access.MANAGER, Access.ADMIN, Access.METRICS):
        statuses.add(403)
    if spec.query is not None:
        statuses.add(400)
    if spec.body is not None:
        statuses |= {400, 413, 422}
    if _PARAM.search(spec.path):
        statuses |= {404, 422}  # no such object (or not yours); an id out of range
    models = [model for model in (spec.query, spec.body) if model is not None]
    if any(_names_objects(model) for model in models):
        statuses.add(404)  # an object named in the query or body is not there (or not yours)
    if spec.access is not Access.PUBLIC and any("client_id" in m.model_fields for m in models):
        statuses.add(403)  # another client's data, asked for by a client's user
    return sorted(statuses)


def _names_objects(model: type[BaseModel]) -> bool:
    return any(name.endswith(("_id", "_ids")) for name in model.model_fields)


_ERROR_TEXT = {
    400: "Bad query parameter, or a body that is not JSON (the error says why)",
    401: "Missing or invalid API token",
    403: "Your role may not do this",
    404: "Not found (or not yours)",
    409: "Conflict (the error names the field)",
    413: "Body too large",
    422: "Invalid body or path id (the error names the field)",
    429: "Too many failed authentication attempts from your address: try again after "
    "`Retry-After` seconds",
    502: "The upstream failed (the code says how)",
    503: "Not ready",
}


def _list_installed(schemas: dict[str, Any], installed: Mapping[str, list[str]]) -> None:
    """Fields marked ``x-installed`` (``hub.web.schemas.installed``) get their ``enum``."""
    for model in schemas.values():
        for prop in model.get("properties", {}).values():
            what = prop.pop("x-installed", None)
            if what is None or what not in installed:
                continue
            branches = [b for b in prop.get("anyOf", []) if b.get("type") == "string"] or [prop]
            for branch in branches:
                branch["enum"] = sorted(installed[what])


_DOWNLOAD_SCHEMAS: dict[str, dict[str, Any]] = {
    "application/geo+json": {
        "type": "object",
        "description": "A GeoJSON FeatureCollection.",
        "required": ["type", "features"],
        "properties": {
            "type": {"const": "FeatureCollection"},
            "features": {"type": "array", "items": {"type": "object"}},
        },
    },
}
"""Downloads that are JSON (schemathesis parses a ``+json`` answer)."""


def openapi_document(
    table: list[ApiRoute],
    *,
    title: str,
    version: str,
    extra_paths: dict[str, Any],
    installed: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The document of ``table``; ``installed`` lists the source kinds, sink kinds,
    formats and rule types the hub has (``hub.web.schemas.installed``)."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorOut, "serialization"): None}
    for spec in table:
        if spec.body is not None:
            wanted[(spec.body, "validation")] = None
        if spec.response is not None:
            wanted[(spec.response, "serialization")] = None
    refs, defs = models_json_schema(list(wanted), ref_template=REF, schema_generator=ApiJsonSchema)
    _list_installed(defs.get("$defs", {}), installed or {})
    error_ref = refs[(ErrorOut, "serialization")]

    paths: dict[str, dict[str, Any]] = {}
    for spec in table:
        op = _operation(spec, refs, error_ref)
        paths.setdefault(_path(spec.path), {})[spec.method.lower()] = op
    for path, item in extra_paths.items():
        paths.setdefault(path, {}).update(item)

    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": DESCRIPTION.replace("{depth}", str(MAX_JSON_DEPTH)),
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token `gph_…` (see `/api/tokens`).",
                }
            },
        },
        "security": [{"bearerAuth": []}],
    }


def _operation(
    spec: ApiRoute,
    refs: Mapping[tuple[Any, JsonSchemaMode], Any],
    error_ref: dict[str, Any],
) -> dict[str, Any]:
    description = spec.description
    description = (
        description + "\n\n" if description else ""
    ) + f"Access: {spec.access.description}"
    op: dict[str, Any] = {
        "operationId": spec.name,
        "summary": spec.summary,
        "description": description,
        "tags": [spec.tag],
        "x-access": spec.access.value,
    }
    if spec.access is Access.PUBLIC:
        op["security"] = []
    params = _path_parameters(spec.path)
    if spec.query is not None:
        params += _query_parameters(spec.query)
    if params:
        op["parameters"] = params
    if spec.body is not None:
        op["requestBody"] = {
            "required": spec.body_required,
            "content": {"application/json": {"schema": refs[(spec.body, "validation")]}},
        }
    success: dict[str, Any] = {"description": spec.summary}
    if spec.status != 204:
        content: dict[str, Any] = {}
        if spec.response is not None:
            content["application/json"] = {"schema": refs[(spec.response, "serialization")]}
        for media in spec.media_types:
            content[media] = {"schema": _DOWNLOAD_SCHEMAS.get(media, {"type": "string"})}
        if content:
            success["content"] = content
    responses: dict[str, Any] = {str(spec.status): success}
    for status in _error_statuses(spec):
        responses[str(status)] = {
            "description": _ERROR_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": error_ref}},
        }
        if status == 429:
            responses[str(status)]["headers"] = {"Retry-After": RETRY_AFTER_HEADER}
    op["responses"] = responses
    return op
