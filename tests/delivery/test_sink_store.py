"""The sink store on SQLite and PostgreSQL: the outbox reads delivery relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from hub.fix import PositionFix
from hub.models import outbox_t
from hub.positions import IngestItem
from hub.secrets import SecretBox
from hub.sink_store import OUTBOX_IDS_PER_S, PendingRow, Progress
from hub.store import Store

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def relay(store: Store, client: int) -> Any:
    return store.sinks.create(
        client, name="relay", kind="startrack-relay", format="startrack-json2",
        purpose="locations", settings={"url": "https://relay.example/in"},
    )  # fmt: skip


def put(store: Store, device: int, n: int, start: int = 0) -> None:
    store.positions.write_batch(
        [
            IngestItem(
                device, None,
                PositionFix(T0 + timedelta(seconds=10 * i), 14.6, -90.5, speed_kmh=12.5,
                            ignition=i % 2 == 0, sensors={"fuel": 0.5}),
            )
            for i in range(start, start + n)
        ]
    )  # fmt: skip


def test_outbox_ids_are_never_given_out_again_after_pruning(store: Store) -> None:
    client = store.create_client("c").id
    device = store.create_device(client, name="d", imei="123", tags=["north"]).id
    sink = relay(store, client)
    put(store, device, 3)
    rows = store.sinks.fetch(sink, sink.cursor, 100)
    store.sinks.save_progress(sink.id, Progress(cursor=rows[-1].id))
    assert store.sinks.prune_outbox() == 3
    put(store, device, 2, start=3)
    sink = store.sinks.get(sink.id)
    fresh = store.sinks.fetch(sink, sink.cursor, 100)
    assert len(fresh) == 2 and all(r.id > rows[-1].id for r in fresh)


def test_prune_keeps_what_a_sink_still_owes(store: Store) -> None:
    client = store.create_client("c").id
    device = store.create_device(client, name="d").id
    sink = relay(store, client)
    put(store, device, 3)
    rows = store.sinks.fetch(sink, sink.cursor, 100)
    store.sinks.save_progress(
        sink.id, Progress(cursor=rows[-1].id, pending=[PendingRow(rows[0].id, device, 1)])
    )
    store.sinks.prune_outbox()
    with store.engine.connect() as conn:
        left = [i for (i,) in conn.execute(sa.select(outbox_t.c.id))]
    assert left == [rows[0].id]


def test_location_items_are_the_same_on_every_path(store: Store) -> None:
    client = store.create_client("c").id
    device = store.create_device(client, name="d", imei="123", tags=["north"], driver="Ana").id
    sink = relay(store, client)
    put(store, device, 4)
    rows = store.sinks.fetch(sink, sink.cursor, 100)
    info = store.sinks.client_info(client)
    items = store.sinks.location_items(rows, info)
    core = store.sinks._core_location_items({r.ref_id: r.id for r in rows}, info)
    assert items == core and len(items) == 4
    first = items[rows[0].id]
    assert first["fix_time"] == T0 and first["valid"] is True and first["ignition"] is True
    assert first["sensors"] == {"fuel": 0.5} and first["device"]["tags"] == ["north"]
    assert first["client"]["timezone"] == "UTC" and first["device"]["imei"] == "123"


def test_a_format_naming_its_fields_gets_only_those(store: Store) -> None:
    client = store.create_client("c").id
    device = store.create_device(client, name="d", imei="123").id
    sink = relay(store, client)
    put(store, device, 2)
    rows = store.sinks.fetch(sink, sink.cursor, 100)
    info = store.sinks.client_info(client)
    items = store.sinks.location_items(rows, info, ("lat", "fix_time", "ignition"))
    full = store.sinks.location_items(rows, info)
    for key, item in items.items():
        assert set(item) <= {"id", "device_id", "lat", "fix_time", "ignition", "device", "client"}
        assert {k: full[key][k] for k in item} == item


def test_devices_carry_whether_a_lower_id_has_their_imei(store: Store) -> None:
    """``imei_first`` across clients, IMEIs compared without spaces and leading zeros."""
    a, b = store.create_client("a").id, store.create_client("b").id
    imeis = {
        "first": (a, "358741050302485"),
        "other client": (b, "358741050302485"),
        "spaces": (a, " 358741050302485 "),
        "leading zero": (a, "0358741050302485"),
        "none": (a, None),
        "empty": (a, ""),
        "text": (a, "ABC-1"),
        "text again": (a, "ABC-1"),
        "zero": (a, "0"),
        "zeros": (a, "000"),
        "unique": (a, "12"),
    }
    ids = {
        name: store.create_device(client, name=name, imei=imei).id
        for name, (client, imei) in imeis.items()
    }
    sink = relay(store, a)
    for name in ids:
        put(store, ids[name], 1)
    first = {d["name"]: d["imei_first"] for d in store.sinks.client_devices(a)}
    assert first == {
        "first": True,
        "spaces": False,
        "leading zero": False,
        "none": True,
        "empty": True,
        "text": True,
        "text again": False,
        "zero": True,
        "zeros": False,
        "unique": True,
    }
    assert [d["imei_first"] for d in store.sinks.client_devices(b)] == [False]
    rows = store.sinks.fetch(sink, sink.cursor, 100)
    info = store.sinks.client_info(a)
    items = store.sinks.location_items(rows, info)
    core = store.sinks._core_location_items({r.ref_id: r.id for r in rows}, info)
    assert items == core
    assert {i["device"]["name"]: i["device"]["imei_first"] for i in items.values()} == first


def test_the_hub_id_is_made_once_with_the_database(db_url: str, secret_box: SecretBox) -> None:
    first = Store.open(db_url, secret_box)
    hub_id = first.sinks.hub_id()
    first.close()
    again = Store.open(db_url, secret_box)  # a restart, or a restored backup
    assert again.sinks.hub_id() == hub_id and len(hub_id) == 12
    again.close()


def test_outbox_ids_go_on_past_the_clock_at_every_start(store: Store) -> None:
    client = store.create_client("c").id
    device = store.create_device(client, name="d").id
    sink = relay(store, client)
    put(store, device, 2)
    before = store.sinks.fetch(sink, sink.cursor, 100)
    assert before[-1].id < 1000
    start = T0.timestamp() * OUTBOX_IDS_PER_S
    assert store.sinks.skip_outbox_ids(T0) == start + 1
    put(store, device, 2, start=2)
    after = store.sinks.fetch(sink, before[-1].id, 100)
    assert [r.id for r in after] == [start + 1, start + 2]
    store.sinks.save_progress(sink.id, Progress(cursor=after[-1].id))
    assert store.sinks.prune_outbox() == 4
    assert store.sinks.skip_outbox_ids(T0 - timedelta(days=1)) == start + 3  # never back
    put(store, device, 1, start=4)
    assert [r.id for r in store.sinks.fetch(sink, after[-1].id, 100)] == [start + 3]
