"""Checks of a plugin as a package: what every source plugin's ``test_plugin.py`` would
otherwise write again.  Subclass ``PluginPackageChecks`` in a test module, naming the package and its source
classes::

    import gpshub_acme
    from hub.testing import PluginPackageChecks

    class TestAcmePackage(PluginPackageChecks, package=gpshub_acme, sources=[AcmeSource]):
        pass

The README checks read the plugin's README (``readme``; by default ``README.md`` in the
folder above the test module's, a plugin's root when its tests are in ``tests/``): its
``Credentials`` and ``Options`` tables (a ``##`` or ``###``
heading each): one row a field, the field's name in backticks in the first cell.
Nothing here is imported by the running hub.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from importlib.metadata import entry_points, packages_distributions
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from hub.plugins import ENTRY_POINT_GROUP, load_plugins
from hub.registry import Registry
from hub.source import Source, describe_fields

KIT_MODULES = ("hub.testing", "hub.contract", "hub.fake_upstream", "hub.hub_driver")
"""The kit's test modules, which a plugin's running code must not import."""


def readme_table(readme: str, heading: str) -> dict[str, list[str]]:
    """The rows of the table under the ``## heading`` (or ``### heading``) of a README:
    ``{name: [the other cells]}`` for each row whose first cell is a name in backticks,
    in the README's order."""
    match = re.search(rf"^#{{2,3}} {re.escape(heading)}\s*$", readme, re.M)
    assert match is not None, f"the README has no '## {heading}' section"
    section = re.split(r"^#{2,3} ", readme[match.end() :], maxsplit=1, flags=re.M)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def readme_default(value: Any) -> str:
    """How a README's Options table writes a default: ``none``, ``""``, ``300`` for
    300.0, a list as ``a, b``, anything else as ``str()``."""
    if value is None:
        return "none"
    if value == "":
        return '""'
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


class PluginPackageChecks:
    """What every source plugin's package must do for the hub to load it, and what its
    README must say of its sources' settings (see the module docstring).

    Give ``package`` (the plugin's module), ``sources`` (the source classes its hook
    registers, in order) and optionally ``readme`` (its path) as class keywords, or set
    ``package``, ``source_classes`` and ``readme`` as class attributes.  The README
    knobs, for a README whose tables are laid out otherwise: ``readme_says_required``
    (the Credentials table's second cell is yes/no), ``readme_quotes_descriptions``
    (its last cell contains the field's description), ``readme_in_field_order`` (rows
    in the models' field order).
    """

    package: ClassVar[ModuleType]
    source_classes: ClassVar[Sequence[type[Source[Any, Any]]]]
    readme: ClassVar[Path | None] = None
    entry_point: ClassVar[str] = ""
    """The entry point's name in the ``gpshub`` group (default: the package's name
    without ``gpshub_``)."""
    readme_says_required: ClassVar[bool] = True
    readme_quotes_descriptions: ClassVar[bool] = True
    readme_in_field_order: ClassVar[bool] = True

    def __init_subclass__(
        cls,
        *,
        package: ModuleType | None = None,
        sources: Sequence[type[Source[Any, Any]]] | None = None,
        readme: Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if package is not None:
            cls.package = package
        if sources is not None:
            cls.source_classes = tuple(sources)
        if readme is not None:
            cls.readme = readme

    @classmethod
    def readme_path(cls) -> Path:
        """``readme``, or ``README.md`` in the folder above the test module's."""
        if cls.readme is not None:
            return cls.readme
        return Path(inspect.getfile(cls)).resolve().parents[1] / "README.md"

    @classmethod
    def readme_text(cls) -> str:
        """The README's text."""
        return cls.readme_path().read_text(encoding="utf-8")

    def test_entry_point_names_the_package(self) -> None:
        """The installed distribution's entry point (group ``gpshub``) loads the package.
        Skipped while no distribution provides the package (run from a source tree, not
        installed): there is no entry point to check then."""
        import pytest

        name = self._entry_point_name()
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        top = self.package.__name__.partition(".")[0]
        if not found and top not in packages_distributions():
            pytest.skip(f"{top} is not installed (pip install -e .): no entry point to check")
        assert len(found) == 1, f"entry points named {name!r} in {ENTRY_POINT_GROUP!r}: {found}"
        assert found[0].value == self.package.__name__
        assert found[0].load() is self.package

    def test_hook_registers_the_source(self) -> None:
        """The package's ``register_sources`` hook registers its source classes, and the
        hub's registry finds each by its ``kind``."""
        extra = [(self._entry_point_name(), self.package)]
        pm, infos = load_plugins(extra=extra, use_entry_points=False)
        registry = Registry.collect(pm, infos)
        for cls in self.source_classes:
            assert registry.source(cls.kind) is cls, cls.kind
        registered: list[type] = []
        self.package.register_sources(registered.append)
        assert registered == list(self.source_classes)

    def test_public_names(self) -> None:
        """Every name in the package's ``__all__`` exists."""
        for name in self.package.__all__:
            assert hasattr(self.package, name), name

    def test_the_running_hub_does_not_import_the_fake(self) -> None:
        """No module of the package but ``testing.py`` (its fake) imports the fake or the
        kit's test modules: the running hub needs neither (nor their dependencies)."""
        kit = "|".join(re.escape(m) for m in (f"{self.package.__name__}.testing", *KIT_MODULES))
        imports = re.compile(rf"^\s*(from|import)\s+({kit})\b", re.M)
        root = Path(str(self.package.__file__)).parent
        for path in root.rglob("*.py"):
            if path != root / "testing.py":
                assert not imports.search(path.read_text(encoding="utf-8")), path

    def test_readme_lists_every_credential_field(self) -> None:
        """The README's Credentials table has a row for each credential field of each
        source: whether it is required, and its description as the form shows it."""
        rows = readme_table(self.readme_text(), "Credentials")
        fields = [f for cls in self.source_classes for f in describe_fields(cls.Credentials)]
        self._assert_names(rows, [f.name for f in fields])
        for f in fields:
            if self.readme_says_required:
                assert rows[f.name][0].lower() == ("yes" if f.required else "no"), f.name
            if self.readme_quotes_descriptions:
                assert f.description in rows[f.name][-1], f.name

    def test_readme_lists_every_option_with_its_default(self) -> None:
        """The README's Options table has a row for each option of each source, its
        default in the second cell (in backticks or not; a note in parentheses after it
        is allowed)."""
        rows = readme_table(self.readme_text(), "Options")
        fields = [f for cls in self.source_classes for f in describe_fields(cls.Options)]
        self._assert_names(rows, [f.name for f in fields])
        for f in fields:
            written = re.sub(r"\s*\(.*\)$", "", rows[f.name][0]).strip("`")
            assert written == readme_default(f.default), f.name

    def _entry_point_name(self) -> str:
        return self.entry_point or self.package.__name__.removeprefix("gpshub_")

    def _assert_names(self, rows: dict[str, list[str]], names: list[str]) -> None:
        if self.readme_in_field_order:
            assert list(rows) == names
        else:
            assert sorted(rows) == sorted(names)
