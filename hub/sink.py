"""The contract of an output sink (a webhook delivery target kind)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class Delivery:
    """One payload to deliver. ``id`` is stable across retries so receivers can de-duplicate."""

    id: str
    body: bytes
    content_type: str = "application/json"


class Sink:
    """Base class of sinks.

    ``deliver`` raises ``DeliveryFailed(retry_after)`` to be retried later or
    ``DeliveryRejected`` to send the batch to the dead letters.
    """

    kind: ClassVar[str]
    title: ClassVar[str] = ""
    Settings: ClassVar[type[BaseModel]]
    max_batch: ClassVar[int] = 1

    def __init__(self, settings: BaseModel, **context: Any) -> None:
        self.settings = settings
        self.context = context

    async def deliver(self, batch: Sequence[Delivery]) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the sink holds."""
