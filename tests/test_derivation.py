"""The derive and rules stages inside the store's batch transaction (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from hub.derive import EventCode
from hub.fix import PositionFix
from hub.models import OutboxEntry, Role
from hub.positions import IngestItem
from hub.store import Invalid, Store

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
DEPOT = {"type": "Point", "coordinates": [-90.5, 14.6]}


@pytest.fixture
def w(store: Store) -> dict[str, Any]:
    a = store.create_client("A")
    b = store.create_client("B")
    owner = store.create_user("Jose Perez", Role.MANAGER, a.id)
    dev = store.create_device(
        a.id, name="truck 1", license_plate="P-123", driver="Ana", tags=["north"]
    )
    group = store.geofences.create_group(a.id, "depots")
    depot = store.geofences.create(
        a.id, "Depot", DEPOT, {"radius_m": 200}, contact="Ana 555-1234", group_ids=[group.id]
    )
    other = store.geofences.create(b.id, "Theirs", DEPOT, {"radius_m": 200})
    return {
        "a": a.id,
        "b": b.id,
        "owner": owner,
        "dev": dev.id,
        "depot": depot.id,
        "group": group.id,
        "other": other.id,
    }


def put(store: Store, dev: int, s: float, lat: float, **kw: Any) -> list[dict[str, Any]]:
    fix = PositionFix(T0 + timedelta(seconds=s), lat, -90.5, **kw)
    return store.positions.write_batch(
        [IngestItem(dev, None, fix)], server_time=T0 + timedelta(seconds=s)
    ).alerts


def test_entering_a_poi_derives_fields_and_raises_a_stored_alert(
    store: Store, w: dict[str, Any]
) -> None:
    store.sinks.create(
        w["a"], name="alerts", kind="webhook", format="gpshub-alert", purpose="alerts",
        settings={"url": "https://alerts.example/hook"},
    )  # fmt: skip
    rule = store.rules.create(
        w["a"], w["owner"], "depot arrivals", "enteredPoi", {"poi_ids": [w["depot"]]},
        webhook=True,
    )  # fmt: skip
    quiet = store.rules.create(
        w["a"], w["owner"], "depot, no webhook", "enteredPoi", {"poi_ids": [w["depot"]]}
    )
    assert put(store, w["dev"], 0, 14.61, speed_kmh=40.0, ignition=True) == []  # outside, first fix
    alert, unsent = put(store, w["dev"], 60, 14.6, speed_kmh=10.0, ignition=True)
    assert alert["messageId"] == "enteredPoi" and alert["urId"] == rule.id
    assert unsent["urId"] == quiet.id  # stored and live, but not for the webhook
    assert (alert["ruleOwner"], alert["ruleOwnerId"]) == ("Jose Perez", w["owner"].id)
    assert alert["vehicle"] == "truck 1 (P-123)" and alert["driver"] == "Ana"
    assert alert["poiIds"] == [w["depot"]] and alert["poiNames"] == ["Depot"]
    assert alert["poiGroupIds"] == [w["group"]] and alert["poiContact"] == "Ana 555-1234"
    assert alert["place"] == "Depot" and alert["vehicle_tags"] == ["north"]
    assert alert["odometer"] == pytest.approx(1.112, abs=0.01) and alert["odometerUnits"] == "km"
    rows, _ = store.positions.history([w["dev"]])
    assert [r["poi_ids"] for r in rows] == [[], [w["depot"]]]
    assert rows[1]["poi_group_ids"] == [w["group"]] and rows[1]["place"] == "Depot"
    assert rows[1]["event_code"] == EventCode.ENTERED_GEOFENCE and rows[1]["alerts_count"] == 2
    assert rows[1]["hours"] == pytest.approx(60 / 3600, abs=1e-4)
    stored, _ = store.rules.alerts(client_id=w["a"], device_id=w["dev"])
    assert (
        stored.id == alert["eventId"]
        and stored.rule_id == rule.id
        and stored.position_id == rows[1]["id"]
    )
    with store.engine.connect() as conn:
        outbox = conn.execute(sa.select(OutboxEntry.kind, OutboxEntry.ref_id)).all()
    assert outbox == [("alert", alert["eventId"])]  # only the rule that alerts by webhook
    assert store.get_device(w["dev"]).status == "online"


def test_a_rule_alerts_by_webhook_only_once_the_client_has_one(
    store: Store, w: dict[str, Any]
) -> None:
    with pytest.raises(Invalid) as refused:
        store.rules.create(w["a"], w["owner"], "r", "ignitionOn", webhook=True)
    assert refused.value.field == "webhook"
    rule = store.rules.create(w["a"], w["owner"], "r", "ignitionOn")
    with pytest.raises(Invalid):
        store.rules.update(rule.id, webhook=True)
    assert store.rules.list(w["a"]) == [store.rules.get(rule.id)]  # nothing half-stored
    store.sinks.create(
        w["a"], name="alerts", kind="webhook", format="gpshub-alert", purpose="alerts",
        settings={"url": "https://alerts.example/hook"},
    )  # fmt: skip
    assert store.rules.update(rule.id, webhook=True).webhook


def test_geofence_changes_apply_to_the_next_batch(store: Store, w: dict[str, Any]) -> None:
    put(store, w["dev"], 0, 14.7)
    rows = store.positions.history([w["dev"]])[0]
    assert rows[-1]["poi_ids"] == []
    far = store.geofences.create(
        w["a"], "North", {"type": "Point", "coordinates": [-90.5, 14.7]}, {"radius_m": 50}
    )
    put(store, w["dev"], 10, 14.7)
    assert store.positions.history([w["dev"]])[0][-1]["poi_ids"] == [far.id]
    store.geofences.delete(far.id)
    put(store, w["dev"], 20, 14.7)
    assert store.positions.history([w["dev"]])[0][-1]["poi_ids"] == []


def test_out_of_order_fixes_do_not_drive_transitions(store: Store, w: dict[str, Any]) -> None:
    store.rules.create(w["a"], w["owner"], "ign", "ignitionOn")
    put(store, w["dev"], 0, 14.61, ignition=False)
    put(store, w["dev"], 100, 14.61, ignition=False)
    assert put(store, w["dev"], 50, 14.61, ignition=True) == []  # older than the newest
    (alert,) = put(store, w["dev"], 200, 14.61, ignition=True)
    assert alert["messageId"] == "ignitionOn"


def test_virtual_counters_are_offsets_over_the_system_ones(store: Store, w: dict[str, Any]) -> None:
    put(store, w["dev"], 0, 14.61, speed_kmh=50.0)
    put(store, w["dev"], 80, 14.61 + 1 / 111.195, speed_kmh=50.0)
    store.set_virtual_counters(w["dev"], odometer_km=1000.0, hours=5.0)
    put(store, w["dev"], 160, 14.61 + 2 / 111.195, speed_kmh=50.0)
    last = store.positions.history([w["dev"]])[0][-1]
    assert last["odometer_km"] == pytest.approx(2.0, rel=1e-3)
    assert last["virtual_odometer_km"] == pytest.approx(1001.0, rel=1e-3)
    assert last["virtual_hours"] == pytest.approx(5.0)
    with pytest.raises(Invalid):
        store.set_virtual_counters(w["dev"], odometer_km=-1)


def test_silent_devices_go_offline_once(store: Store, w: dict[str, Any]) -> None:
    store.rules.create(w["a"], w["owner"], "lost", "offline")
    put(store, w["dev"], 0, 14.61)
    went, alerts = store.positions.mark_offline(T0 + timedelta(minutes=5), 600)
    assert went == [] and alerts == []
    went, alerts = store.positions.mark_offline(T0 + timedelta(minutes=11), 600)
    assert went == [(w["dev"], w["a"])] and [a["messageId"] for a in alerts] == ["offline"]
    assert store.get_device(w["dev"]).status == "offline"
    assert store.positions.mark_offline(T0 + timedelta(minutes=20), 600) == ([], [])
    put(store, w["dev"], 1300, 14.61)
    assert store.get_device(w["dev"]).status == "online"
    assert store.positions.history([w["dev"]])[0][-1]["event_code"] == EventCode.BACK_ONLINE


def test_bad_geofences_and_rules_are_refused_whole(store: Store, w: dict[str, Any]) -> None:
    with pytest.raises(Invalid) as err:
        store.geofences.create(w["a"], "x", DEPOT, {"radius_m": 0})
    assert err.value.field == "properties.radius_m"
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    with pytest.raises(Invalid) as err:
        store.geofences.create_many(
            w["a"],
            [
                {"name": "ok", "geometry": DEPOT, "properties": {"radius_m": 5}},
                {"name": "bow tie", "geometry": square},
            ],
            prefix="features.",
        )
    assert err.value.field.startswith("features.1.geometry")
    assert len(store.geofences.list(w["a"])) == 1  # nothing of the refused import
    with pytest.raises(Invalid) as err:
        store.rules.create(w["a"], w["owner"], "x", "enteredPoi", {"poi_ids": [w["other"]]})
    assert err.value.field == "params.poi_ids"
    with pytest.raises(Invalid) as err:
        store.rules.create(w["a"], w["owner"], "x", "teleported")
    assert err.value.field == "type"
    with pytest.raises(Invalid) as err:
        store.rules.create(
            w["a"], w["owner"], "x", "ignitionOn", schedule={"windows": [{"days": [9]}]}
        )
    assert err.value.field.startswith("schedule.windows.0.days")
    assert store.rules.list(w["a"]) == []
    with pytest.raises(Invalid) as err:
        store.update_client(w["a"], timezone="Mars/Olympus")
    assert err.value.field == "timezone"


def test_a_plugin_geocoder_names_places_outside_geofences(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import types

    from hub.errors import PluginError
    from hub.hookspecs import hookimpl
    from hub.plugins import load_plugins
    from hub.registry import Registry
    from hub.testing import make_hub

    def plugin(name: str) -> Any:
        mod = types.ModuleType(name)

        @hookimpl
        def register_geocoder(register):  # type: ignore[no-untyped-def]
            register(lambda lat, lon: f"{name} at {lat:.1f},{lon:.1f}")

        mod.register_geocoder = register_geocoder  # type: ignore[attr-defined]
        return mod

    pm, infos = load_plugins(extra=[("geo-a", plugin("geo-a"))], use_entry_points=False)
    registry = Registry.collect(pm, infos)
    hub = make_hub(tmp_path)
    hub.store.positions.derivation.geocoder = registry.geocoder
    client = hub.store.create_client("A")
    dev = hub.store.create_device(client.id, name="d")
    put(hub.store, dev.id, 0, 14.61)
    assert hub.store.positions.history([dev.id])[0][0]["place"] == "geo-a at 14.6,-90.5"
    pm, infos = load_plugins(
        extra=[("geo-a", plugin("geo-a")), ("geo-b", plugin("geo-b"))], use_entry_points=False
    )
    with pytest.raises(PluginError, match=r"geo-a.*geo-b"):
        Registry.collect(pm, infos)


def test_a_device_may_take_the_platforms_odometer_and_hours(
    store: Store, w: dict[str, Any]
) -> None:
    """With ``odometer_source``/``hours_source`` = platform, the system counters follow the
    platform's readings where a fix carries them and count on from them in between;
    the virtual ones stay the system ones plus the offsets.  The hub's own is the default."""
    readings = {"platform_odometer_km": 152_334.6, "platform_engine_hours": 1234.5}
    other = store.create_device(w["a"], name="truck 2").id
    store.update_device(w["dev"], None, odometer_source="platform", hours_source="platform")
    for dev in (w["dev"], other):
        put(store, dev, 0, 14.60, speed_kmh=40.0, ignition=True, sensors=dict(readings))
        put(store, dev, 60, 14.61, speed_kmh=40.0, ignition=True)  # 1.11 km, no reading
        put(store, dev, 120, 14.62, speed_kmh=40.0, ignition=True,
            sensors={"platform_odometer_km": 152_340.0, "platform_engine_hours": "x"})  # fmt: skip
    store.set_virtual_counters(w["dev"], None, odometer_km=152_400.0)
    put(store, w["dev"], 180, 14.63, speed_kmh=40.0, ignition=True)
    rows, _ = store.positions.history([w["dev"]])
    assert [round(r["odometer_km"], 2) for r in rows] == [
        152_334.6,
        152_335.71,
        152_340.0,
        152_341.11,
    ]
    assert [round(r["hours"], 4) for r in rows] == [1234.5, 1234.5167, 1234.5333, 1234.55]
    assert rows[3]["virtual_odometer_km"] == pytest.approx(152_400.0 + 1.112, abs=0.01)
    assert rows[0]["sensors"] == readings  # the readings stay as the platform sent them
    rows, _ = store.positions.history([other])
    assert [round(r["odometer_km"], 2) for r in rows] == [0.0, 1.11, 2.22]
    with pytest.raises(Invalid, match="odometer_source"):
        store.update_device(other, None, odometer_source="dashboard")
