"""Text the hub stores: single-line and multi-line rules, also when the store is used
directly (the command line), on both databases (PostgreSQL cannot store NUL)."""

from __future__ import annotations

import pytest

from hub.store import Invalid, Store
from hub.text import text_problem


@pytest.mark.parametrize(
    ("value", "single", "multi"),
    [
        ("Truck 7 — Zoë", True, True),
        ("tab\tand\r\nbreaks", False, True),
        ("nul\x00", False, False),
        ("escape\x1b[0m", False, False),
        ("del\x7f", False, False),
        ("c1\x85", False, False),
        ("lone \ud83d surrogate", False, False),
        ("pair \U0001f69a", True, True),
    ],
)
def test_rules(value: str, single: bool, multi: bool) -> None:
    assert (text_problem(value) is None) is single
    assert (text_problem(value, multiline=True) is None) is multi


def test_the_store_refuses_control_characters_in_names(store: Store) -> None:
    with pytest.raises(Invalid) as info:
        store.create_client("Acme\x00")
    assert info.value.field == "name"
    client = store.create_client("Acme").id or 0
    for bad in ("Van\x00", "Van\n2"):
        with pytest.raises(Invalid):
            store.create_device(client, name=bad)
    with pytest.raises(Invalid):
        store.create_connection(client, "fake", "label\x07", {}, enabled=False)
    with pytest.raises(Invalid) as info:
        store.geofences.create_many(
            client,
            [{"name": "D", "geometry": {"type": "Point", "coordinates": [0, 0]},
              "properties": {"radius_m": 5}, "contact": "a\x00"}],
        )  # fmt: skip
    assert info.value.field == "contact"
    assert store.list_devices() == []
