"""The two sink kinds: the core's HTTP webhook, limited to Startrack's formats.

Delivery itself (one POST per body, Standard Webhooks signature, retries, no redirects)
is ``hub.webhook.WebhookSink``'s; these only name the kind and what it may carry.
"""

from __future__ import annotations

from hub.webhook import WebhookSink


class StartrackRelay(WebhookSink):
    """A client's location relay (Startrack's "rebote de datos"): every position, in
    JSON 1 or JSON 2."""

    kind = "startrack-relay"
    title = "Startrack location relay"
    purpose = "locations"
    formats = ("startrack-json1", "startrack-json2")
    default_format = "startrack-json1"


class StartrackAlerts(WebhookSink):
    """A client's alerts webhook: every alert its rules raise, as Startrack's Alert Data
    Object."""

    kind = "startrack-alerts"
    title = "Startrack alerts webhook"
    purpose = "alerts"
    formats = ("startrack-alert",)
    default_format = "startrack-alert"
