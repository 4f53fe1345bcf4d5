"""What the store refuses with, kept free of SQLAlchemy so that the command line can
catch them without importing the store (``hub.store`` re-exports all three)."""

from __future__ import annotations


class NotFound(LookupError):
    """The row does not exist, or is not visible to the caller's client."""


class Conflict(ValueError):
    """The change would break a uniqueness rule; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Invalid(ValueError):
    """A value is not acceptable; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
