"""``gpshub new-plugin NAME``: the skeleton of a networked source plugin, ready to change.

:func:`write_plugin` writes ``gpshub-NAME/`` from the template files next to this module
(package data, ``*.tmpl``): a plugin for a made-up REST platform with a fake of it, its
deep contract test and an end-to-end test, which pass ``pytest`` as written::

    gpshub-NAME/
      pyproject.toml               entry point (group gpshub), testing extra, pytest config
      README.md                    what to change
      src/gpshub_NAME/__init__.py  the register_sources hook (hub.plugin_package)
      src/gpshub_NAME/source.py    the source
      src/gpshub_NAME/testing.py   its fake upstream (hub.fake_upstream.FakeUpstream)
      tests/test_contract.py       hub.contract.SourceContract on the fake
      tests/test_plugin.py         hub.testing.PluginPackageChecks (the entry point's
                                   check skipped while the plugin is not installed)
      tests/test_hub.py            hub.hub_driver.HubDriver end to end, refused credentials

In a template, ``{{name}}`` is NAME (the source's kind), ``{{Name}}`` its CamelCase (class
names) and ``{{title}}`` its words capitalised (what users read).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
MAX_NAME = 19
"""The longest NAME: with it, ``class NameSource(Source[NameCredentials, NameOptions]):``
still fits ``ruff format``'s 100 columns (tests/test_new_plugin.py checks the longest)."""
LAYOUT = {
    "pyproject.toml": "pyproject.toml",
    "README.md": "README.md",
    "package_init.py": "src/gpshub_{{name}}/__init__.py",
    "source.py": "src/gpshub_{{name}}/source.py",
    "testing.py": "src/gpshub_{{name}}/testing.py",
    "test_contract.py": "tests/test_contract.py",
    "test_plugin.py": "tests/test_plugin.py",
    "test_hub.py": "tests/test_hub.py",
}
"""Template (``<key>.tmpl`` here) → where it goes in the plugin's folder."""


class TemplateError(ValueError):
    """A NAME or a target the template cannot be written for."""


def check_name(name: str) -> None:
    """``TemplateError`` unless ``name`` is a lowercase identifier of at most ``MAX_NAME``
    characters (it becomes the source's kind and the package ``gpshub_NAME``)."""
    if not NAME_PATTERN.fullmatch(name) or name.endswith("_") or "__" in name:
        raise TemplateError(
            f"{name!r} is not a plugin name: use lowercase letters, digits and single"
            " underscores, starting with a letter (e.g. acme or acme_fleet)"
        )
    if len(name) > MAX_NAME:
        raise TemplateError(f"{name!r} is too long: at most {MAX_NAME} characters")


def render(text: str, name: str) -> str:
    """``text`` with the placeholders filled in for ``name``."""
    words = name.split("_")
    values = {
        "{{name}}": name,
        "{{Name}}": "".join(w.capitalize() for w in words),
        "{{title}}": " ".join(w.capitalize() for w in words),
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def plugin_files(name: str) -> dict[str, str]:
    """The plugin's files for ``name``: path in its folder → text."""
    check_name(name)
    here = files(__name__)
    return {
        render(target, name): render(here.joinpath(f"{key}.tmpl").read_text("utf-8"), name)
        for key, target in LAYOUT.items()
    }


def write_plugin(name: str, parent: Path) -> Path:
    """Write ``gpshub-NAME/`` in ``parent`` (made if missing); its path.  A bad name, an
    existing ``gpshub-NAME`` or a folder that cannot be written is a ``TemplateError``,
    and then nothing is written (the files are put together in a temporary folder there,
    which is then renamed)."""
    contents = plugin_files(name)
    root = parent / f"gpshub-{name}"
    if root.exists():
        raise TemplateError(f"{root} already exists: choose another --dir or remove it")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".gpshub-{name}-", dir=parent))
    except OSError as exc:
        raise TemplateError(f"cannot write in {parent}: {exc.strerror or exc}") from None
    try:
        for relative, text in contents.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
        staging.chmod(0o777 & ~_umask())
        staging.rename(root)
    except OSError as exc:
        raise TemplateError(f"cannot write {root}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def _umask() -> int:
    """The process's umask (``mkdtemp`` makes its folder 0700; the plugin's is usual)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
