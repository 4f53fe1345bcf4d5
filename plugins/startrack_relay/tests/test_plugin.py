"""The plugin as the hub loads it: entry point, hooks, registry."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

import gpshub_startrack_relay
from gpshub_startrack_relay import (
    StartrackAlert,
    StartrackAlerts,
    StartrackJson1,
    StartrackJson2,
    StartrackRelay,
)
from hub.plugins import ENTRY_POINT_GROUP, load_plugins
from hub.registry import Registry
from hub.webhook import WebhookSettings, WebhookSink


def test_entry_point_names_the_package() -> None:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "startrack_relay"]
    if not found:
        pytest.skip("gpshub-startrack-relay is not installed in this environment (uv sync)")
    (ep,) = found
    assert ep.value == "gpshub_startrack_relay"
    assert ep.load() is gpshub_startrack_relay


def test_hooks_register_three_formats_and_two_sinks() -> None:
    pm, infos = load_plugins(
        extra=[("startrack_relay", gpshub_startrack_relay)], use_entry_points=False
    )
    registry = Registry.collect(pm, infos)
    formats = {
        "startrack-json1": StartrackJson1,
        "startrack-json2": StartrackJson2,
        "startrack-alert": StartrackAlert,
    }
    sinks = {"startrack-relay": StartrackRelay, "startrack-alerts": StartrackAlerts}
    # the core adds its own kinds (its webhook sink, its native formats) next to ours
    assert {k: registry.formats[k] for k in formats} == formats
    assert {k: registry.sinks[k] for k in sinks} == sinks
    for group, kinds in (("formats", formats), ("sinks", sinks)):
        for kind in kinds:
            assert registry.owners[(group, kind)] == "startrack_relay"
    assert registry.sources == {}
    assert infos["startrack_relay"].kinds == {
        "sources": [],
        "sinks": ["startrack-relay", "startrack-alerts"],
        "formats": ["startrack-json1", "startrack-json2", "startrack-alert"],
    }


def test_sinks_are_the_core_webhook_limited_to_startrack_formats() -> None:
    assert issubclass(StartrackRelay, WebhookSink) and issubclass(StartrackAlerts, WebhookSink)
    assert StartrackRelay.Settings is WebhookSettings is StartrackAlerts.Settings
    assert (StartrackRelay.kind, StartrackRelay.title, StartrackRelay.purpose) == (
        "startrack-relay",
        "Startrack location relay",
        "locations",
    )
    assert StartrackRelay.formats == ("startrack-json1", "startrack-json2")
    assert StartrackRelay.default_format == "startrack-json1"
    assert (StartrackAlerts.kind, StartrackAlerts.title, StartrackAlerts.purpose) == (
        "startrack-alerts",
        "Startrack alerts webhook",
        "alerts",
    )
    assert StartrackAlerts.formats == ("startrack-alert",)
    assert StartrackAlerts.default_format == "startrack-alert"
    # nothing of their own beyond what names them
    for sink in (StartrackRelay, StartrackAlerts):
        own = {k for k in vars(sink) if not k.startswith("__")}
        assert own == {"kind", "title", "purpose", "formats", "default_format"}


def test_each_sinks_formats_have_its_purpose() -> None:
    formats = {f.kind: f for f in (StartrackJson1, StartrackJson2, StartrackAlert)}
    for sink in (StartrackRelay, StartrackAlerts):
        assert sink.default_format in sink.formats
        assert {formats[k].purpose for k in sink.formats} == {sink.purpose}


def test_public_names() -> None:
    for name in gpshub_startrack_relay.__all__:
        assert hasattr(gpshub_startrack_relay, name), name
