"""Small conversions of 3D Tracking's JSON values, shared by the position and sensor parsers."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


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


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 text as an aware UTC datetime (no offset: UTC); ``None`` if unusable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def number(value: Any) -> float | None:
    """A finite number, from a JSON number or a numeric text; ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().replace(",", "."))
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


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
