"""Failed authentication attempts, throttled per client address and logged.

Each client address (see ``hub.web.client_address``) has a token bucket of
``auth_failures_per_minute`` failed attempts (10 by default): every failed attempt takes
one, and they come back at that rate (one every 6 s by default).  While the bucket is
empty the address's attempts are answered 429 with ``Retry-After`` (the seconds until
one comes back) without the token being checked, so guessing gets no answer.  What is
not throttled:

* successful requests: they take nothing from the bucket, however many there are;
* a request without any token (nothing is guessed; it is answered 401 as always);
* a token that already authenticated from the address (up to ``KNOWN_TOKENS`` of them
  per address are remembered, by hash): a dashboard keeps working while someone behind
  the same address (a NAT, an untrusted proxy) is being throttled.  If such a token
  fails (revoked, expired) it is forgotten and counted.

An attempt being checked holds one failure's worth of the budget until its outcome is
known, so concurrent attempts cannot overdraw it: beyond what is left, they wait for
those in flight (a success gives its share back at once).

Every failed attempt that is checked is logged (address, where, why, and for a token
of the hub's shape its display prefix ``gph_xxxxxx``, never more): at most the bucket's
size a minute per address.  The first refusal is logged, then a summary of the refusals
at most once a minute while they go on (the last one when the address comes back with
a full bucket).

At most ``auth_tracked_addresses`` addresses are remembered; the least recently seen
is forgotten first.  Time is ``trio.current_time()``.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import trio

from hub import tokens

__all__ = ["KNOWN_TOKENS", "Attempt", "AuthThrottle", "Throttled"]

log = logging.getLogger("hub.web.auth")

KNOWN_TOKENS = 8
"""Token hashes remembered per address as having authenticated from it."""
SUMMARY_EVERY_S = 60.0


@dataclass(slots=True)
class _Address:
    allowance: float  # failed attempts the address may still make now
    stamp: float  # when ``allowance`` was last brought up to date
    known: OrderedDict[str, None] = field(default_factory=OrderedDict)
    inflight: int = 0  # attempts being checked, each holding one unit of ``allowance``
    settled: trio.Event = field(default_factory=trio.Event)  # set when one settles
    throttled: bool = False  # refusing since the bucket ran dry, until it is full again
    refused: int = 0  # refusals since the last report
    reported_at: float = 0.0


def token_hint(token: str | None) -> str:
    """How a presented token may appear in a log: its display prefix if it has the
    hub's shape, else only what kind of thing it was."""
    if not token:
        return "no token"
    if tokens.well_formed(token):
        return f"token {tokens.display_prefix(token)}…"
    return "a malformed token"


class Throttled(Exception):
    """The address may not try a token now; ``wait`` seconds until it may."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"throttled for {wait:.1f} s")
        self.wait = wait


@dataclass(slots=True)
class Attempt:
    """An admitted attempt of ``key``, settled with ``succeeded``/``failed``, or given up
    with ``release`` (a request cancelled meanwhile); settling twice does nothing."""

    key: str
    holding: _Address | None = None  # the entry holding a unit for this attempt


class AuthThrottle:
    def __init__(self, per_minute: int = 10, max_addresses: int = 10_000) -> None:
        if per_minute < 0:
            raise ValueError("setting 'auth_failures_per_minute': must be 0 (off) or more")
        if max_addresses < 1:
            raise ValueError("setting 'auth_tracked_addresses': must be 1 or more")
        self.per_minute = per_minute
        self.max_addresses = max_addresses
        self._addresses: OrderedDict[str, _Address] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def __len__(self) -> int:
        return len(self._addresses)

    # -- the bucket --------------------------------------------------------------------
    def _entry(self, key: str, now: float) -> _Address:
        entry = self._addresses.get(key)
        if entry is None:
            entry = _Address(float(self.per_minute), now)
            self._addresses[key] = entry
            while len(self._addresses) > self.max_addresses:
                self._addresses.popitem(last=False)
        else:
            self._addresses.move_to_end(key)
            self._refill(key, entry, now)
        return entry

    def _refill(self, key: str, entry: _Address, now: float) -> None:
        rate = self.per_minute / 60.0
        entry.allowance = min(float(self.per_minute), entry.allowance + (now - entry.stamp) * rate)
        entry.stamp = now
        if entry.throttled and entry.allowance >= self.per_minute:  # calm again
            self._summary(key, entry, now)
            entry.throttled = False

    async def admit(self, key: str, digest: str | None = None) -> Attempt:
        """Let one attempt of ``key`` through, holding one failure's worth of its budget
        until it is settled (so concurrent attempts cannot overdraw it: beyond what is
        left, they wait for those in flight); a token that authenticated from ``key``
        before (by ``digest``) needs none.  Raises ``Throttled`` (the refusal counted and
        reported) when nothing is left and nothing is in flight."""
        if not self.enabled:
            return Attempt(key)
        while True:
            now = trio.current_time()
            entry = self._entry(key, now)
            if digest is not None and digest in entry.known:
                return Attempt(key)
            if entry.allowance - entry.inflight >= 1.0:
                entry.inflight += 1
                return Attempt(key, entry)
            if not entry.inflight:
                break
            await entry.settled.wait()  # one in flight may succeed and give its unit back
        if not entry.throttled:
            entry.throttled, entry.refused, entry.reported_at = True, 0, now
            log.warning(
                "authentication from %s throttled: %d failed attempts within a minute; "
                "its attempts are answered 429 until it may try again",
                key,
                self.per_minute,
            )
        else:
            entry.refused += 1
            if now - entry.reported_at >= SUMMARY_EVERY_S:
                self._summary(key, entry, now)
        raise Throttled((1.0 - entry.allowance) * 60.0 / self.per_minute)

    def release(self, attempt: Attempt) -> None:
        """Give back what ``attempt`` holds, counting nothing."""
        entry, attempt.holding = attempt.holding, None
        if entry is not None:
            entry.inflight -= 1
            entry.settled.set()
            entry.settled = trio.Event()

    def failed(
        self,
        attempt: Attempt,
        where: str,
        reason: str,
        token: str | None,
        *,
        hint: str | None = None,
        logged: bool = True,
    ) -> None:
        """A checked attempt failed: logged (unless not ``logged``: another throttle logs
        it), and one failure taken from the budget.  ``hint`` says what was presented
        when it was no token (``a password``)."""
        if logged:
            log.warning(
                "failed authentication from %s (%s): %s, %s",
                attempt.key,
                where,
                reason,
                hint or token_hint(token),
            )
        if not self.enabled:
            return
        now = trio.current_time()
        entry = attempt.holding or self._entry(attempt.key, now)
        if attempt.holding is not None:
            self._refill(attempt.key, entry, now)
        entry.allowance = max(0.0, entry.allowance - 1.0)
        if token:
            entry.known.pop(tokens.token_hash(token), None)
        self.release(attempt)

    def succeeded(self, attempt: Attempt, digest: str) -> None:
        """A token authenticated: nothing is taken, and it is remembered for the address."""
        self.release(attempt)
        if not self.enabled:
            return
        entry = self._entry(attempt.key, trio.current_time())
        entry.known[digest] = None
        entry.known.move_to_end(digest)
        while len(entry.known) > KNOWN_TOKENS:
            entry.known.popitem(last=False)

    def _summary(self, key: str, entry: _Address, now: float) -> None:
        if entry.refused:
            log.warning(
                "authentication from %s: %d more attempts refused (429) in the last %.0f s",
                key,
                entry.refused,
                now - entry.reported_at,
            )
        entry.refused, entry.reported_at = 0, now


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds, never 0."""
    return str(max(1, math.ceil(seconds)))
