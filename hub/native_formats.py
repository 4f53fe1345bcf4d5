"""gpshub's own payload formats, for receivers that want everything the hub knows.

``gpshub-locations`` batches: ``{"type": "locations", "locations": [position, …]}``,
each position as the API shows it (``hub.positions.position_json``) with its ``device``;
``gpshub-alert`` sends one alert object per request, as ``GET /api/alerts`` shows it
(``hub.alerts.alert_json``: snake_case, a plain ``id``, its ``client_id``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from hub.alerts import alert_json
from hub.formats import Format
from hub.timestamps import utc_text

_LEFT_OUT = ("client",)


def _location(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if k not in _LEFT_OUT}
    for key in ("fix_time", "server_time"):
        out[key] = utc_text(out[key])
    out["client_id"] = item["client"]["id"]
    return out


class GpshubLocations(Format):
    kind = "gpshub-locations"
    title = "gpshub locations (JSON, batched)"
    purpose = "locations"
    max_batch = 500

    def encode(self, items: Sequence[dict[str, Any]]) -> bytes:
        return orjson.dumps({"type": "locations", "locations": [_location(i) for i in items]})


class GpshubAlert(Format):
    kind = "gpshub-alert"
    title = "gpshub alert (JSON, one per request)"
    purpose = "alerts"

    def encode(self, items: Sequence[dict[str, Any]]) -> bytes:
        (item,) = items
        return orjson.dumps(alert_json(item))
