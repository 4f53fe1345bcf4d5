"""What every request's input must be before a handler sees it, checked in one place.

* **Path ids** (``{id:int}`` in a route's path): an integer from 1 to 2^63−1, else a
  422 naming the parameter.  A signed number is routed (``-1`` gets that 422 too); a
  path segment that is no number at all is no route (404).
* **Query parameters**: what the query model's JSON Schema says an integer is (digits,
  an optional sign, within the schema's range, which is int64 unless narrower), and no
  control characters; the model does the rest.  Errors are 400s naming the parameter.
* **JSON bodies**: valid JSON in UTF-8 without ``NaN``/``Infinity``, nested at most
  ``MAX_JSON_DEPTH`` levels (else a 400 ``bad_json`` saying which), every integer within
  int64 and every string acceptable text (``hub.text``: multi-line rules, anywhere, keys
  included), else a 422 naming the dotted path of the value.  The model then validates
  strictly (no ``"5"`` for an integer, no ``1`` for a boolean), and the strings it
  declares are single lines unless their field states a pattern of its own
  (``declared_text_problem``; the OpenAPI document states the same as their ``pattern``).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from functools import cache
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, NaiveDatetime, WithJsonSchema
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request

from hub.text import text_problem
from hub.web.errors import ApiError, bad_parameter, invalid

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_JSON_DEPTH = 32
"""How deep a body may nest objects and arrays (a geofence import needs about 7)."""

ID_SCHEMA: dict[str, Any] = {
    "type": "integer",
    "format": "int64",
    "minimum": 1,
    "maximum": INT64_MAX,
}


class SignedIntConvertor(Convertor[str]):
    """``{name:int}`` path parameters: any signed decimal number is routed, so that an id
    out of range is a 422 naming it (``parse_id``) rather than "no such route"."""

    regex = "-?[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: Any) -> str:
        return str(value)


ID_CONVERTOR = "signed_int"
register_url_convertor(ID_CONVERTOR, SignedIntConvertor())


def _bounded_int(text: str, low: int, high: int) -> int | None:
    """``text`` (an optionally signed decimal number) as an int within bounds, or ``None``."""
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > 19:  # beyond int64, and not worth converting (int() refuses 4300+)
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_id(name: str, raw: str) -> int:
    """A path id: an integer from 1 to 2^63−1, else a 422 naming ``name``."""
    value = _bounded_int(raw, 1, INT64_MAX)
    if value is None:
        raise invalid(name, f"must be an id: an integer from 1 to {INT64_MAX}")
    return value


# -- query strings ---------------------------------------------------------------------
_INTEGER = re.compile(r"-?[0-9]+")


@cache
def _integer_bounds(model: type[BaseModel]) -> dict[str, tuple[int, int]]:
    """The query parameters the model's schema calls integers, with their bounds."""
    schema = model.model_json_schema(mode="validation")
    out: dict[str, tuple[int, int]] = {}
    for name, prop in schema.get("properties", {}).items():
        for option in [prop, *prop.get("anyOf", [])]:
            if option.get("type") == "integer":
                low = max(int(option.get("minimum", INT64_MIN)), INT64_MIN)
                high = min(int(option.get("maximum", INT64_MAX)), INT64_MAX)
                out[name] = (low, high)
    return out


def check_query(model: type[BaseModel], params: dict[str, str]) -> None:
    """Refuse (400) query parameters that are no text, or no integer where one is due."""
    bounds = _integer_bounds(model)
    found = time_problem(model, params)
    if found:
        raise bad_parameter(*found)
    for name, value in params.items():
        problem = text_problem(value)
        if problem:
            raise bad_parameter(name, problem)
        if name in bounds and value != "":
            low, high = bounds[name]
            if not _INTEGER.fullmatch(value):
                raise bad_parameter(name, "must be an integer")
            if _bounded_int(value, low, high) is None:
                raise bad_parameter(name, f"must be an integer from {low} to {high}")


# -- JSON bodies -----------------------------------------------------------------------
class _BigInt(int):
    """Stands for a JSON integer beyond int64 until ``_check_value`` names where it is."""


def _parse_int(text: str) -> int:
    digits = text.lstrip("-").lstrip("0")
    if len(digits) > 19:
        return _BigInt(0)
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else _BigInt(0)


def _parse_float(text: str) -> float | int:
    """A JSON number with a fraction or an exponent.  ``5.0`` is an integer to JSON
    Schema, so a whole number within int64 becomes an ``int`` (strict validation takes
    it for an integer field as for a number field)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is beyond the range of a number")
    if value.is_integer() and INT64_MIN <= value <= INT64_MAX:
        return int(value)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(raw: bytes) -> Any:
    """The body's JSON value, checked (see the module's docstring)."""
    try:
        text = raw.decode("utf-8")
        data = json.loads(
            text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_no_constant
        )
    except UnicodeDecodeError:
        raise ApiError(400, "bad_json", "the body is not UTF-8 text") from None
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:  # json.JSONDecodeError, and NaN / Infinity
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc}") from None
    _check_value(data, [], 0)
    return data


def check_body(model: type[BaseModel], data: dict[str, Any]) -> None:
    """What ``load_json`` cannot check without the model: times that are numbers."""
    found = time_problem(model, data)
    if found:
        raise invalid(*found)


def _too_deep() -> ApiError:
    return ApiError(
        400, "bad_json", f"the body nests objects and arrays more than {MAX_JSON_DEPTH} deep"
    )


def _dotted(path: list[str | int]) -> str:
    return ".".join(str(p) for p in path) or "body"


def _check_value(value: Any, path: list[str | int], depth: int) -> None:
    if isinstance(value, dict):
        if depth >= MAX_JSON_DEPTH:
            raise _too_deep()
        for key, item in value.items():
            problem = text_problem(key, multiline=False)
            if problem:
                raise invalid(_dotted(path) if path else "body", f"a key {problem}")
            _check_value(item, [*path, key], depth + 1)
    elif isinstance(value, list):
        if depth >= MAX_JSON_DEPTH:
            raise _too_deep()
        for index, item in enumerate(value):
            _check_value(item, [*path, index], depth + 1)
    elif isinstance(value, str):
        problem = text_problem(value, multiline=True)
        if problem:
            raise invalid(_dotted(path), problem)
    elif isinstance(value, _BigInt):
        raise invalid(_dotted(path), f"must be an integer from {INT64_MIN} to {INT64_MAX}")


# -- declared times --------------------------------------------------------------------
_BARE_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def declares_time(annotation: Any) -> bool:
    """Whether a field typed ``annotation`` takes a date and time."""
    if isinstance(annotation, type):
        return issubclass(annotation, datetime | AwareDatetime | NaiveDatetime)
    return any(declares_time(arg) for arg in get_args(annotation))


def time_problem(model: type[BaseModel], data: dict[str, Any]) -> tuple[str, str] | None:
    """The first field of ``data`` that ``model`` takes as a date and time but that is a
    number, or a string of one: pydantic would read it as Unix seconds, while the schema
    says an ISO 8601 text (``format: date-time``)."""
    for name, info in model.model_fields.items():
        key = info.alias or name
        value = data.get(key)
        if value is None or isinstance(value, bool) or not declares_time(info.annotation):
            continue
        if isinstance(value, int | float) or (
            isinstance(value, str) and _BARE_NUMBER.fullmatch(value)
        ):
            return key, "must be an ISO 8601 date and time with an offset or Z, not a number"
    return None


# -- declared text ---------------------------------------------------------------------
def declared_text_problem(annotation: Any, value: Any) -> tuple[str, str] | None:
    """Where and why ``value`` (of a model field typed ``annotation``) holds a string that
    is not a single line, where the annotation declares a string: ``str``, and ``str``
    inside unions, lists and dicts (keys and values).  ``Any`` holds free-form JSON, whose
    strings follow the multi-line rule already applied by ``load_json``.  ``where`` is
    the dotted path below the field ("" for the field itself)."""
    if annotation is str:
        problem = text_problem(value) if isinstance(value, str) else None
        return ("", problem) if problem else None
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        if any(_states_its_own(meta) for meta in args[1:]):
            return None
        return declared_text_problem(args[0], value)
    if origin in (Union, UnionType):
        for arg in args:
            found = declared_text_problem(arg, value)
            if found:
                return found
        return None
    if origin in (list, tuple, set, frozenset) and isinstance(
        value, list | tuple | set | frozenset
    ):
        item = args[0] if args else Any
        for index, element in enumerate(value):
            found = declared_text_problem(item, element)
            if found:
                return _below(index, found)
        return None
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        for key, element in value.items():
            found = declared_text_problem(args[0], key) or declared_text_problem(args[1], element)
            if found:
                return _below(key, found)
    return None


def _states_its_own(meta: Any) -> bool:
    """A ``pattern`` (or a whole JSON Schema) of the field's own: its validators enforce it."""
    return isinstance(meta, WithJsonSchema) or getattr(meta, "pattern", None) is not None


def _below(step: str | int, found: tuple[str, str]) -> tuple[str, str]:
    where, problem = found
    return (f"{step}.{where}" if where else str(step), problem)


# -- bodies left unread ------------------------------------------------------------------
DRAIN_MAX_BYTES = 16 * 1024 * 1024


async def drain_body(request: Request, limit: int = DRAIN_MAX_BYTES) -> bool:
    """Read and drop what is left of the request's body; whether all of it was read.

    An answer given before the body was read (a bad token, a bad id, no such route, a
    body too large) must still take the body off the connection: the server would
    otherwise wait for it to be consumed before it reads the client's next request on
    that connection, while the client waits for that request's answer.  When more than
    ``limit`` bytes are left, the answer should close the connection instead."""
    if getattr(request, "_stream_consumed", True) or hasattr(request, "_body"):
        return True  # Starlette's own flags: nothing left (or not a Starlette request)
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return False
    except ClientDisconnect:
        return True
    return True
