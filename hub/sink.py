"""The contract of an output sink: a kind of delivery target (an HTTP webhook, …).

A sink instance is made per configured sink (a row of ``sinks``) with its validated
``Settings`` and a ``SinkContext``.  The delivery worker encodes items with the sink's
format, then calls ``deliver`` once per request body, at most ``concurrency`` at a time
for different devices (never two of the same device at once, so order is kept).

``deliver`` returns on success, raises ``DeliveryFailed(retry_after=…)`` when the
request should be retried later (timeouts, connection errors, 408, 429, 5xx) and
``DeliveryRejected(status=…, excerpt=…)`` when the receiver refused it for good: that
message goes to the dead letters and the ones after it go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from hub.clock import Clock, SystemClock
from hub.formats import Purpose


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request body to deliver.

    ``id`` is stable across retries and restarts (the receiver's de-duplication key);
    ``items`` is how many locations or alerts the body carries.
    """

    id: str
    body: bytes
    content_type: str = "application/json"
    items: int = 1


@dataclass(slots=True)
class SinkContext:
    """What a sink gets besides its settings."""

    sink_id: int
    client_id: int
    http: httpx.AsyncClient  # guarded against SSRF, no redirects, timeouts set
    secrets: dict[str, Any] = field(default_factory=dict)  # decrypted: headers, signing keys
    log: logging.Logger | logging.LoggerAdapter[Any] = field(
        default_factory=lambda: logging.getLogger("gpshub.sink")
    )
    clock: Clock = field(default_factory=SystemClock)


class Sink:
    """Base class of sinks.

    ``purpose`` limits what a sink delivers (``None``: locations or alerts, as its
    format says); ``formats`` limits which formats it accepts (empty: any of its
    purpose) and ``default_format`` is used when none is given.
    """

    kind: ClassVar[str]
    title: ClassVar[str] = ""
    Settings: ClassVar[type[BaseModel]]
    purpose: ClassVar[Purpose | None] = None
    formats: ClassVar[tuple[str, ...]] = ()
    default_format: ClassVar[str | None] = None
    concurrency: ClassVar[int] = 4

    def __init__(self, settings: BaseModel, context: SinkContext) -> None:
        self.settings = settings
        self.ctx = context

    async def deliver(self, delivery: Delivery) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the sink holds."""
