"""The plugin as the hub loads it, and what its README promises."""

from __future__ import annotations

import math
import re
from importlib.metadata import entry_points
from pathlib import Path

import gpshub_traccar
from gpshub_traccar import TraccarSource
from gpshub_traccar.source import MAX_BATCH
from hub.plugins import ENTRY_POINT_GROUP, load_plugins
from hub.registry import Registry
from hub.source import describe_fields

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_entry_point_names_the_package() -> None:
    (ep,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "traccar"]
    assert ep.value == "gpshub_traccar"
    assert ep.load() is gpshub_traccar


def test_hook_registers_the_source() -> None:
    pm, infos = load_plugins(extra=[("traccar", gpshub_traccar)], use_entry_points=False)
    registry = Registry.collect(pm, infos)
    assert registry.source("traccar") is TraccarSource
    registered: list[type] = []
    gpshub_traccar.register_sources(registered.append)
    assert registered == [TraccarSource]


def test_public_names() -> None:
    for name in gpshub_traccar.__all__:
        assert hasattr(gpshub_traccar, name), name


def test_the_running_hub_does_not_import_the_fake() -> None:
    imports = re.compile(r"^\s*(from|import)\s+(gpshub_traccar\.testing|hub\.testing)\b", re.M)
    for path in Path(gpshub_traccar.__file__).parent.glob("*.py"):
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


def test_readme_lists_every_credential_field_as_the_seed_says() -> None:
    rows = _table_rows("### Credentials")
    fields = describe_fields(TraccarSource.Credentials)
    assert list(rows) == [f.name for f in fields]
    for f in fields:
        required, description = rows[f.name][0], rows[f.name][-1]
        assert required == ("yes" if f.required else "no")
        assert f.description in description


def test_readme_lists_every_option_with_its_default() -> None:
    rows = _table_rows("### Options")
    fields = describe_fields(TraccarSource.Options)
    assert list(rows) == [f.name for f in fields]
    for f in fields:
        default = rows[f.name][0].strip("`")
        expected = (
            "none"
            if f.default is None
            else f"{f.default:g}"
            if isinstance(f.default, float)
            else str(f.default)
        )
        assert default == expected, f.name


def test_readme_states_the_request_formula_and_the_batch_limit() -> None:
    assert "ceil(devices / batch_size)" in README
    assert f"at most {MAX_BATCH}" in README
    match = re.search(
        r"(\d[\d,]*) devices with the default `batch_size` cost (\d+) requests", README
    )
    assert match is not None
    devices, requests = int(match.group(1).replace(",", "")), int(match.group(2))
    assert requests == math.ceil(devices / 200)


def test_readme_warns_about_disabled_reports() -> None:
    assert "disableReports" in README and "missed" in README
