"""The live feed: fan-out of typed messages to subscribers, never slowing ingest.

Publishing never waits.  Messages published within one *tick* (``tick_s``, 50 ms by
default) are routed together when it ends (``flush``):

* every subscriber of all of a client's devices (or of every client's: the
  administrator) gets the same ``Frame`` object, whose JSON array is built once, however
  many sockets send it; a subscriber of some devices gets a frame of its own, picked
  from a per-device index of the tick's messages, so devices it does not watch cost it
  nothing;
* in ``latest`` mode (maps) a subscriber keeps only the newest position of each device
  and takes them at most once per ``max_rate_s``: it holds one position per device
  whatever the fleet sends, so it never falls behind.

Each subscriber's backlog is bounded in bytes (``max_pending_bytes``); one whose backlog
overflows is marked as lagging and dropped (its WebSocket is closed with
``CLOSE_LAGGING``), and everybody else goes on.  Without a running ticker (``run``), as
in unit tests, or with ``tick_s`` 0, each ``publish`` is routed at once.

Access changes (``apply_changes``, from the hub's change feed): when a token is revoked,
a user deleted or changed, or a client deleted, the subscribers of that token, user or
client are *held* at once (messages are buffered, none is handed out) and asked to
re-check their token; the session closes the socket or releases the hold.  A deleted
device leaves the selections that named it, and those subscribers get a
``subscription_changed`` message saying so.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import orjson
import trio

from hub.changes import Change, ChangeKind, ChangeOp

if TYPE_CHECKING:
    from hub.store import Principal

DEFAULT_MAX_PENDING_BYTES = 8 * 1024 * 1024
DEFAULT_TICK_S = 0.05
MIN_RATE_S = 0.05
MAX_RATE_S = 3600.0


def encode_json(value: Any) -> str:
    """Compact JSON for the feed; aware UTC datetimes come out as ``…Z``.

    orjson: encoding every position for the feed was a fifth of the ingest time with
    the standard library's encoder.
    """
    return orjson.dumps(value, default=str, option=orjson.OPT_UTC_Z).decode()


class FeedMode(StrEnum):
    """What a subscriber receives: every message, or the newest position per device."""

    ALL = "all"
    LATEST = "latest"


class FrameFormat(StrEnum):
    """How messages travel: JSON arrays of messages, or one message per frame."""

    ARRAY = "array"
    SINGLE = "single"


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One message for the feed: who it concerns, its type and its JSON text."""

    client_id: int
    device_id: int | None
    text: str
    kind: str = ""

    @classmethod
    def make(
        cls, type_: str, client_id: int, device_id: int | None, data: dict[str, Any]
    ) -> LiveMessage:
        body = {"type": type_, "device_id": device_id, "data": data}
        return cls(client_id, device_id, encode_json(body), type_)


class Frame:
    """Messages handed out together.  ``text``, their JSON array, is built on first use
    and kept, so every socket sending the same frame shares one string."""

    __slots__ = ("_text", "nbytes", "texts")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.nbytes = sum(map(len, texts)) + len(texts) + 1
        self._text: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = array_text(self.texts)
        return self._text


def array_text(texts: Iterable[str]) -> str:
    """JSON texts joined into the text of a JSON array."""
    return "[" + ",".join(texts) + "]"


def frames_text(frames: Sequence[Frame]) -> str:
    """One JSON array of every message in ``frames`` (a lone frame's shared text)."""
    if len(frames) == 1:
        return frames[0].text
    return array_text(t for f in frames for t in f.texts)


class SubscriberLagging(Exception):
    """The subscriber fell behind by more than its buffer and was dropped."""


class Subscriber:
    """One socket's subscription and backlog (see the module docstring)."""

    def __init__(
        self,
        client_id: int | None,
        device_ids: Iterable[int] | None,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        principal: Principal | None = None,
        *,
        mode: FeedMode = FeedMode.ALL,
        max_rate_s: float = 1.0,
        frames: FrameFormat = FrameFormat.ARRAY,
    ) -> None:
        self.client_id = client_id  # None: every client (system administrator)
        self.device_ids: set[int] | None = set(device_ids) if device_ids is not None else None
        self.max_pending_bytes = max_pending_bytes
        self.principal = principal  # who subscribed (its token, user and client)
        self.frames = frames
        self.mode = mode
        self.max_rate_s = max_rate_s
        self.pending: deque[Frame] = deque()
        self.pending_bytes = 0
        self.latest: dict[int | None, LiveMessage] = {}  # latest mode: newest per device
        self._latest_due = -math.inf  # when the next positions may go (latest mode)
        self.lagging = False
        self.dropped = 0  # messages lost when it was dropped
        self.held = False
        self.recheck_reason: str | None = None
        self.recheck_requested = trio.Event()
        # where ``receive_batch`` waits: a parking lot, not an Event made anew per wake-up
        # (a message to a lone subscriber costs a task switch, not more)
        self._wake = trio.lowlevel.ParkingLot()

    # -- access re-checks ----------------------------------------------------------
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
            self._wake.unpark_all()

    # -- the selection ---------------------------------------------------------------
    def drop_devices(self, gone: set[int]) -> list[int]:
        """Remove deleted devices from the selection; those removed."""
        if self.device_ids is None:
            return []
        removed = sorted(self.device_ids & gone)
        if removed:
            self.device_ids -= gone
            for device in removed:
                self.latest.pop(device, None)
            body = {
                "type": "subscription_changed",
                "reason": "devices_deleted",
                "removed": removed,
                "device_ids": sorted(self.device_ids),
            }
            self.offer(Frame([encode_json(body)]))
        return removed

    def wants(self, msg: LiveMessage) -> bool:
        if self.client_id is not None and msg.client_id != self.client_id:
            return False
        return self.device_ids is None or msg.device_id is None or msg.device_id in self.device_ids

    def set_devices(
        self,
        device_ids: Iterable[int] | None,
        mode: FeedMode | None = None,
        max_rate_s: float | None = None,
    ) -> None:
        """A new selection (and mode): what was buffered for the old one and is not
        sent yet stays, but newest positions kept for devices it drops are forgotten."""
        self.device_ids = set(device_ids) if device_ids is not None else None
        if mode is not None:
            self.mode = mode
        if max_rate_s is not None:
            self.max_rate_s = max_rate_s
        if self.mode is FeedMode.ALL:
            self.latest.clear()
        elif self.device_ids is not None:
            keep = self.device_ids
            self.latest = {d: m for d, m in self.latest.items() if d in keep}

    # -- taking messages in ----------------------------------------------------------
    def offer(self, frame: Frame) -> None:
        """Queue ``frame``; past ``max_pending_bytes`` the subscriber is lagging."""
        if self.lagging or not frame.texts:
            return
        if self.pending_bytes + frame.nbytes > self.max_pending_bytes:
            self.lagging = True
            self.dropped += sum(len(f.texts) for f in self.pending) + len(frame.texts)
            self.pending.clear()
            self.pending_bytes = 0
        else:
            self.pending.append(frame)
            self.pending_bytes += frame.nbytes
        self._wake.unpark_all()

    def absorb(self, messages: Iterable[LiveMessage]) -> None:
        """Latest mode: keep the newest position per device; queue everything else."""
        others: list[str] = []
        latest = self.latest
        for m in messages:
            if m.kind == "position":
                latest.pop(m.device_id, None)  # re-inserted last: sent in arrival order
                latest[m.device_id] = m
            else:
                others.append(m.text)
        if others:
            self.offer(Frame(others))
        elif latest:
            self._wake.unpark_all()

    # -- handing messages out --------------------------------------------------------
    async def receive_batch(self) -> list[str]:
        """Wait for messages and take them as texts to send: one JSON array (frame format
        ``array``) or one text per message (``single``).  Raises ``SubscriberLagging``
        once the subscriber was dropped.  In latest mode, positions are taken at most
        once per ``max_rate_s``; other messages as they come."""
        while True:
            if self.lagging:
                raise SubscriberLagging(f"fell behind by more than {self.max_pending_bytes} bytes")
            deadline = math.inf
            if not self.held:
                if self.pending:
                    break
                if self.latest:
                    deadline = self._latest_due
                    if trio.current_time() >= deadline:
                        break
            if deadline == math.inf:
                await self._wake.park()
            else:
                with trio.move_on_at(deadline):
                    await self._wake.park()
        frames = list(self.pending)
        self.pending.clear()
        self.pending_bytes = 0
        now = trio.current_time()
        if self.latest and now >= self._latest_due:
            frames.append(Frame([m.text for m in self.latest.values()]))
            self.latest = {}
            self._latest_due = now + self.max_rate_s
        if self.frames is FrameFormat.SINGLE:
            return [t for f in frames for t in f.texts]
        return [frames_text(frames)]


class LiveFeed:
    CHANGE_KINDS = frozenset(
        {ChangeKind.TOKEN, ChangeKind.USER, ChangeKind.CLIENT, ChangeKind.DEVICE}
    )
    """The kinds of change ``apply_changes`` acts on."""

    def __init__(self, tick_s: float = DEFAULT_TICK_S) -> None:
        self.tick_s = tick_s
        self._subs: set[Subscriber] = set()
        self._inbox: list[LiveMessage] = []
        self._ready = trio.Event()
        self._ticking = False
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
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        principal: Principal | None = None,
        **options: Any,
    ) -> Iterator[Subscriber]:
        """A subscriber for as long as the block runs (``options``: ``mode``,
        ``max_rate_s``, ``frames``, as ``Subscriber`` takes them)."""
        sub = Subscriber(client_id, device_ids, max_pending_bytes, principal, **options)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)
            if sub.lagging:
                self.lagging_dropped += 1

    def publish(self, messages: list[LiveMessage]) -> None:
        """Hand ``messages`` to the interested subscribers at the end of the tick (at
        once without a ticker); never blocks."""
        if not messages or not self._subs:
            return
        self._inbox.extend(messages)
        if self._ticking:
            self._ready.set()
        else:
            self.flush()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The ticker: route what was published at most once per ``tick_s``; a message
        after a quiet spell goes at once."""
        if self.tick_s <= 0:
            task_status.started()
            return
        self._ticking = True
        try:
            task_status.started()
            last = -math.inf
            while True:
                await self._ready.wait()
                self._ready = trio.Event()
                await trio.sleep_until(last + self.tick_s)
                self.flush()
                last = trio.current_time()
        finally:
            self._ticking = False
            self.flush()

    def flush(self) -> None:
        """Route the messages published since the last flush (see the module docstring)."""
        messages, self._inbox = self._inbox, []
        if not messages:
            return
        self.published += len(messages)
        by_client: dict[int, list[LiveMessage]] = {}
        for m in messages:
            by_client.setdefault(m.client_id, []).append(m)
        shared: dict[int | None, Frame] = {}
        indexes: dict[int | None, dict[int | None, list[LiveMessage]]] = {}
        for sub in self._subs:
            if sub.lagging:
                continue
            key = sub.client_id
            pool = messages if key is None else by_client.get(key)
            if not pool:
                continue
            if sub.device_ids is None:
                if sub.mode is FeedMode.LATEST:
                    sub.absorb(pool)
                    continue
                frame = shared.get(key)
                if frame is None:
                    frame = shared[key] = Frame([m.text for m in pool])
                sub.offer(frame)
                continue
            index = indexes.get(key)
            if index is None:
                index = indexes[key] = _by_device(pool)
            chosen = _select(index, sub.device_ids)
            if not chosen:
                continue
            if sub.mode is FeedMode.LATEST:
                sub.absorb(chosen)
            else:
                sub.offer(Frame([m.text for m in chosen]))

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


def _by_device(messages: list[LiveMessage]) -> dict[int | None, list[LiveMessage]]:
    index: dict[int | None, list[LiveMessage]] = {}
    for m in messages:
        index.setdefault(m.device_id, []).append(m)
    return index


def _select(index: dict[int | None, list[LiveMessage]], ids: set[int]) -> list[LiveMessage]:
    """The messages of the devices in ``ids`` (and of no device), each device's in order;
    the work follows the smaller of the selection and the devices heard from."""
    chosen = list(index.get(None, ()))
    if len(ids) < len(index):
        for device in ids:
            got = index.get(device)
            if got:
                chosen.extend(got)
    else:
        for device, got in index.items():
            if device is not None and device in ids:
                chosen.extend(got)
    return chosen
