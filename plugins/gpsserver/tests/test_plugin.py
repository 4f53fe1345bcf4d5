"""The plugin as the hub loads it, and what its README promises."""

from __future__ import annotations

import math
import re
from importlib.metadata import entry_points
from pathlib import Path

import gpshub_gpsserver
from gpshub_gpsserver import HOSTED_URL, GpsServerSource
from hub.plugins import ENTRY_POINT_GROUP, load_plugins
from hub.registry import Registry
from hub.source import describe_fields

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_entry_point_names_the_package() -> None:
    (ep,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "gpsserver"]
    assert ep.value == "gpshub_gpsserver"
    assert ep.load() is gpshub_gpsserver


def test_hook_registers_the_source() -> None:
    pm, infos = load_plugins(extra=[("gpsserver", gpshub_gpsserver)], use_entry_points=False)
    registry = Registry.collect(pm, infos)
    assert registry.source("gpsserver") is GpsServerSource
    registered: list[type] = []
    gpshub_gpsserver.register_sources(registered.append)
    assert registered == [GpsServerSource]


def test_public_names() -> None:
    for name in gpshub_gpsserver.__all__:
        assert hasattr(gpshub_gpsserver, name), name


def test_the_running_hub_does_not_import_the_fake() -> None:
    imports = re.compile(r"^\s*(from|import)\s+(gpshub_gpsserver\.testing|hub\.testing)\b", re.M)
    for path in Path(gpshub_gpsserver.__file__).parent.glob("*.py"):
        if path.name != "testing.py":
            assert not imports.search(path.read_text(encoding="utf-8")), path


def _table_rows(heading: str) -> dict[str, list[str]]:
    section = README.split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_readme_lists_every_credential_field_with_its_description() -> None:
    rows = _table_rows("### Credentials")
    fields = describe_fields(GpsServerSource.Credentials)
    assert list(rows) == [f.name for f in fields]
    for f in fields:
        assert f.description in rows[f.name][-1], f.name
    assert HOSTED_URL in README


def test_readme_lists_every_option_with_its_default() -> None:
    rows = _table_rows("### Options")
    fields = describe_fields(GpsServerSource.Options)
    assert list(rows) == [f.name for f in fields]
    for f in fields:
        default = rows[f.name][0].strip("`")
        expected = (
            "none"
            if f.default is None
            else '""'
            if f.default == ""
            else f"{f.default:g}"
            if isinstance(f.default, float)
            else str(f.default)
        )
        assert default == expected, f.name


def test_readme_states_the_request_formula_and_the_budget_arithmetic() -> None:
    assert "1 + devices with new data" in README
    assert "1 + units" in README
    assert "inferred" in README.lower()
    budget = GpsServerSource.Options().max_requests_per_poll  # type: ignore[attr-defined]
    cadence = GpsServerSource.cadence.active
    histories = budget - 1  # the locations call takes one
    polls = math.ceil(1000 / histories)
    assert f"at most {budget} requests per {cadence:.0f}-second poll" in README
    assert f"{budget / cadence:g} requests/s, {budget * 86_400 / cadence:,.0f} a day" in README
    assert f"up to {histories} histories are fetched per poll" in README
    assert f"⌈1000 / {histories}⌉ = {polls} polls" in README
    assert f"{polls} × {cadence:.0f} s = {polls * cadence / 60:g} minutes late" in README
