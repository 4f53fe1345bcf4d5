"""The roles of users (``User.role``), kept free of SQLAlchemy so that the command
line's parser can offer them without importing the schema (``hub.models`` re-exports
``Role``)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # system administrator: every client
    MANAGER = "manager"  # a client's user who may change its data
    VIEWER = "viewer"  # a client's read-only user
