"""What text the hub stores: no NUL, no control characters, no lone surrogates.

PostgreSQL cannot store NUL in text or JSON, SQLite cannot store a lone surrogate (it is
not UTF-8), and control characters in a name or a label only hide what it says.  Two
rules:

* **single-line** text (names, labels, kinds, tags, ids, time zones, query parameters):
  no control character at all (C0, DEL, C1; tab and line breaks included);
* **multi-line** text (a geofence's contact or description, and any string inside a
  free-form object: credentials, options, settings, rule parameters, geofence
  properties): tab, line feed and carriage return allowed, no other control character.

``SINGLE_LINE_PATTERN`` is the first rule as a JSON Schema (ECMA-262) pattern.
"""

from __future__ import annotations

import re

__all__ = [
    "SINGLE_LINE_PATTERN",
    "check_text",
    "text_problem",
]

_ANYWHERE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
"""Refused in any text: control characters but tab, LF and CR; lone surrogates."""
_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""Refused in single-line text: every control character; lone surrogates."""

SINGLE_LINE_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*$"


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` is not acceptable text (``None`` when it is)."""
    found = (_ANYWHERE if multiline else _SINGLE_LINE).search(value)
    if found is None:
        return None
    char = found.group()
    code = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        return f"must be valid Unicode text (a lone surrogate {code} was found)"
    if char == "\x00":
        return "must not contain NUL characters (U+0000)"
    if multiline:
        return f"must not contain control characters other than tab and line breaks (found {code})"
    return f"must be a single line without control characters (found {code})"


def check_text(field: str, value: str, *, multiline: bool = False) -> str:
    """``value`` if it is acceptable text; otherwise ``hub.store.Invalid`` naming ``field``."""
    problem = text_problem(value, multiline=multiline)
    if problem:
        from hub.store import Invalid  # the store uses this module

        raise Invalid(field, problem)
    return value
