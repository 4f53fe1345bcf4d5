"""Plugin discovery through entry points, and the registry's checks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from hub.errors import PluginError
from hub.plugins import disabled_from_env, load_plugins
from hub.registry import Registry
from hub.source import Source
from hub.testing import ScriptedSource, plugin_module


def install_fake_dist(
    site: Path, dist: str, version: str, entry: str, module_src: str | None
) -> None:
    """A distribution as pip would leave it: a .dist-info folder and maybe a module."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[gpshub]\n{entry}\n")
    if module_src is not None:
        module = entry.split("=")[1].strip()
        (site / f"{module}.py").write_text(textwrap.dedent(module_src))


GOOD = """
from pydantic import BaseModel
from hub import Source, hookimpl

class Good(Source):
    kind = "good"
    title = "Good source"
    description = "no browse"
    class Credentials(BaseModel):
        token: str

@hookimpl
def register_sources(register):
    register(Good)
"""


def test_entry_point_plugin_is_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_dist(tmp_path, "gpshub-good", "1.2.3", "good = gpshub_good_mod", GOOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    pm, infos = load_plugins()
    registry = Registry.collect(pm, infos)
    assert "good" in registry.sources
    info = infos["good"]
    assert (info.distribution, info.version, info.kinds["sources"]) == (
        "gpshub-good",
        "1.2.3",
        ["good"],
    )
    # disabled by name: not even imported
    pm, infos = load_plugins(disabled={"good"})
    assert "good" not in infos


def test_import_failure_names_distribution_version_and_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_dist(
        tmp_path,
        "gpshub-broken",
        "0.9.1",
        "broken = gpshub_broken_mod",
        "import no_such_module_xyz\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as err:
        load_plugins()
    msg = str(err.value)
    assert "gpshub-broken 0.9.1" in msg and "GPSHUB_DISABLE_PLUGINS=broken" in msg
    assert "no_such_module_xyz" in msg
    load_plugins(disabled=disabled_from_env({"GPSHUB_DISABLE_PLUGINS": "broken, other"}))


def test_misspelt_hook_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = "from hub import hookimpl\n@hookimpl\ndef register_source(register):\n    pass\n"
    install_fake_dist(tmp_path, "gpshub-typo", "1.0", "typo = gpshub_typo_mod", src)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as err:
        load_plugins()
    assert "register_source" in str(err.value) and "register_sources" in str(err.value)


RETURNS = GOOD.replace("    register(Good)", "    return [Good]")


def test_a_hook_that_returns_instead_of_registering_is_a_start_up_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_dist(tmp_path, "gpshub-returns", "1.0", "returns = gpshub_returns_mod", RETURNS)
    monkeypatch.syspath_prepend(str(tmp_path))
    pm, infos = load_plugins()
    with pytest.raises(PluginError) as err:
        Registry.collect(pm, infos)
    text = str(err.value)
    assert text.startswith("plugin 'returns': its register_sources hook returned [<class ")
    assert "instead of calling register(...)" in text


def test_a_geocoder_hook_that_returns_is_an_error_too() -> None:
    from hub.hookspecs import hookimpl

    mod = plugin_module("places")
    mod.register_geocoder = hookimpl(lambda register: lambda lat, lon: "here")
    pm, infos = load_plugins(extra=[("places", mod)], use_entry_points=False)
    with pytest.raises(
        PluginError, match="'places': its register_geocoder hook returned <function"
    ):
        Registry.collect(pm, infos)


def test_two_plugins_registering_one_kind_is_an_error_naming_both() -> None:
    one = plugin_module("one", ScriptedSource)
    two = plugin_module("two", type("Other", (ScriptedSource,), {}))
    pm, infos = load_plugins(
        extra=[("plugin-one", one), ("plugin-two", two)], use_entry_points=False
    )
    with pytest.raises(PluginError) as err:
        Registry.collect(pm, infos)
    assert "plugin-one" in str(err.value) and "plugin-two" in str(err.value)
    assert "'scripted'" in str(err.value)


def test_registry_refuses_what_is_not_a_source() -> None:
    class NoCreds(Source):  # type: ignore[type-arg]
        kind = "nocreds"
        title = "x"

    class NotPydantic(ScriptedSource):
        kind = "notpydantic"
        Credentials = dict  # type: ignore[assignment]

    for bad in (object, NoCreds, NotPydantic):
        pm, infos = load_plugins(extra=[("bad", plugin_module("bad", bad))], use_entry_points=False)
        with pytest.raises(PluginError, match="bad"):
            Registry.collect(pm, infos)


def test_hooks_are_called_once_at_start_up() -> None:
    calls: list[str] = []

    class Counted(ScriptedSource):
        kind = "counted"

        class Credentials(BaseModel):
            pass

    mod = plugin_module("counted", Counted)
    original = mod.register_sources

    def counting(register):  # type: ignore[no-untyped-def]
        calls.append("x")
        return original(register)

    from hub.hookspecs import hookimpl

    mod.register_sources = hookimpl(counting)
    pm, infos = load_plugins(extra=[("counted", mod)], use_entry_points=False)
    registry = Registry.collect(pm, infos)
    registry.source("counted")
    registry.source("counted")
    assert calls == ["x"]
    with pytest.raises(KeyError, match="unknown source kind 'nope'"):
        registry.source("nope")


def test_sinks_and_formats_register_like_sources() -> None:
    from hub.formats import Format
    from hub.sink import Sink

    class Echo(Sink):
        kind = "echo"

        class Settings(BaseModel):
            url: str

    class Lines(Format):
        kind = "lines"

        def encode(self, items):  # type: ignore[no-untyped-def]
            return b"\n".join(str(i).encode() for i in items)

    class Broken(Format):
        kind = "broken"

    mod = plugin_module("out", sinks=[Echo], formats=[Lines])
    pm, infos = load_plugins(extra=[("out", mod)], use_entry_points=False)
    registry = Registry.collect(pm, infos)
    builtin = {"webhook"}, {"gpshub-locations", "gpshub-alert"}  # the core's own
    assert set(registry.sinks) == {"echo", *builtin[0]} and registry.sinks["echo"] is Echo
    assert set(registry.formats) == {"lines", *builtin[1]} and registry.formats["lines"] is Lines
    assert registry.owners[("sinks", "webhook")] == "gpshub"
    assert infos["out"].kinds == {"sources": [], "sinks": ["echo"], "formats": ["lines"]}
    pm, infos = load_plugins(
        extra=[("bad", plugin_module("bad", formats=[Broken]))], use_entry_points=False
    )
    with pytest.raises(PluginError, match="does not implement encode"):
        Registry.collect(pm, infos)
