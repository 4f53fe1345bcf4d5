"""The shared ``LISTEN`` loop (``hub.pg_listen``) on a real PostgreSQL: notifications
come as they are sent; a broken connection is opened again, logged once when it breaks
and once when it works again, and the caller hears of each connection."""

from __future__ import annotations

import logging
import queue
import secrets
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from hub import pg_listen

WAIT = 120.0  # a bound against hangs on a busy machine, not a timing
CHANNEL = f"gpshub_test_{secrets.token_hex(4)}"  # channels are the database's: ours alone


@pytest.mark.postgres
def test_notifications_come_and_a_broken_connection_is_opened_again(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = sa.create_engine(pg_url)
    stop = threading.Event()
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    idled = threading.Event()

    def connected(conn: Any) -> bool:
        events.put(("connected", conn.info.backend_pid))
        return True

    def notified(payload: str) -> bool:
        events.put(("notified", payload))
        return True

    def idle() -> bool:
        idled.set()
        return True

    def notify(payload: str) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload})

    log = logging.getLogger("gpshub.test.listen")
    thread = threading.Thread(
        target=pg_listen.listen,
        args=(engine, CHANNEL, stop),
        kwargs={
            "what": "test messages",
            "log": log,
            "connected": connected,
            "notified": notified,
            "idle": idle,
            "lost": lambda: events.put(("lost", None)),
            "check_s": 0.2,
            "retry_s": 0.1,
        },
    )
    caplog.set_level(logging.INFO, logger=log.name)
    thread.start()
    try:
        kind, pid = events.get(timeout=WAIT)
        assert kind == "connected"
        notify("one")
        notify("two")
        assert events.get(timeout=WAIT) == ("notified", "one")
        assert events.get(timeout=WAIT) == ("notified", "two")
        assert idled.wait(WAIT)  # called while nothing comes
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        assert events.get(timeout=WAIT) == ("lost", None)
        kind, again = events.get(timeout=WAIT)
        assert kind == "connected" and again != pid
        notify("three")
        assert events.get(timeout=WAIT) == ("notified", "three")
    finally:
        stop.set()
        thread.join(WAIT)
        engine.dispose()
    assert not thread.is_alive()
    said = [r.getMessage() for r in caplog.records if r.name == log.name]
    assert len(said) == 2
    assert said[0].startswith("listening for test messages failed (")
    assert said[1] == "listening for test messages again"


@pytest.mark.postgres
def test_a_callback_saying_no_ends_the_loop(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    thread = threading.Thread(
        target=pg_listen.listen,
        args=(engine, CHANNEL, threading.Event()),
        kwargs={
            "what": "test messages",
            "log": logging.getLogger("gpshub.test.listen"),
            "connected": lambda _conn: False,  # the trio run is over, say
            "notified": lambda _payload: True,
        },
    )
    thread.start()
    thread.join(WAIT)
    engine.dispose()
    assert not thread.is_alive()
