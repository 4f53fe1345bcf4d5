"""The clients' side of ``bench/live.py``: N WebSocket clients of ``/api/live`` in one process.

``bench/live.py`` starts this script; it is not meant to be run by hand.  It talks to its
parent with one JSON object per line: on standard output ``{"ready": …}`` once every client
has its ``hello`` and snapshot, then ``{"done": …}`` once the results are written to
``--out``; on standard input ``{"cmd": "go"}`` when the producer starts and ``{"cmd":
"drain", "expected": N, "newest": {device: id}, "timeout": s}`` when it has stopped.

Each client is a trio TCP stream.  wsproto makes the opening handshake (the
``Authorization`` header, permessage-deflate offered with ``--deflate``) and encodes what the
client sends (masked frames, the close frame); the frames the server sends are read by a
small parser here, which is several times cheaper per frame than wsproto's, so that one
process on one core can read 100 clients x 2,000 messages/s.  A frame carries a JSON
object (one message) or a JSON array of messages; both are handled.

Per client it counts live ``position`` messages (not the snapshot ones): new ones (the
position id above the device's last), duplicates (the same id again) and out of order
(a lower id), keeps each device's last id, and samples ``(id, receive time)`` for the ids
with ``id % --sample == 0`` (the latency join happens in the parent, which knows when each
id was committed).  In ``latest`` mode it also tracks the most positions of one device
within one ``max_rate_s`` window and the shortest gap between two of them.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import sys
import time
import zlib
from array import array
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import trio
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.handshake import H11Handshake

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
DEFLATE_TAIL = b"\x00\x00\xff\xff"
READ_SIZE = 1 << 18
SUBSCRIBE_WAIT = 5.0  # seconds a subscribe message may go unanswered
LIVE_POSITION = re.compile(rb'\{"type":"position","device_id":(\d+),"data":\{"id":(\d+),')
MESSAGE_START = b'{"type":"'
"""A frame of live positions only (the bulk of the traffic) is read without decoding its
JSON: the device and position ids of each message are picked out by ``LIVE_POSITION``.
This keeps the clients' process, which plays 100 dashboards on one core, from being the
bottleneck it was when every message became a dict (2-4 microseconds a message)."""


def _live_positions(payload: bytes | bytearray) -> list[tuple[bytes, bytes]] | None:
    """The (device id, position id) pairs of a frame that holds live positions and
    nothing else; ``None`` for any other frame (decoded as JSON instead)."""
    if payload[:2] != b"[{" or b'"snapshot"' in payload:
        return None
    found = LIVE_POSITION.findall(payload)
    if not found or len(found) != payload.count(MESSAGE_START):
        return None
    return found


def emit(obj: dict[str, Any]) -> None:
    """One line for the parent."""
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_rss_mib() -> float:
    """``VmHWM`` from ``/proc/self/status`` (``ru_maxrss`` would count the parent's memory
    across ``exec``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class LiveClient:
    """One WebSocket client: the handshake, the frame reader and the counters."""

    def __init__(self, index: int, args: argparse.Namespace) -> None:
        self.index = index
        self.args = args
        self.latest = args.mode == "latest"
        self.window = args.max_rate_s
        self.sample = args.sample
        self.ready = trio.Event()
        self.finished = trio.Event()
        self.is_ready = False
        self.error: str | None = None
        self.deflate: bool | None = None  # None: not offered
        self.no_context_takeover = False
        self._inflate: Any = None
        self._stream: trio.SocketStream | None = None
        self._ws: Connection | None = None
        self._send_lock = trio.Lock()
        self._outbox: list[bytes] = []  # pongs and the close reply, sent by the reader
        # the start of a frame not complete yet: its pieces, their length, and the length
        # the frame needs (0: its header is not complete yet)
        self._rest: list[bytes] = []
        self._have = 0
        self._need = 0
        self._frag: list[bytes] | None = None
        self._frag_compressed = False
        # protocol progress
        self.hello = False
        self.snapshot_expected = 0
        self.snapshot = 0
        self.subscribe_reply: str | None = None
        self.subscribe_sent = False
        self.subscribe_at: float | None = None
        # counters
        self.frames = 0
        self.wire_bytes = 0
        self.json_bytes = 0
        self.messages = 0
        self.new = 0  # live positions with an id above their device's last
        self.dup = 0
        self.ooo = 0
        self.last: dict[int, int] = {}
        self.types: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.sample_ids = array("q")
        self.sample_t = array("d")
        self.first_live: float | None = None
        self.last_live: float | None = None
        # latest mode
        self.win: dict[int, tuple[int, int]] = {}  # device -> (window number, count)
        self.max_per_window = 0
        self.prev_t: dict[int, float] = {}
        self.min_gap: float | None = None
        # the end
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_by_server_at: float | None = None
        self.closing = False  # we sent the close frame
        self.at_go = (0, 0, 0)  # frames, wire bytes, JSON bytes when the producer started
        self.lost = False  # the connection ended without a close frame

    # -- the connection ----------------------------------------------------------------
    def target(self) -> str:
        parts = urlsplit(self.args.url)
        query = [parts.query] if parts.query else []
        if self.latest and self.args.mode_via == "query":
            query.append(f"mode=latest&max_rate_s={self.window:g}")
        if self.args.frames == "single":
            query.append("frames=single")
        return parts.path + ("?" + "&".join(query) if query else "")

    async def run(self) -> None:
        try:
            await self._run()
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            if self.closing:
                pass
            else:
                self.lost = True
                self.error = self.error or f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug or a protocol error: recorded, the others go on
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ready.set()
            self.finished.set()
            if self._stream is not None:
                with trio.CancelScope(shield=True):
                    await self._stream.aclose()

    async def _run(self) -> None:
        parts = urlsplit(self.args.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        stream = self._stream = await trio.open_tcp_stream(host, port)
        hs = H11Handshake(ConnectionType.CLIENT)
        extensions = [PerMessageDeflate()] if self.args.deflate else []
        request = Request(
            host=f"{host}:{port}",
            target=self.target(),
            extensions=extensions,
            extra_headers=[(b"authorization", b"Bearer " + self.args.token.encode())],
        )
        await stream.send_all(hs.send(request))
        head = bytearray()
        while b"\r\n\r\n" not in head:
            data = await stream.receive_some(READ_SIZE)
            if not data:
                raise ConnectionError("the server closed during the handshake")
            head += data
        end = head.index(b"\r\n\r\n") + 4
        hs.receive_data(bytes(head[:end]))
        for event in hs.events():
            if isinstance(event, RejectConnection):
                self.error = f"handshake refused: HTTP {event.status_code}"
                return
            if isinstance(event, AcceptConnection):
                self._accepted(event)
        if self._ws is None:
            raise ConnectionError("no answer to the handshake")
        data: bytes | None = bytes(head[end:])
        while True:
            if data:
                self.wire_bytes += len(data)
                if self._rest:
                    # a large frame comes in many reads: join its pieces once, complete
                    self._rest.append(data)
                    self._have += len(data)
                    if self._have < self._need:
                        data = None
                    else:
                        data = b"".join(self._rest)
                        self._rest, self._have = [], 0
            if data:
                closed = self._parse(data, time.time())
                if self._outbox:
                    out, self._outbox = b"".join(self._outbox), []
                    async with self._send_lock:
                        await stream.send_all(out)
                if closed:
                    return
                if self.hello and not self.subscribe_sent and self.latest:
                    await self._subscribe()
            data = await stream.receive_some(READ_SIZE)
            if not data:
                self.lost = not self.closing
                return

    def _accepted(self, event: AcceptConnection) -> None:
        self.deflate = None if not self.args.deflate else False
        for ext in event.extensions:
            if isinstance(ext, PerMessageDeflate):
                self.deflate = True
                self.no_context_takeover = ext.server_no_context_takeover
                self._inflate = zlib.decompressobj(-15)
        # wsproto's connection encodes what we send (masking, compression if negotiated);
        # it never sees what we receive
        self._ws = Connection(ConnectionType.CLIENT, list(event.extensions))

    async def _send(self, event: Any) -> None:
        assert self._ws is not None and self._stream is not None
        data = self._ws.send(event)
        async with self._send_lock:
            await self._stream.send_all(data)

    async def _subscribe(self) -> None:
        self.subscribe_sent = True
        if self.args.mode_via != "message":
            self.subscribe_reply = "(asked in the query)"
            return
        body = {"type": "subscribe", "mode": "latest", "max_rate_s": self.window}
        await self._send(TextMessage(data=orjson.dumps(body).decode()))
        self.subscribe_at = time.monotonic()

    def check_subscribe_reply(self, wait: float) -> None:
        """Ready anyway once the subscribe message has had ``wait`` s without an answer."""
        if self.is_ready or self.subscribe_at is None or self.subscribe_reply is not None:
            return
        if time.monotonic() - self.subscribe_at > wait and self.snapshot >= self.snapshot_expected:
            self.subscribe_reply = "no answer"
            self.is_ready = True
            self.ready.set()

    async def close(self) -> None:
        """Send a close frame (1000) and wait a little for the server's."""
        if self.finished.is_set() or self._ws is None:
            return
        self.closing = True
        try:
            await self._send(CloseConnection(code=1000, reason="bench done"))
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            return
        with trio.move_on_after(5):
            await self.finished.wait()

    # -- frames ------------------------------------------------------------------------
    def _parse(self, buf: bytes, now: float) -> bool:
        """Handle the complete frames in ``buf`` (keeping the rest for the next call); True
        once a close frame came."""
        n = len(buf)
        pos = 0
        frames = 0
        closed = False
        messages: list[Any] = []
        loads = orjson.loads
        self._need = 0
        while n - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1]
            if length < 126:
                start = pos + 2
            elif length & 0x80:
                raise ValueError("the server sent a masked frame")
            elif length == 126:
                if n - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            else:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > n:
                self._need = end - pos
                break
            payload = buf[start:end]
            pos = end
            frames += 1
            if b0 == 0x81:  # a whole uncompressed text frame: most of them
                self.json_bytes += length
                found = _live_positions(payload)
                if found is not None:
                    if messages:  # what came before goes first
                        self._handle(messages, now)
                        messages = []
                    self._positions(found, now)
                    continue
                value = loads(payload)
                if type(value) is list:
                    messages += value
                else:
                    messages.append(value)
                continue
            op = b0 & 0x0F
            if op in (OP_TEXT, OP_BINARY):
                if b0 & 0x80:
                    self._message(payload, bool(b0 & 0x40), messages, now)
                else:
                    self._frag, self._frag_compressed = [payload], bool(b0 & 0x40)
            elif op == OP_CONT:
                if self._frag is None:
                    raise ValueError("a continuation frame without a message")
                self._frag.append(payload)
                if b0 & 0x80:
                    whole = b"".join(self._frag)
                    self._frag = None
                    self._message(whole, self._frag_compressed, messages, now)
            elif op == OP_CLOSE:
                self._closed(payload, now)
                closed = True
                break
            elif op == OP_PING:
                assert self._ws is not None
                self._outbox.append(self._ws.send(Pong(payload=bytes(payload))))
        if pos < n:
            self._rest = [buf[pos:]]
            self._have = n - pos
        self.frames += frames
        if messages:
            self._handle(messages, now)
        return closed

    def _closed(self, payload: bytes | bytearray, now: float) -> None:
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        reason = bytes(payload[2:]).decode("utf-8", "replace")
        self.close_code, self.close_reason = code, reason
        if not self.closing:
            self.closed_by_server_at = now
            assert self._ws is not None
            echo = code if code not in (1005, 1006, 1015) else 1000
            self._outbox.append(self._ws.send(CloseConnection(code=echo)))  # the reply

    def _message(
        self, payload: bytes | bytearray, compressed: bool, into: list[Any], now: float
    ) -> None:
        """Decode one WebSocket message (a JSON object, or an array of them) into ``into``
        (a frame of live positions only is handled at once, after what ``into`` holds)."""
        if compressed:
            if self.no_context_takeover:
                self._inflate = zlib.decompressobj(-15)
            payload = self._inflate.decompress(bytes(payload) + DEFLATE_TAIL)
        self.json_bytes += len(payload)
        found = _live_positions(payload)
        if found is not None:
            if into:
                self._handle(into, now)
                into.clear()
            self._positions(found, now)
            return
        value = orjson.loads(payload)
        if type(value) is list:
            into += value
        else:
            into.append(value)

    # -- messages ----------------------------------------------------------------------
    def _positions(self, found: list[tuple[bytes, bytes]], now: float) -> None:
        """Live positions as (device id, position id) pairs: ``_handle``'s checks."""
        self.messages += len(found)
        last = self.last
        sample = self.sample
        latest = self.latest
        new = dup = ooo = 0
        for d, p in found:
            device = int(d)
            pid = int(p)
            prev = last.get(device, 0)
            if pid > prev:
                last[device] = pid
                new += 1
            elif pid == prev:
                dup += 1
            else:
                ooo += 1
            if pid % sample == 0:
                self.sample_ids.append(pid)
                self.sample_t.append(now)
            if latest:
                self._rate_check(device, now)
        self.new += new
        self.dup += dup
        self.ooo += ooo
        if self.new:
            if self.first_live is None:
                self.first_live = now
            self.last_live = now

    def _handle(self, messages: Any, now: float) -> None:
        self.messages += len(messages)
        last = self.last
        sample = self.sample
        latest = self.latest
        for m in messages:
            kind = m.get("type")
            if kind == "position":
                if m.get("snapshot"):
                    self.snapshot += 1
                    continue
                data = m["data"]
                pid = data["id"]
                device = m.get("device_id")
                if device is None:
                    device = data["device_id"]
                prev = last.get(device, 0)
                if pid > prev:
                    last[device] = pid
                    self.new += 1
                elif pid == prev:
                    self.dup += 1
                else:
                    self.ooo += 1
                if pid % sample == 0:
                    self.sample_ids.append(pid)
                    self.sample_t.append(now)
                if latest:
                    self._rate_check(device, now)
                continue
            self.types[kind] = self.types.get(kind, 0) + 1
            if kind == "hello":
                self.hello = True
                self.snapshot_expected += int(m.get("snapshot") or 0)
            elif kind == "subscribed":
                self.subscribe_reply = kind
                self.snapshot_expected += int(m.get("snapshot") or 0)
            elif kind == "error":
                code = str(m.get("code"))
                self.errors[code] = self.errors.get(code, 0) + 1
                if self.subscribe_sent and self.subscribe_reply is None:
                    self.subscribe_reply = f"error {code}: {m.get('message')}"
        if self.new:
            if self.first_live is None:
                self.first_live = now
            self.last_live = now
        if not self.is_ready and self.hello and self.snapshot >= self.snapshot_expected:
            waiting = self.latest and self.args.mode_via == "message"
            if not waiting or self.subscribe_reply is not None:
                self.is_ready = True
                self.ready.set()

    def _rate_check(self, device: int, now: float) -> None:
        window = int(now // self.window)
        seen = self.win.get(device)
        count = seen[1] + 1 if seen is not None and seen[0] == window else 1
        self.win[device] = (window, count)
        if count > self.max_per_window:
            self.max_per_window = count
        prev = self.prev_t.get(device)
        if prev is not None:
            gap = now - prev
            if self.min_gap is None or gap < self.min_gap:
                self.min_gap = gap
        self.prev_t[device] = now

    # -- the end -----------------------------------------------------------------------
    def over(self) -> bool:
        """The socket is closed (or never opened)."""
        return self.finished.is_set() or self.close_code is not None

    def caught_up(self, expected: int, newest: dict[int, int]) -> bool:
        """Everything there is to receive has come."""
        if self.latest:
            last = self.last
            return all(last.get(d, 0) >= i for d, i in newest.items())
        return self.new >= expected

    def summary(self, newest: dict[int, int]) -> dict[str, Any]:
        stale = sum(1 for d, i in newest.items() if self.last.get(d, 0) != i)
        return {
            "index": self.index,
            "ready": self.is_ready,
            "error": self.error,
            "deflate": self.deflate,
            "frames": self.frames,
            "wire_bytes": self.wire_bytes,
            "json_bytes": self.json_bytes,
            "frames_since_go": self.frames - self.at_go[0],
            "wire_bytes_since_go": self.wire_bytes - self.at_go[1],
            "json_bytes_since_go": self.json_bytes - self.at_go[2],
            "messages": self.messages,
            "snapshot": self.snapshot,
            "snapshot_expected": self.snapshot_expected,
            "subscribe_reply": self.subscribe_reply,
            "new": self.new,
            "dup": self.dup,
            "ooo": self.ooo,
            "received": self.new + self.dup + self.ooo,
            "stale_devices": stale,
            "types": self.types,
            "errors": self.errors,
            "first_live": self.first_live,
            "last_live": self.last_live,
            "max_per_window": self.max_per_window,
            "min_gap": self.min_gap,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "closed_by_server_at": self.closed_by_server_at,
            "lost": self.lost,
            "samples": len(self.sample_ids),
        }


class Commands:
    """Lines from the parent on standard input."""

    def __init__(self) -> None:
        self._stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        self._buf = bytearray()

    async def next(self) -> dict[str, Any]:
        while b"\n" not in self._buf:
            data = await self._stream.receive_some(1 << 16)
            if not data:
                raise SystemExit("bench/live_clients.py: the parent went away")
            self._buf += data
        line, _, rest = bytes(self._buf).partition(b"\n")
        self._buf = bytearray(rest)
        return orjson.loads(line)


async def run_clients(
    args: argparse.Namespace,
) -> tuple[list[LiveClient], dict[int, int], dict[str, Any]]:
    clients = [LiveClient(i, args) for i in range(args.clients)]
    commands = Commands()
    async with trio.open_nursery() as nursery:
        t_connect = time.time()
        for c in clients:
            nursery.start_soon(c.run)
            await trio.lowlevel.checkpoint()
        with trio.move_on_after(args.ready_timeout):
            # polled: a subscribe message may go unanswered (a server that ignores it)
            while not all(c.ready.is_set() for c in clients):
                for c in clients:
                    c.check_subscribe_reply(SUBSCRIBE_WAIT)
                await trio.sleep(0.1)
        emit(
            {
                "ready": sum(c.is_ready for c in clients),
                "ready_s": time.time() - t_connect,
                "errors": [c.error for c in clients if c.error][:5],
            }
        )
        cmd = await commands.next()
        assert cmd["cmd"] == "go", cmd
        cpu_go, t_go = cpu_seconds(), time.time()
        for c in clients:
            c.at_go = (c.frames, c.wire_bytes, c.json_bytes)
        cmd = await commands.next()
        assert cmd["cmd"] == "drain", cmd
        cpu_stop, t_stop = cpu_seconds(), time.time()
        expected = int(cmd["expected"])
        newest = {int(d): int(i) for d, i in cmd["newest"].items()}
        with trio.move_on_after(float(cmd["timeout"])):
            # polled: cheaper than checking on every message
            while not all(c.over() or c.caught_up(expected, newest) for c in clients):  # noqa: ASYNC110
                await trio.sleep(0.1)
        t_drained = time.time()
        cpu_drained = cpu_seconds()
        caught_up = sum(c.caught_up(expected, newest) for c in clients)
        over = sum(c.over() for c in clients)
        async with trio.open_nursery() as closers:
            for c in clients:
                closers.start_soon(c.close)
        nursery.cancel_scope.cancel()
    return (
        clients,
        newest,
        {
            "t_go": t_go,
            "t_stop": t_stop,
            "drain_s": t_drained - t_stop,
            "caught_up": caught_up,
            "over_before_drain_end": over,
            "cpu_producing_s": cpu_stop - cpu_go,
            "wall_producing_s": t_stop - t_go,
            "cpu_drain_s": cpu_drained - cpu_stop,
        },
    )


def write_results(
    out: Path, clients: list[LiveClient], newest: dict[int, int], stats: dict[str, Any]
) -> None:
    """``clients.json`` (the counters) and each client's samples (``c<i>.ids``, ``c<i>.t``:
    position ids and receive times, as raw int64 and float64 arrays)."""
    for c in clients:
        with open(out / f"c{c.index}.ids", "wb") as f:
            c.sample_ids.tofile(f)
        with open(out / f"c{c.index}.t", "wb") as f:
            c.sample_t.tofile(f)
    result = {
        "clients": [c.summary(newest) for c in clients],
        **stats,
        "cpu_total_s": cpu_seconds(),
        "peak_rss_mib": peak_rss_mib(),
    }
    (out / "clients.json").write_bytes(orjson.dumps(result))
    emit({"done": True})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="ws://host:port/api/live")
    ap.add_argument("--token", required=True)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--out", required=True, help="directory for the results")
    ap.add_argument("--sample", type=int, default=1, help="sample ids with id %% N == 0")
    ap.add_argument("--mode", choices=("all", "latest"), default="all")
    ap.add_argument("--max-rate-s", type=float, default=1.0)
    ap.add_argument("--mode-via", choices=("message", "query"), default="message")
    ap.add_argument("--frames", choices=("array", "single"), default="array")
    ap.add_argument("--deflate", action="store_true")
    ap.add_argument("--ready-timeout", type=float, default=120.0)
    return ap.parse_args(argv)


def main() -> None:
    args = parse_args()
    clients, newest, stats = trio.run(run_clients, args)
    write_results(Path(args.out), clients, newest, stats)


if __name__ == "__main__":
    main()
