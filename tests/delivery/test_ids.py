"""``webhook-id``s: one message's id everywhere it goes, never another message's.

Receivers de-duplicate on the id, so two hubs must never share one, and neither may a
database restored from a backup and the original it was taken from.
"""

from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import trio
from trio.testing import MockClock
from world import World, until, world

from gpshub_startrack_relay.testing import Receiver, serve_receiver
from hub.store import Store


def contents(receiver: Receiver) -> dict[str, set[str]]:
    """What each webhook-id carried (a repeat of a message carries the same)."""
    out: dict[str, set[str]] = defaultdict(set)
    for r in receiver.requests:
        out[r.received.webhook_id or ""].add(r.raw.decode())
    return out


def copy(source: Path, target: Path) -> None:
    """Copy one SQLite database over another (no connection may be open on ``target``)."""
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


async def deliver(w: World, receiver: Receiver, fixes: int, *sinks: int) -> None:
    """Run the hub until ``fixes`` more fixes per device are delivered to ``sinks``."""
    async with trio.open_nursery() as nursery:
        await nursery.start(w.hub.run)
        await w.feed(fixes)
        await until(lambda: all(w.stats(s)["pending"] == 0 for s in sinks))
        w.hub.shutdown()
    await trio.sleep(1)


async def test_two_hubs_never_share_a_webhook_id(tmp_path: Path, clock: MockClock) -> None:
    receiver = Receiver()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    worlds = [world(tmp_path / name, devices=2) for name in ("a", "b")]
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        for w in worlds:
            await deliver(w, receiver, 3, w.sink(url + "/json1"), w.sink(url + "/json2",
                          format="startrack-json2"))  # fmt: skip
        nursery.cancel_scope.cancel()
    ids = [r.webhook_id or "" for r in receiver.received()]
    assert len(ids) == len(set(ids)) == 2 * (6 + 1)
    hub_ids = [w.hub.store.sinks.hub_id() for w in worlds]
    assert hub_ids[0] != hub_ids[1]
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{12}", h) for h in hub_ids)
    for hub_id in hub_ids:
        mine = [i for i in ids if hub_id in i]
        assert sum(bool(re.fullmatch(rf"msg_{hub_id}_\d+", i)) for i in mine) == 6
        assert sum(i.startswith(f"batch_{hub_id}_") for i in mine) == 1


async def test_a_restored_backup_gives_no_webhook_id_out_again(
    tmp_path: Path, clock: MockClock
) -> None:
    w = world(tmp_path, devices=2)
    receiver = Receiver()
    path = tmp_path / "hub.db"
    backup = tmp_path / "backup.db"
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        sinks = (w.sink(url + "/json1"), w.sink(url + "/json2", format="startrack-json2"))
        await deliver(w, receiver, 3, *sinks)
        copy(path, backup)
        w.restart()
        await deliver(w, receiver, 3, *sinks)  # what the backup misses
        await trio.sleep(60)
        old = w.hub.store
        old.close()
        copy(backup, path)  # the restore
        restored: Any = Store.open(f"sqlite:///{path}", old.secrets)
        w.restart(restored)
        await deliver(w, receiver, 3, *sinks)
        nursery.cancel_scope.cancel()
    assert receiver.problems() == []
    sent = contents(receiver)
    reused = {i: c for i, c in sent.items() if len(c) > 1}
    assert reused == {}, f"{len(reused)} ids were given to two messages"
    assert sum(i.startswith("msg_") for i in sent) == 3 * 2 * 3
    assert len({i.split("_")[1] for i in sent}) == 1  # one hub: the restore kept its id
