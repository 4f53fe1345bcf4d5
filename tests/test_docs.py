"""The plugin author's pages in ``docs/`` cannot rot silently.

* The README's "Writing a plugin" section links both pages, and every link of the pages
  to a file or a heading leads somewhere.
* Every ``hub`` name the pages use exists: the imports and ``hub.…`` references of their
  Python blocks (which must parse), and the ``hub.…`` names in their inline code.
* "Testing your plugin" names every fixture of ``hub.pytest_plugin``, every check of
  ``hub.contract.SourceContract`` and every fault switch of ``FakeUpstream``.
* The worked example (the blocks whose first line is ``# gpshub-acme/PATH``) is a plugin
  whose tests pass: it is written out and its ``pytest`` run.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
PAGES = [ROOT / "docs" / "writing-a-provider-plugin.md", ROOT / "docs" / "testing-your-plugin.md"]
BLOCK = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
HUB_NAME = re.compile(r"\bhub(?:\.[A-Za-z_]\w*)+")
LINK = re.compile(r"\]\(([^)\s]+)\)")
EXAMPLE_FILE = re.compile(r"\A(?:# |<!-- )(gpshub-acme/\S+)(?: -->)?\n")
"""The first line of a worked example's file: ``# PATH`` (or ``<!-- PATH -->`` in Markdown)."""


def blocks(page: Path, lang: str | None = None) -> list[str]:
    """The fenced code blocks of ``page`` (of language ``lang``), unindented."""
    found = []
    for m in BLOCK.finditer(page.read_text()):
        if lang is None or m[2] == lang:
            indent = len(m[1])
            found.append("".join(line[indent:] for line in m[3].splitlines(keepends=True)))
    return found


def prose(page: Path) -> str:
    """``page`` without its code blocks."""
    return BLOCK.sub("", page.read_text())


def resolve(dotted: str) -> Any:
    """The object ``hub.a.b…`` names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    obj: Any = None
    for n in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:n]))
        except ModuleNotFoundError:
            continue
        rest = parts[n:]
        break
    assert isinstance(obj, ModuleType), f"{dotted}: no such module"
    for name in rest:
        assert hasattr(obj, name), f"{dotted}: {obj.__name__} has no {name!r}"
        obj = getattr(obj, name)
    return obj


def hub_names_in_code(code: str) -> set[str]:
    """The ``hub`` names a Python block imports or references (``hub.x.y``)."""
    names: set[str] = set()
    tree = ast.parse(code)
    inner_parts = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "hub":
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == "hub"}
        elif isinstance(node, ast.Attribute) and id(node) not in inner_parts:
            chain: list[str] = []
            inner: ast.expr = node
            while isinstance(inner, ast.Attribute):
                chain.insert(0, inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id == "hub":
                names.add(".".join(["hub", *chain]))
    return names


def slug(heading: str) -> str:
    """A heading's anchor, as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(m[1]) for m in re.finditer(r"^#+ (.+)$", prose(page), re.M)}


def test_the_readme_links_both_pages() -> None:
    text = README.read_text()
    section = text.split("\n## Writing a plugin\n", 1)[1].split("\n## ", 1)[0]
    for page in PAGES:
        assert f"](docs/{page.name})" in section, f"the README does not link docs/{page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_lead_somewhere(page: Path) -> None:
    for target in LINK.findall(prose(page)):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: a link to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: no heading for {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_hub_name_exists(page: Path) -> None:
    names: set[str] = set()
    for code in blocks(page, "python"):
        names |= hub_names_in_code(code)  # a SyntaxError fails the test too
    for span in INLINE.findall(prose(page)):
        names |= set(HUB_NAME.findall(span))
    assert len(names) > 10, names
    for name in sorted(names):
        resolve(name)


def test_the_name_check_can_fail() -> None:
    resolve("hub.contract.SourceContract")
    resolve("hub.RangeWindow.select")
    for wrong in ("hub.NoSuchName", "hub.contract.NoSuchName", "hub.no_such_module.X"):
        with pytest.raises(AssertionError):
            resolve(wrong)
    assert hub_names_in_code("from hub.testing import EPOCH\nhub.x.y()") == {
        "hub.testing.EPOCH",
        "hub.x.y",
    }


def test_the_worked_example_passes_its_tests(tmp_path: Path) -> None:
    written = []
    for page in PAGES:
        for code in blocks(page):
            m = EXAMPLE_FILE.match(code)
            if m:
                target = tmp_path / m[1]
                assert not target.exists(), f"{m[1]} is given twice"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(code)
                written.append(m[1])
    assert "gpshub-acme/src/gpshub_acme/source.py" in written
    assert "gpshub-acme/tests/test_contract.py" in written
    assert "gpshub-acme/tests/test_hub.py" in written
    project = tmp_path / "gpshub-acme"
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # against a hang only
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " failed" not in run.stdout and " passed" in run.stdout, run.stdout[-2000:]


def test_the_testing_page_covers_the_kit() -> None:
    from hub.contract import SourceContract
    from hub.fake_upstream import FakeUpstream

    text = PAGES[1].read_text()
    plugin = ast.parse((ROOT / "hub" / "pytest_plugin.py").read_text())
    fixtures = [
        f.name
        for f in plugin.body
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        and any("fixture" in ast.unparse(d) for d in f.decorator_list)
    ]
    checks = [name for name in dir(SourceContract) if name.startswith("test_")]
    switches = ["fail", "rate_limit", "malformed", "hang", "platform_error", "reset_faults"]
    assert all(callable(getattr(FakeUpstream, name)) for name in switches)
    assert len(fixtures) >= 6 and len(checks) >= 10
    missing = [n for n in [*fixtures, *checks, *switches] if not re.search(rf"[`.]{n}[`(]", text)]
    assert not missing, f"{PAGES[1].name} does not describe {missing}"
