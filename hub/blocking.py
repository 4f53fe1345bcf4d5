"""Running blocking calls (the database, gpsoauth) from trio code.

Normally they go to a worker thread.  Tests that run under trio's ``MockClock`` with
autojump switch to running them inline: a worker thread is invisible to the mock
clock, which would otherwise jump ahead while the thread works and fire timeouts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import trio

T = TypeVar("T")
_inline = False


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    if _inline:
        await trio.lowlevel.checkpoint()
        return fn(*args)
    return await trio.to_thread.run_sync(fn, *args)


@contextmanager
def blocking_calls_inline() -> Iterator[None]:
    """Run blocking calls on the trio thread while the block is active (tests only)."""
    global _inline
    previous, _inline = _inline, True
    try:
        yield
    finally:
        _inline = previous
