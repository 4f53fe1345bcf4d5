"""A test request to a sink's receiver: one sample item, in the sink's format, sent as
the delivery worker sends (the sink's own ``deliver``: its headers, its signature, the
outbound guard), but outside the outbox: nothing is queued, retried or counted.

The sample is plainly a test: a location of "device" 0 named ``gpshub test`` (a
``test`` sensor set) or an alert of rule 0, dated now, and the request's ``webhook-id``
is ``test_<hub>_<random>`` (never the id of a real message).  ``gpshub sink test`` uses
it; what the receiver answered is in the ``SampleOutcome``, its secrets masked.
"""

from __future__ import annotations

import functools
import secrets as pysecrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import trio

from hub.blocking import run_blocking
from hub.delivery import _secret_values
from hub.errors import DeliveryFailed, DeliveryRejected
from hub.logging_setup import scrub
from hub.models import SinkRow
from hub.netguard import guarded_client
from hub.sink import Delivery, SinkContext
from hub.store import Invalid

if TYPE_CHECKING:
    from hub.core import Hub

SAMPLE_LAT, SAMPLE_LON = 51.477928, -0.001545  # the Royal Observatory, Greenwich
EXCERPT_CHARS = 300

SAMPLE_DEVICE: dict[str, Any] = {
    "id": 0,
    "name": "gpshub test",
    "license_plate": "TEST-000",
    "imei": None,
    "remote_id": "gpshub-test",
    "tags": ["test"],
    "driver": None,
    "imei_first": True,
}


def sample_location(client: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A location item (see ``hub.formats``) of the sample device, standing still."""
    return {
        "id": 0,
        "device_id": 0,
        "connection_id": None,
        "fix_time": now,
        "server_time": now,
        "lat": SAMPLE_LAT,
        "lon": SAMPLE_LON,
        "altitude_m": 46.0,
        "speed_kmh": 0.0,
        "course_deg": 0.0,
        "satellites": 9,
        "valid": True,
        "ignition": False,
        "accuracy_m": 5.0,
        "sensors": {"test": True},
        "source_ip": None,
        "source_port": None,
        "event_code": 1,
        "odometer_km": 0.0,
        "virtual_odometer_km": 0.0,
        "hours": 0.0,
        "virtual_hours": 0.0,
        "poi_ids": [],
        "poi_group_ids": [],
        "place": "gpshub test",
        "alerts_count": 0,
        "device": dict(SAMPLE_DEVICE),
        "client": client,
    }


def sample_alert(client: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An alert item (see ``hub.formats``): the sample device's ignition went on."""
    return {
        "eventId": 0,
        "messageId": "ignitionOn",
        "deviceId": 0,
        "vehicle": SAMPLE_DEVICE["name"],
        "date": now.isoformat(),
        "place": "gpshub test",
        "lat": SAMPLE_LAT,
        "lon": SAMPLE_LON,
        "driver": "",
        "odometer": 0.0,
        "odometerUnits": "km",
        "ignOnTime": 0.0,
        "ruleOwner": "gpshub",
        "ruleOwnerId": 0,
        "urId": 0,
        "ruleName": "gpshub test",
        "vehicle_tags": ["test"],
        "poiContact": "",
        "event": "the ignition was switched on",
        "client": client,
    }


@dataclass(frozen=True, slots=True)
class SampleOutcome:
    """What became of a test request.

    ``outcome`` is what a real delivery would have made of the answer: ``delivered``
    (2xx), ``failed`` (no answer, a redirect, 408, 429, 5xx: it would be retried) or
    ``refused`` (another 4xx: it would be a dead letter).  ``message`` says it in words,
    ``excerpt`` is the start of the receiver's answer when it refused; both have the
    sink's secrets masked.
    """

    outcome: str
    status: int | None
    message: str
    excerpt: str
    delivery_id: str
    content_type: str
    body: bytes
    seconds: float

    @property
    def ok(self) -> bool:
        return self.outcome == "delivered"


async def send_sample(hub: Hub, row: SinkRow) -> SampleOutcome:
    """POST one sample item of ``row``'s format to its receiver and tell the outcome.

    A sink whose kind or format is not installed, or whose saved settings its kind no
    longer accepts, is an ``Invalid`` naming the field."""
    sink_cls = hub.registry.sinks.get(row.kind)
    if sink_cls is None:
        raise Invalid("kind", f"the sink kind {row.kind!r} is not installed")
    format_cls = hub.registry.formats.get(row.format)
    if format_cls is None:
        raise Invalid("format", f"the format {row.format!r} is not installed")
    from hub.sink_config import checked_format_options, checked_settings

    checked_settings(sink_cls, hub.outbound_policy, row.settings)
    checked_format_options(format_cls, row.format_options)
    settings = sink_cls.Settings.model_validate(row.settings)
    fmt = format_cls(format_cls.parse_options(row.format_options))
    store = hub.store.sinks
    secrets = await run_blocking(store.secrets_of, row)
    client = await run_blocking(store.client_info, row.client_id)
    hub_id = await run_blocking(store.hub_id)
    now = hub.clock.now()
    item = sample_location(client, now) if row.purpose == "locations" else sample_alert(client, now)
    body = fmt.encode([item])
    delivery = Delivery(
        id=f"test_{hub_id}_{pysecrets.token_hex(6)}",
        body=body,
        content_type=fmt.content_type,
        items=1,
    )
    hidden = _secret_values(secrets)
    answers: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        answers.append(response)

    started = trio.current_time()
    async with guarded_client(hub.outbound_policy) as http:
        http.event_hooks = {"request": [], "response": [keep]}
        sink = sink_cls(
            settings,
            SinkContext(
                sink_id=row.id or 0,
                client_id=row.client_id,
                http=http,
                secrets=secrets,
                clock=hub.clock,
            ),
        )
        outcome = functools.partial(
            SampleOutcome,
            delivery_id=delivery.id,
            content_type=delivery.content_type,
            body=body,
        )
        try:
            await sink.deliver(delivery)
        except DeliveryRejected as exc:
            status = exc.status if exc.status is not None else _status(answers)
            return outcome(
                outcome="refused",
                status=status,
                message=_clean(str(exc), hidden),
                excerpt=_clean(exc.excerpt or "", hidden)[:EXCERPT_CHARS],
                seconds=trio.current_time() - started,
            )
        except DeliveryFailed as exc:
            return outcome(
                outcome="failed",
                status=exc.status if exc.status is not None else _status(answers),
                message=_clean(str(exc), hidden),
                excerpt="",
                seconds=trio.current_time() - started,
            )
        except Exception as exc:  # the worker retries these too
            return outcome(
                outcome="failed",
                status=_status(answers),
                message=_clean(f"{type(exc).__name__}: {exc}", hidden),
                excerpt="",
                seconds=trio.current_time() - started,
            )
        finally:
            await sink.aclose()
    status = _status(answers)
    return outcome(
        outcome="delivered",
        status=status,
        message=f"HTTP {status}" if status is not None else "delivered",
        excerpt="",
        seconds=trio.current_time() - started,
    )


def _status(answers: list[httpx.Response]) -> int | None:
    return answers[-1].status_code if answers else None


def _clean(text: str, hidden: list[str]) -> str:
    return " ".join((scrub(text, hidden) or "").split())
