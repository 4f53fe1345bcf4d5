"""Wialon units (``core/search_items`` items) to ``RemoteDevice``.

With flags 8393985 an item has ``nm`` and ``id`` (base), ``uid`` (the IMEI or unique id,
flag 256), ``pos``/``lmsg`` (last message, flag 1024), ``sens`` (sensors, flag 4096: read
by :mod:`gpshub_wialon.sensors`) and ``pflds`` (profile fields, flag 8388608) where the
licence plate is the entry named ``registration_plate``.
"""

from __future__ import annotations

from typing import Any

from gpshub_wialon import protocol as p
from gpshub_wialon.messages import message_time, to_datetime
from hub.source import RemoteDevice

PROFILE_EXTRA = ("vehicle_type", "brand", "model", "year", "vin")
"""Profile fields shown as ``extra`` when browsing."""


def search_params(flags: int, start: int = 0) -> dict[str, Any]:
    """``core/search_items`` for every unit, sorted by name, from index ``start`` on."""
    return {
        "spec": {
            "itemsType": "avl_unit",
            "propName": "sys_name",
            "propValueMask": "*",
            "sortType": "sys_name",
            "propType": "",
            "or_logic": 0,
        },
        "force": 1,
        "flags": flags,
        "from": start,
        "to": 0,
    }


def profile_fields(item: dict[str, Any]) -> dict[str, str]:
    """``pflds`` as ``{name: value}`` (it is an object keyed by id; a list is accepted)."""
    raw = item.get("pflds")
    entries = raw.values() if isinstance(raw, dict) else raw if isinstance(raw, list) else ()
    out: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("n"), str):
            value = entry.get("v")
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                text = str(value).strip()
                if text:
                    out[entry["n"]] = text
    return out


def parse_unit(item: Any) -> RemoteDevice | None:
    """The device an item describes, or ``None`` when it has no usable id."""
    if not isinstance(item, dict):
        return None
    unit_id = item.get("id")
    if not isinstance(unit_id, int) or isinstance(unit_id, bool) or unit_id <= 0:
        return None
    name = item.get("nm")
    uid = item.get("uid")
    fields = profile_fields(item)
    extra: dict[str, Any] = {k: fields[k] for k in PROFILE_EXTRA if k in fields}
    hw = item.get("hw")
    if isinstance(hw, int) and not isinstance(hw, bool):
        extra["hardware_type"] = hw
    last = _last_seen(item)
    if last is not None:
        extra["last_message_at"] = to_datetime(last).isoformat()
    return RemoteDevice(
        upstream_id=str(unit_id),
        name=name.strip() if isinstance(name, str) and name.strip() else str(unit_id),
        imei=uid.strip() if isinstance(uid, str) and uid.strip() else None,
        license_plate=fields.get(p.PLATE_FIELD),
        extra=extra,
    )


def _last_seen(item: dict[str, Any]) -> int | None:
    times = [message_time(item.get("lmsg")), message_time(item.get("pos"))]
    known = [t for t in times if t is not None]
    return max(known) if known else None
