"""The plugin as the hub loads it, and what its README promises."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

import gpshub_tracking3d
from gpshub_tracking3d import Tracking3DSource
from hub.plugins import ENTRY_POINT_GROUP, load_plugins
from hub.registry import Registry
from hub.source import describe_fields

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_entry_point_names_the_package() -> None:
    (ep,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "tracking3d"]
    assert ep.value == "gpshub_tracking3d"
    assert ep.load() is gpshub_tracking3d


def test_hook_registers_the_source() -> None:
    pm, infos = load_plugins(extra=[("tracking3d", gpshub_tracking3d)], use_entry_points=False)
    registry = Registry.collect(pm, infos)
    assert registry.source("tracking3d") is Tracking3DSource
    registered: list[type] = []
    gpshub_tracking3d.register_sources(registered.append)
    assert registered == [Tracking3DSource]


def test_public_names() -> None:
    for name in gpshub_tracking3d.__all__:
        assert hasattr(gpshub_tracking3d, name), name


def test_the_running_hub_does_not_import_the_fake() -> None:
    imports = re.compile(r"^\s*(from|import)\s+(gpshub_tracking3d\.testing|hub\.testing)\b", re.M)
    for path in Path(gpshub_tracking3d.__file__).parent.glob("*.py"):
        if path.name != "testing.py":
            assert not imports.search(path.read_text(encoding="utf-8")), path


def test_the_cadence_is_adaptive() -> None:
    cadence = Tracking3DSource.cadence
    assert (cadence.active, cadence.quiet, cadence.active_window) == (30.0, 120.0, 600.0)


def _table_rows(heading: str) -> dict[str, list[str]]:
    section = README.split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_readme_lists_every_credential_field_as_the_seed_says() -> None:
    rows = _table_rows("### Credentials")
    fields = describe_fields(Tracking3DSource.Credentials)
    assert list(rows) == [f.name for f in fields]
    for f in fields:
        required, description = rows[f.name][0], rows[f.name][-1]
        assert required == ("yes" if f.required else "no")
        assert f.description in description


def test_readme_lists_every_option_with_its_default() -> None:
    rows = _table_rows("### Options")
    fields = describe_fields(Tracking3DSource.Options)
    assert list(rows) == [f.name for f in fields]
    for f in fields:
        default = rows[f.name][0].strip("`")
        expected = (
            "none"
            if f.default is None
            else f"{f.default:g}"
            if isinstance(f.default, float)
            else ", ".join(str(v) for v in f.default)
            if isinstance(f.default, list)
            else str(f.default)
        )
        assert default == expected, f.name


def test_readme_states_the_request_formula_and_recent_activity() -> None:
    assert "1 position page + the reading pages since the last poll" in README
    assert "3 km/h" in README and "10 minutes" in README
