"""One PostgreSQL ``LISTEN`` loop, run in a thread of its own by whoever follows a
notification channel (``hub.changes``: the change log; ``hub.live_relay``: the live
messages of other processes).

``listen`` opens a connection of its own (the engine's connect arguments, autocommit),
``LISTEN``\\ s on the channel, and hands each notification's payload to the caller as
it comes.  A broken connection is opened again with backoff (``retry_s``, doubling up
to ``MAX_RETRY_S`` while connecting fails), logged once when it breaks and once when it
works again.  Notifications sent while disconnected are lost: the caller hears of each
(re)connection and makes up for them.  It returns when ``stop`` is set, or when a
callback says the trio run it reports to is over.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    import psycopg

MAX_RETRY_S = 30.0


def _always() -> bool:
    return True


def listen(
    engine: Engine,
    channel: str,
    stop: threading.Event,
    *,
    what: str,
    log: logging.Logger,
    connected: Callable[[psycopg.Connection[Any]], bool],
    notified: Callable[[str], bool],
    idle: Callable[[], bool] = _always,
    lost: Callable[[], None] | None = None,
    check_s: float = 1.0,
    retry_s: float = 1.0,
) -> None:
    """Follow ``channel`` until ``stop`` is set (blocking: run it in a thread).

    ``connected(conn)``: the ``LISTEN`` is in place on ``conn`` (after each
    (re)connection); ``notified(payload)``: a notification; ``idle()``: every
    ``check_s`` at least, whether or not something came; each returns ``False`` to end
    the loop.  ``lost()``: the connection broke (before waiting to reconnect).  ``what``
    names what is listened for in the log lines, written to ``log``.
    """
    import psycopg

    delay = retry_s
    broken = False
    while not stop.is_set():
        try:
            cargs, cparams = engine.dialect.create_connect_args(engine.url)
            conn = psycopg.connect(*cargs, **cparams, autocommit=True)
        except psycopg.Error as exc:
            if not broken:
                log.warning("cannot listen for %s (%s); retrying", what, exc)
            broken = True
            stop.wait(delay)
            delay = min(delay * 2, MAX_RETRY_S)
            continue
        try:
            conn.execute(f"LISTEN {channel}")
            if broken:
                log.info("listening for %s again", what)
            broken, delay = False, retry_s
            if not connected(conn):
                return
            while not stop.is_set():
                for n in conn.notifies(timeout=check_s):  # each as it comes
                    if not notified(n.payload):
                        return
                    if stop.is_set():
                        break
                if not idle():
                    return
        except psycopg.Error as exc:
            if not broken:
                log.warning("listening for %s failed (%s); reconnecting", what, exc)
            broken = True
            if lost is not None:
                lost()
            stop.wait(delay)
        finally:
            conn.close()
