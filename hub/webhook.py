"""The HTTP webhook sink: one POST per body, Standard Webhooks headers, no redirects.

Outcomes, as the delivery worker sees them:

* 2xx: delivered;
* a timeout, a connection error, 3xx (redirects are not followed: the URL must be
  updated), 408, 429 and 5xx: ``DeliveryFailed``, retried on the schedule, never before
  the answer's ``Retry-After``;
* any other 4xx: ``DeliveryRejected``, the message goes to the dead letters with the
  status and the start of the answer's body.

Custom headers and the signing secrets come from the sink's encrypted secrets
(``SinkContext.secrets``: ``{"headers": {...}, "signing": [{"secret": ..., "until": ...}]}``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from hub.errors import DeliveryFailed, DeliveryRejected
from hub.retry_after import response_retry_after
from hub.signing import signature_header
from hub.sink import Delivery, Sink

ANSWER_BYTES = 64 * 1024
"""How much of a refusal's body goes into ``DeliveryRejected.excerpt``: the worker masks
secrets in all of it before it keeps the start (a secret across the cut is masked too)."""
RETRY_STATUSES = frozenset({408, 429})
MAX_RETRY_AFTER_S = 24 * 3600.0


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(title="Receiver URL", description="http(s) URL the hub POSTs to")
    timeout_s: float = Field(
        15.0, ge=1.0, le=60.0, title="Timeout", description="seconds one request may take"
    )


class WebhookSink(Sink):
    kind = "webhook"
    title = "HTTP webhook"
    Settings: ClassVar[type[BaseModel]] = WebhookSettings

    async def deliver(self, delivery: Delivery) -> None:
        settings: Any = self.settings
        now = self.ctx.clock.now()
        headers = dict(self.ctx.secrets.get("headers") or {})
        timestamp = int(now.timestamp())
        headers.update(
            {
                "content-type": delivery.content_type,
                "webhook-id": delivery.id,
                "webhook-timestamp": str(timestamp),
            }
        )
        keys = active_secrets(self.ctx.secrets.get("signing") or [], now)
        if keys:
            headers["webhook-signature"] = signature_header(
                keys, delivery.id, timestamp, delivery.body
            )
        try:
            response = await self.ctx.http.post(
                settings.url,
                content=delivery.body,
                headers=headers,
                timeout=settings.timeout_s,
            )
        except httpx.TimeoutException:
            raise DeliveryFailed(f"no answer within {settings.timeout_s:g} s") from None
        except httpx.TransportError as exc:
            raise DeliveryFailed(transport_error(exc)) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        excerpt = response.content[:ANSWER_BYTES].decode("utf-8", "replace")
        if 300 <= status < 400:
            where = response.headers.get("location", "")
            raise DeliveryFailed(
                f"HTTP {status} redirect{' to ' + where if where else ''}: redirects are "
                "not followed, update the sink's URL",
                status=status,
            )
        if status in RETRY_STATUSES or status >= 500:
            raise DeliveryFailed(
                f"HTTP {status}", retry_after=retry_after(response, now), status=status
            )
        raise DeliveryRejected(f"HTTP {status}", status=status, excerpt=excerpt)


def active_secrets(signing: list[dict[str, Any]], now: datetime) -> list[str]:
    """The signing secrets still honoured at ``now`` (the newest first)."""
    out = []
    for entry in signing:
        until = entry.get("until")
        if until is None or datetime.fromisoformat(until) > now:
            out.append(str(entry["secret"]))
    return out


def retry_after(response: httpx.Response, now: datetime) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), capped at a day."""
    return response_retry_after(response, now, cap=MAX_RETRY_AFTER_S)


def transport_error(exc: httpx.TransportError) -> str:
    """What went wrong, without the URL (it may carry a token in its query string)."""
    from hub.netguard import blocked_reason

    reason = blocked_reason(exc)
    if reason:
        return reason
    text = str(exc).split(" for url ")[0] or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
