"""Schemathesis hooks for ``test_fuzz.py`` (loaded through ``SCHEMATHESIS_HOOKS``).

The caller's own token and user are kept out of the destructive routes: revoking the
token that drives the run, or deleting its user, would turn the rest of it into 401s.
``GPSHUB_FUZZ_OWN`` names them: ``{"token_id": …, "user_id": …}``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis

_OWN = json.loads(os.environ.get("GPSHUB_FUZZ_OWN", "{}"))
_OWN_IDS = {
    ("DELETE", "/api/tokens/{id}"): _OWN.get("token_id"),
    ("DELETE", "/api/users/{id}"): _OWN.get("user_id"),
}


def _not_own(operation: Any, path_parameters: dict[str, Any]) -> bool:
    own = _OWN_IDS.get((operation.method.upper(), operation.path))
    if own is None:
        return True
    try:  # "01" or " 1" reach the same row
        return int(str(path_parameters.get("id")).strip()) != own
    except ValueError:
        return True


@schemathesis.hook
def filter_path_parameters(ctx: Any, path_parameters: dict[str, Any]) -> bool:
    operation = getattr(ctx, "operation", None)
    if operation is None or not path_parameters:
        return True
    return _not_own(operation, path_parameters)


@schemathesis.hook
def filter_case(ctx: Any, case: Any) -> bool:
    return _not_own(case.operation, case.path_parameters or {})


# -- rejections no JSON Schema can state -----------------------------------------------
FREE_FORM = {
    "credentials",
    "options",
    "settings",
    "format_options",
    "params",
    "schedule",
    "properties",
    "geometry",
    "features",
}
"""Objects whose shape depends on a kind or a type (``/api/source-kinds``,
``/api/sink-kinds`` and ``/api/rule-types`` publish each one's JSON Schema) or on
GeoJSON's rules: the operation's schema can only say "an object"."""

SEMANTIC = (
    "does not exist",  # a reference to an object that is not there (or not yours)
    "not found",
    "no such",
    "must say which client",  # required of the administrator only
    "required for sink kind",  # `format`, for a kind without a default one
    "without `cursor`",  # `since` or `cursor`: one of the two
    "must not be before",  # `to` before `from`
    "must be after `from`",  # the stops' `to` not after `from`
    "the range may be at most",  # the stops' range, from `from` to `to` (or now)
    "not a cursor",  # an opaque cursor the hub did not make
    "belong to no client",  # the admin role with a client_id
    "already",  # uniqueness: names, ids
    "has no alerts webhook",  # a rule's `webhook`, before the client has one
    "must be in the future",  # a token's `expires_at`: relative to now
    "only the system administrator may have a metrics token",  # `scope`, by the owner
)
"""Rejections that depend on the data stored or on another field, which a schema cannot
state."""


def _error(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except Exception:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


@schemathesis.hook
def filter_failure(ctx: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but a schema-valid request refused for a reason above."""
    if type(failure).__name__ != "RejectedPositiveData":
        return True
    error = _error(response)
    field = str(error.get("field") or "")
    message = str(error.get("message") or "")
    if field.split(".")[0] in FREE_FORM:
        return False
    return not any(reason in message for reason in SEMANTIC)


@schemathesis.hook("filter_failure")
def websocket_only(ctx: Any, failure: Any, case: Any, response: Any) -> bool:
    """``GET /api/live`` is a WebSocket: without the handshake, which schemathesis does
    not make, the right answer is 426."""
    return not (type(failure).__name__ == "RejectedPositiveData" and response.status_code == 426)


@schemathesis.hook("filter_failure")
def too_large_is_a_refusal(ctx: Any, failure: Any, case: Any, response: Any) -> bool:
    """A body over 1 MiB is refused with 413 before it is read as JSON: a refusal, which
    schemathesis's list of rejecting statuses lacks."""
    return not (type(failure).__name__ == "AcceptedNegativeData" and response.status_code == 413)


@schemathesis.hook("filter_failure")
def current_password_is_a_secret(ctx: Any, failure: Any, case: Any, response: Any) -> bool:
    """``POST /api/me/password`` needs the caller's current password, which no schema can
    state: once a run has set one, a made-up ``current_password`` is rightly refused."""
    return not (
        type(failure).__name__ == "RejectedPositiveData"
        and _error(response).get("field") == "current_password"
    )
