"""The live feed: fan-out of typed messages to subscribers, never slowing ingest.

Each subscriber has a bounded buffer.  Publishing is synchronous and never waits: a
subscriber whose buffer overflows is marked as lagging and dropped (its WebSocket is
closed with ``CLOSE_LAGGING``); everybody else goes on.  Messages are encoded to JSON
once, whatever the number of subscribers.

Access changes (``apply_changes``, from the hub's change feed): when a token is revoked,
a user deleted or changed, or a client deleted, the subscribers of that token, user or
client are *held* at once (messages are buffered, none is handed out) and asked to
re-check their token; the session closes the socket or releases the hold.  A deleted
device leaves the selections that named it, and those subscribers get a
``subscription_changed`` message saying so.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import trio

from hub.changes import Change, ChangeKind, ChangeOp

if TYPE_CHECKING:
    from hub.store import Principal

DEFAULT_MAX_PENDING = 10_000


def encode_json(value: Any) -> str:
    """Compact JSON for the feed; aware UTC datetimes come out as ``…Z``.

    orjson: encoding every position for the feed was a fifth of the ingest time with
    the standard library's encoder.
    """
    return orjson.dumps(value, default=str, option=orjson.OPT_UTC_Z).decode()


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One message for the feed: who it concerns and its JSON text."""

    client_id: int
    device_id: int | None
    text: str

    @classmethod
    def make(
        cls, type_: str, client_id: int, device_id: int | None, data: dict[str, Any]
    ) -> LiveMessage:
        body = {"type": type_, "device_id": device_id, "data": data}
        return cls(client_id, device_id, encode_json(body))


class SubscriberLagging(Exception):
    """The subscriber fell behind by more than its buffer and was dropped."""


class Subscriber:
    def __init__(
        self,
        client_id: int | None,
        device_ids: Iterable[int] | None,
        max_pending: int,
        principal: Principal | None = None,
    ) -> None:
        self.client_id = client_id  # None: every client (system administrator)
        self.device_ids: set[int] | None = set(device_ids) if device_ids is not None else None
        self.max_pending = max_pending
        self.principal = principal  # who subscribed (its token, user and client)
        self.pending: deque[str] = deque()
        self.lagging = False
        self.dropped = 0
        self.held = False
        self.recheck_reason: str | None = None
        self.recheck_requested = trio.Event()
        self._wake = trio.Event()

    def recheck(self, reason: str) -> None:
        """Hold the messages and ask the session to re-check its token (``reason``: why,
        for the close frame should the check fail)."""
        self.held = True
        if self.recheck_reason is None:
            self.recheck_reason = reason
        self.recheck_requested.set()

    def take_recheck(self) -> str | None:
        """The reason of the pending re-check request, if any, clearing it."""
        reason, self.recheck_reason = self.recheck_reason, None
        if self.recheck_requested.is_set():
            self.recheck_requested = trio.Event()
        return reason

    def release(self) -> None:
        """The token still holds: hand out the messages held meanwhile."""
        if self.held and self.recheck_reason is None:
            self.held = False
            self._wake.set()

    def drop_devices(self, gone: set[int]) -> list[int]:
        """Remove deleted devices from the selection; those removed."""
        if self.device_ids is None:
            return []
        removed = sorted(self.device_ids & gone)
        if removed:
            self.device_ids -= gone
            body = {
                "type": "subscription_changed",
                "reason": "devices_deleted",
                "removed": removed,
                "device_ids": sorted(self.device_ids),
            }
            self._offer([encode_json(body)])
        return removed

    def wants(self, msg: LiveMessage) -> bool:
        if self.client_id is not None and msg.client_id != self.client_id:
            return False
        return self.device_ids is None or msg.device_id is None or msg.device_id in self.device_ids

    def set_devices(self, device_ids: Iterable[int] | None) -> None:
        self.device_ids = set(device_ids) if device_ids is not None else None

    def _offer(self, texts: list[str]) -> None:
        if self.lagging or not texts:
            return
        if len(self.pending) + len(texts) > self.max_pending:
            self.lagging = True
            self.dropped += len(self.pending) + len(texts)
            self.pending.clear()
        else:
            self.pending.extend(texts)
        self._wake.set()

    async def receive_batch(self) -> list[str]:
        """Wait for messages and take all that are pending (none while held)."""
        while (self.held or not self.pending) and not self.lagging:
            await self._wake.wait()
            self._wake = trio.Event()
        if self.lagging:
            raise SubscriberLagging(f"fell behind by more than {self.max_pending} messages")
        out = list(self.pending)
        self.pending.clear()
        return out


class LiveFeed:
    CHANGE_KINDS = frozenset(
        {ChangeKind.TOKEN, ChangeKind.USER, ChangeKind.CLIENT, ChangeKind.DEVICE}
    )
    """The kinds of change ``apply_changes`` acts on."""

    def __init__(self) -> None:
        self._subs: set[Subscriber] = set()
        self.published = 0
        self.lagging_dropped = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    @contextmanager
    def subscribe(
        self,
        client_id: int | None,
        device_ids: Iterable[int] | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        principal: Principal | None = None,
    ) -> Iterator[Subscriber]:
        sub = Subscriber(client_id, device_ids, max_pending, principal)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)
            if sub.lagging:
                self.lagging_dropped += 1

    def publish(self, messages: list[LiveMessage]) -> None:
        """Hand ``messages`` to every interested subscriber; never blocks."""
        if not messages or not self._subs:
            return
        self.published += len(messages)
        by_client: dict[int, list[LiveMessage]] = {}
        for m in messages:
            by_client.setdefault(m.client_id, []).append(m)
        for sub in self._subs:
            if sub.lagging:
                continue
            pool = messages if sub.client_id is None else by_client.get(sub.client_id, [])
            if sub.device_ids is None:
                sub._offer([m.text for m in pool])
            else:
                ids = sub.device_ids
                sub._offer([m.text for m in pool if m.device_id is None or m.device_id in ids])

    def apply_changes(self, changes: list[Change]) -> None:
        """Act on access and device changes (see the module docstring); never waits."""
        why: dict[tuple[str, int | None], str] = {}  # (kind, id or None: any) -> reason
        devices: set[int] = set()
        for c in changes:
            if c.kind == ChangeKind.DEVICE:
                if c.op == ChangeOp.DELETED and c.object_id is not None:
                    devices.add(c.object_id)
            elif c.op == ChangeOp.DELETED:
                verb = "revoked" if c.kind == ChangeKind.TOKEN else "deleted"
                why[c.kind, c.object_id] = f"{c.kind} {verb}"
            elif c.kind in (ChangeKind.TOKEN, ChangeKind.USER) and c.op != ChangeOp.CREATED:
                why[c.kind, c.object_id] = f"{c.kind} changed"
        for sub in self._subs:
            who = sub.principal
            if who is not None and why:
                for key in (
                    (ChangeKind.TOKEN, who.token_id),
                    (ChangeKind.TOKEN, None),
                    (ChangeKind.USER, who.user_id),
                    (ChangeKind.USER, None),
                    (ChangeKind.CLIENT, who.client_id),
                ):
                    if key in why:
                        sub.recheck(why[key])
                        break
            if devices:
                sub.drop_devices(devices)
