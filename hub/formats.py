"""The contract of a payload format: turns locations or alerts into request bodies.

A format is given *items*, plain dicts the delivery worker builds, and returns the
bytes of one request body.  It never does I/O and never sees a secret.

A **location item** (``purpose = "locations"``) has every stored position field — ``id``
(the position's id), ``device_id``, ``fix_time`` and ``server_time`` (aware UTC
datetimes), ``lat``, ``lon``, ``altitude_m``, ``speed_kmh``, ``course_deg``,
``satellites``, ``valid``, ``ignition``, ``accuracy_m``, ``sensors``, ``source_ip``,
``source_port``, ``event_code``, ``odometer_km``, ``virtual_odometer_km``, ``hours``,
``virtual_hours``, ``poi_ids``, ``poi_group_ids``, ``place``, ``alerts_count`` — plus
``device`` (``id``, ``name``, ``license_plate``, ``imei``, ``remote_id``, ``tags``,
``driver``, and ``imei_first``: no device of a lower id, in any client, has the same
IMEI, compared without surrounding spaces and leading zeros) and ``client`` (``id``,
``name``, ``timezone``: an IANA zone name).

An **alert item** (``purpose = "alerts"``) is the stored alert object (see
``hub.derivation.Derivation.alert_payload``): ``eventId``, ``messageId``, ``deviceId``,
``vehicle``, ``date`` (ISO 8601 text, UTC), ``place``, ``lat``, ``lon`` (numbers),
``driver``, ``odometer`` (virtual, km, or ``None``), ``odometerUnits``, ``ignOnTime``
(virtual hour meter), ``ruleOwner``, ``ruleOwnerId``, ``urId``, ``ruleName``,
``vehicle_tags``, ``poiContact`` and, by type, ``event``, ``poiIds``, ``poiNames``,
``poiGroupIds``, ``poiId``, ``poiName``, ``metersFromPoi``, ``distanceFromPoi``,
``startDate`` (ISO text) and the type's own values — plus ``client`` as above.  These
are the names of Startrack's alert webhook; the API's own alert object (snake_case, a
plain ``id``) is ``hub.alerts.alert_json`` of the item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

Purpose = Literal["locations", "alerts"]
PURPOSES: tuple[str, ...] = ("locations", "alerts")


class NoFormatOptions(BaseModel):
    """A format without options."""

    model_config = ConfigDict(extra="forbid")


class Format:
    """Base class of payload encoders (for example Startrack JSON 1, JSON 2, alerts).

    ``max_batch`` is how many items one body may carry: 1 for formats that send a single
    object per request, more for formats that batch.  ``Options`` (a pydantic model) are
    the per-sink choices of the format; the instance gets them validated.
    """

    kind: ClassVar[str]
    title: ClassVar[str] = ""
    purpose: ClassVar[Purpose] = "locations"
    content_type: ClassVar[str] = "application/json"
    max_batch: ClassVar[int] = 1
    Options: ClassVar[type[BaseModel]] = NoFormatOptions
    fields: ClassVar[tuple[str, ...] | None] = None
    """The position fields a locations format reads (``None``: all).  Items then carry
    just those, besides ``id``, ``device_id``, ``device`` and ``client``: naming them
    spares the hub loading the rest."""

    def __init__(self, options: BaseModel | None = None) -> None:
        self.options = options if options is not None else self.Options()

    @classmethod
    def parse_options(cls, data: dict[str, Any] | None) -> BaseModel:
        """Validate ``data`` as this format's options (``pydantic.ValidationError``)."""
        return cls.Options.model_validate(data or {})

    @classmethod
    def device_warnings(cls, devices: Sequence[Mapping[str, Any]]) -> list[str]:
        """What a location relay in this format should tell whoever sets it up about the
        client's ``devices`` (each as a location item's ``device``): a device the format
        cannot identify faithfully, say.  The sink API returns them and logs them."""
        return []

    def encode(self, items: Sequence[dict[str, Any]]) -> bytes:
        """One request body for ``items`` (at most ``max_batch`` of them, at least one)."""
        raise NotImplementedError
