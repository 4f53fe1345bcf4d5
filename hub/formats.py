"""The contract of a payload format: turns positions or alerts into a request body."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class Format:
    """Base class of payload encoders (for example Startrack JSON 1, JSON 2, alerts)."""

    kind: ClassVar[str]
    title: ClassVar[str] = ""
    content_type: ClassVar[str] = "application/json"
    #: How many items one body may carry (1 for formats that send a single object).
    max_batch: ClassVar[int] = 1

    def encode(self, items: Sequence[dict[str, Any]]) -> bytes:
        raise NotImplementedError
