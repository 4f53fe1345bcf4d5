"""How the hub writes an instant as text (the API, the exports, the native formats).

Kept free of SQLAlchemy: the formats that use it are loaded by ``gpshub plugins``,
which opens no database (``hub.positions`` re-exports ``utc_text``)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_text(value: datetime) -> str:
    """``2026-01-01T00:00:00Z``: ISO 8601 in UTC with a Z."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
