"""Small conversions of 3D Tracking's JSON values, shared by the position and sensor parsers."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from hub import upstream_values


class BadShape(ValueError):
    """The answer is not what the endpoint sends (no list of records where one belongs)."""


def listed(result: Any, key: str) -> list[Any]:
    """The records under ``key`` of an answer's ``Result`` (an object; a null list is
    empty); ``BadShape`` otherwise."""
    if not isinstance(result, Mapping):
        raise BadShape(f"expected an object with {key} and StartId, got {kind_of(result)}")
    records = result.get(key)
    if records is None:
        return []
    if not isinstance(records, list):
        raise BadShape(f"{key} is {kind_of(records)}, not a list")
    return records


def kind_of(value: Any) -> str:
    """A JSON value's kind for a message."""
    return "null" if value is None else type(value).__name__


def number(value: Any) -> float | None:
    """A finite number, from a JSON number or a numeric text (a decimal comma read as a
    point); ``None`` otherwise."""
    return upstream_values.number(value, text=True, decimal_comma=True)


def slug(name: str) -> str:
    """A snake_case key from a display name: ``"Ext. power"`` -> ``"ext_power"``."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def sensor_value(value: Any) -> float | bool | str | None:
    """A reading's ``Value`` (always text upstream) as a number or boolean where it is one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    parsed = number(text) if text else None
    return parsed if parsed is not None else text


def start_id(value: Any) -> int | None:
    """A ``StartId`` as an int (a JSON number or a numeric text), else ``None``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
