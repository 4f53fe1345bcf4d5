"""Reading a platform's JSON values: the conversions every source's parser needs.

Upstream JSON is loose: a number may come as text, a switch as ``"On"`` or ``1``, a
sensor object nested.  These helpers turn a value into what a ``PositionFix`` field takes,
or ``None`` when it is unusable (never an exception), and count the records a parser
skips (``ParseStats``)::

    speed = number(record.get("speed"), text=True)
    ignition = switch(record.get("ignition"))
    sensors = dict(flat_items(record.get("attributes") or {}))
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

T = TypeVar("T")
ON_WORDS = frozenset({"1", "true", "on", "yes"})
OFF_WORDS = frozenset({"0", "false", "off", "no"})


def number(value: Any, *, text: bool = False, decimal_comma: bool = False) -> float | None:
    """A finite number from a JSON number (never a boolean); with ``text``, also from a
    numeric string (with ``decimal_comma``, ``"1,5"`` too); ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if text and isinstance(value, str):
        written = value.strip()
        try:
            value = float(written.replace(",", ".") if decimal_comma else written)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def count(value: Any, *, text: bool = False, decimal_comma: bool = False) -> int | None:
    """A non-negative whole number (satellites, say), read as :func:`number` reads it."""
    parsed = number(value, text=text, decimal_comma=decimal_comma)
    if parsed is None or parsed < 0 or parsed != int(parsed):
        return None
    return int(parsed)


def coordinates(
    lat: Any, lon: Any, *, text: bool = False, decimal_comma: bool = False
) -> tuple[float, float] | None:
    """A usable position: latitude and longitude read as :func:`number` reads them, within
    ±90 and ±180 degrees; ``None`` otherwise (a record a parser skips)."""
    y = number(lat, text=text, decimal_comma=decimal_comma)
    x = number(lon, text=text, decimal_comma=decimal_comma)
    if y is None or x is None or not (-90.0 <= y <= 90.0 and -180.0 <= x <= 180.0):
        return None
    return y, x


def heading(value: Any, *, text: bool = False) -> float | None:
    """A course in degrees (:func:`number`), one outside 0..360 brought into it (``% 360``)."""
    course = number(value, text=text)
    if course is not None and not 0.0 <= course <= 360.0:
        course %= 360.0
    return course


def switch(
    value: Any,
    *,
    numbers: Literal["binary", "nonzero", "none"] = "binary",
    words: bool = True,
) -> bool | None:
    """A boolean (an ignition, an input) from a JSON boolean; from a number as ``numbers``
    says (``"binary"``: 0 or 1 only, ``"nonzero"``: any number, 0 is off, ``"none"``: not
    at all); with ``words``, from on/off words (``ON_WORDS``, ``OFF_WORDS``, any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if numbers == "binary" and value in (0, 1):
            return bool(value)
        if numbers == "nonzero":
            return value != 0
        return None
    if words and isinstance(value, str):
        word = value.strip().lower()
        if word in ON_WORDS:
            return True
        if word in OFF_WORDS:
            return False
    return None


def iso_time(value: Any) -> datetime | None:
    """An ISO-8601 text as an aware UTC datetime (no offset: UTC; ``Z`` read); ``None``
    when it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def plain(value: Any) -> bool | str | int | float | None:
    """A value a sensor can hold as it is: a boolean, a text or a finite number."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    return None


def flat_items(
    values: Mapping[Any, Any],
    prefix: str = "",
    *,
    convert: Callable[[Any], Any] = plain,
    max_depth: int | None = None,
) -> Iterator[tuple[str, Any]]:
    """The sensor items of a JSON object: each value ``convert`` keeps (not ``None``)
    under its key, nested objects as dotted keys (``"io.in1"``) down to ``max_depth``
    levels below this one (``None``: all), lists and nulls dropped."""
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if max_depth is None or max_depth > 0:
                deeper = None if max_depth is None else max_depth - 1
                yield from flat_items(value, f"{name}.", convert=convert, max_depth=deeper)
            continue
        converted = convert(value)
        if converted is not None:
            yield name, converted


def kept(
    records: Sequence[Any], parse: Callable[[Any], T | None], log: logging.Logger, what: str
) -> list[T]:
    """What ``parse`` makes of each record, those it gives ``None`` for left out and told in
    a debug line: "skipped 2 Acme device record(s) without an id" (``what`` says all after
    the number)."""
    out = [item for item in map(parse, records) if item is not None]
    if len(out) < len(records):
        log.debug("skipped %d %s", len(records) - len(out), what)
    return out


@dataclass(slots=True)
class ParseStats:
    """How many records of an answer were skipped, and why (for a debug line)."""

    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    @property
    def count(self) -> int:
        return sum(self.skipped.values())

    def report(self, log: logging.Logger, what: str, total: int) -> None:
        """Log at debug level what was skipped: "skipped 2 of 40 Acme position(s): {...}"
        (``what`` names the platform and the records); nothing when none was."""
        if self.count:
            log.debug("skipped %d of %d %s: %s", self.count, total, what, self.skipped)
