"""How many units one ``core/batch`` carries: the ``batch_size`` option, halved when Wialon
answers a batch with error 6 (too large).

Wialon documents no batch limit, but a server may refuse a batch that is too large with
error 6.  Then the batch is halved (down to one unit) and sent again in the same poll, and
the size that worked is kept — in memory and in the connection's encrypted state, so a
restart starts with it — until the ``batch_size`` option is changed.  One WARNING per poll
names the new size; a batch of one unit refused with error 6 is an ``UpdateFailed``.
"""

from __future__ import annotations

from gpshub_wialon.client import Logger
from hub.errors import UpdateFailed
from hub.source import StateStore

STATE_KEY = "wialon.batch"
"""Connection state key: ``{"size": working size, "configured": the batch_size it came
from}`` (a changed ``batch_size`` option makes the saved size void)."""


class BatchSize:
    """The working batch size of one connection (see the module docstring)."""

    def __init__(
        self, configured: int, state: StateStore, log: Logger, context: str = "Wialon"
    ) -> None:
        self.configured = configured
        self.state = state
        self.log = log
        self.context = context
        self.size = configured
        self._loaded = False
        self._reported = configured

    async def current(self) -> int:
        """The size to use now (read from the connection's state on first use)."""
        if not self._loaded:
            self._loaded = True
            saved = await self.state.get(STATE_KEY)
            if isinstance(saved, dict) and saved.get("configured") == self.configured:
                size = saved.get("size")
                if isinstance(size, int) and not isinstance(size, bool):
                    self.size = self._reported = max(1, min(size, self.configured))
        return self.size

    def shrink(self, refused: int) -> int:
        """The size after Wialon refused a batch of ``refused`` units with error 6: half of
        it.  A refused batch of one unit cannot shrink: ``UpdateFailed``."""
        if refused <= 1:
            raise UpdateFailed(
                "Wialon answers error 6 (batch too large) even to a core/batch for one unit; "
                "polling cannot go on until the server accepts batches again"
            )
        self.size = min(self.size, max(1, refused // 2))
        return self.size

    def notices(self) -> list[str]:
        """What the connection's status says while the size is reduced."""
        if self.size >= self.configured:
            return []
        return [
            f"batch size reduced to {self.size} (batch_size {self.configured}) after Wialon "
            "error 6 (batch too large)"
        ]

    async def settle(self) -> None:
        """After a poll's batches: report and save a size that changed during it."""
        if self.size == self._reported:
            return
        self._reported = self.size
        self.log.warning(
            "%s: batch size reduced to %d after Wialon error 6 (batch too large); kept "
            "until the batch_size option (%d) is changed",
            self.context,
            self.size,
            self.configured,
        )
        await self.state.set(STATE_KEY, {"size": self.size, "configured": self.configured})
