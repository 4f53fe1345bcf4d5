"""Passwords and browser sessions in the database (``Store.sessions``).

A session is named by a random cookie value (256 bits) of which only the SHA-256 is
stored, like API tokens.  It ends when it is signed out, when its user's password
changes (the other sessions of that user), when its user is deleted, when it is idle
longer than the idle limit, or at its absolute expiry.  Ending a session records a
``user updated`` change, so live sockets of its user check their credentials again
(``hub.livefeed``).  Time is passed in (the hub's clock), so tests control it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub import db
from hub.changes import ChangeKind, ChangeOp, record_change
from hub.models import BrowserSession, Client, User
from hub.store_errors import NotFound

__all__ = ["SessionCheck", "SessionStore", "session_hash"]

SEEN_RESOLUTION = timedelta(minutes=1)
"""How often a session's last use is written at most (its idle expiry is that precise)."""


def session_hash(plain: str) -> str:
    return hashlib.sha256(plain.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionCheck:
    """What ``SessionStore.check`` found: the session and its user, or why not
    (``unknown or ended session``, ``session expired``, ``session idle too long``)."""

    session: BrowserSession | None
    user: User | None
    reason: str = ""


class SessionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        with db.orm_session(self.engine, write=write) as session:
            yield session

    # -- passwords ---------------------------------------------------------------------
    def sign_in_candidates(self, name: str, client: str | None) -> list[User]:
        """The users ``name`` may mean at sign-in, those with a password only: of the
        client named ``client`` (its name, or its id as digits), or, without ``client``,
        of any client and the administrators."""
        with self._session() as s:
            q = select(User).where(User.name == name, col(User.password_hash).is_not(None))
            if client is not None:
                match = Client.name == client
                if client.isascii() and client.isdigit() and len(client) < 19:
                    match = sa.or_(match, col(Client.id) == int(client))
                q = q.join(Client, col(Client.id) == User.client_id).where(match)
            return list(s.exec(q.order_by(col(User.id))))

    def password_hash(self, user_id: int) -> str | None:
        with self._session() as s:
            user = s.get(User, user_id)
            if user is None:
                raise NotFound(f"user {user_id} not found")
            return user.password_hash

    def set_password(
        self,
        user_id: int,
        password_hash: str | None,
        client_id: int | None = None,
        *,
        keep_session: int | None = None,
    ) -> User:
        """Set (or, with ``None``, remove) a user's password (``client_id`` limits it to
        that client's users) and end its sessions, but ``keep_session``."""
        with self._session(write=True) as s:
            user = s.get(User, user_id)
            if user is None or (client_id is not None and user.client_id != client_id):
                raise NotFound(f"user {user_id} not found")
            user.password_hash = password_hash
            s.add(user)
            q = sa.delete(BrowserSession).where(col(BrowserSession.user_id) == user_id)
            if keep_session is not None:
                q = q.where(col(BrowserSession.id) != keep_session)
            s.execute(q)
            record_change(
                s.connection(), ChangeKind.USER, ChangeOp.UPDATED, user_id, user.client_id
            )
            return user

    def upgrade_password(self, user_id: int, old_hash: str, new_hash: str) -> bool:
        """Replace a user's password hash by one of the same password made with today's
        parameters, if it is still ``old_hash`` (a password changed meanwhile stays);
        sessions are kept and no change is recorded: the password is the same."""
        with self._session(write=True) as s:
            q = (
                sa.update(User)
                .where(col(User.id) == user_id, col(User.password_hash) == old_hash)
                .values(password_hash=new_hash)
            )
            return bool(s.execute(q).rowcount)

    # -- sessions ----------------------------------------------------------------------
    def create(
        self,
        user_id: int,
        now: datetime,
        lifetime: timedelta,
        *,
        user_agent: str = "",
        address: str = "",
    ) -> tuple[BrowserSession, str]:
        """A new session of ``user_id``: the row and the cookie value (never stored)."""
        plain = secrets.token_urlsafe(32)
        row = BrowserSession(
            session_hash=session_hash(plain),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            user_agent=user_agent[:300],
            address=address[:64],
        )
        with self._session(write=True) as s:
            if s.get(User, user_id) is None:
                raise NotFound(f"user {user_id} not found")
            s.add(row)
            s.flush()
            return row, plain

    def check(self, plain: str, now: datetime, idle: timedelta) -> SessionCheck:
        """The live session the cookie value ``plain`` names and its user; an expired one
        is deleted.  Its last use is recorded (at most once per ``SEEN_RESOLUTION``)."""
        if not plain or len(plain) > 200:
            return SessionCheck(None, None, "unknown or ended session")
        digest = session_hash(plain)
        with self._session() as s:
            found = s.exec(
                select(BrowserSession, User)
                .join(User, col(User.id) == BrowserSession.user_id)
                .where(BrowserSession.session_hash == digest)
            ).first()
        if found is None:
            return SessionCheck(None, None, "unknown or ended session")
        row, user = found
        reason = ""
        if now >= row.expires_at:
            reason = "session expired"
        elif now - row.last_seen_at >= idle:
            reason = "session idle too long"
        if reason:
            self._delete(sa.delete(BrowserSession).where(col(BrowserSession.id) == row.id))
            return SessionCheck(None, None, reason)
        if now - row.last_seen_at >= min(SEEN_RESOLUTION, idle / 10):
            with db.write_tx(self.engine) as conn:
                conn.execute(
                    sa.update(BrowserSession)
                    .where(col(BrowserSession.id) == row.id)
                    .values(last_seen_at=now)
                )
            row.last_seen_at = now
        return SessionCheck(row, user)

    def end(self, plain: str) -> BrowserSession | None:
        """Sign a session out; the row it was (``None``: no such session)."""
        digest = session_hash(plain)
        with self._session(write=True) as s:
            row = s.exec(
                select(BrowserSession).where(BrowserSession.session_hash == digest)
            ).first()
            if row is None:
                return None
            user = s.get(User, row.user_id)
            s.delete(row)
            client_id = user.client_id if user is not None else None
            record_change(s.connection(), ChangeKind.USER, ChangeOp.UPDATED, row.user_id, client_id)
            return row

    def list(self, user_id: int) -> list[BrowserSession]:
        with self._session() as s:
            q = select(BrowserSession).where(BrowserSession.user_id == user_id)
            return list(s.exec(q.order_by(col(BrowserSession.id))))

    def prune(self, now: datetime, idle: timedelta) -> int:
        """Delete expired and idle sessions; how many."""
        return self._delete(
            sa.delete(BrowserSession).where(
                sa.or_(
                    col(BrowserSession.expires_at) <= now,
                    col(BrowserSession.last_seen_at) <= now - idle,
                )
            )
        )

    def _delete(self, statement: sa.Delete) -> int:
        with db.write_tx(self.engine) as conn:
            return conn.execute(statement).rowcount or 0
