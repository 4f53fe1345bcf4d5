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
import inspect
import keyword
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
    for named in ("`gpshub new-plugin NAME", "`SourceContract`", "`BaseSourceContract`"):
        assert named in section, f"the README's Writing a plugin does not mention {named}"


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


def kit_names() -> dict[str, list[str]]:
    """What "Testing your plugin" must name, by where it lives in the kit."""
    import hub.testing
    from hub.contract import BaseSourceContract, SourceContract
    from hub.fake_upstream import FakeCall, FakeUpstream
    from hub.hub_driver import HubDriver, RefusedCredentialsCheck
    from hub.plugin_checks import PluginPackageChecks

    def public(cls: type, *, own: bool = True) -> list[str]:
        names = vars(cls) if own else dir(cls)
        return [n for n in names if not n.startswith("_")]

    helpers = [
        n
        for n, obj in vars(hub.testing).items()
        if not n.startswith("_") and getattr(obj, "__module__", None) == "hub.testing"
    ]
    return {
        "hub.testing": [*helpers, "PluginPackageChecks"],
        "BaseSourceContract": ["good_credentials", "good_options", "device_ids", "max_fix_age_s"],
        "SourceContract": ["make_fake", "credentials", "options", "add_device", "add_fix"],
        "contract checks": [n for n in dir(SourceContract) if n.startswith("test_")],
        "base checks": [n for n in dir(BaseSourceContract) if n.startswith("test_")],
        "PluginPackageChecks": [n for n in public(PluginPackageChecks) if n != "readme_text"],
        "HubDriver": public(HubDriver),
        "RefusedCredentialsCheck": public(RefusedCredentialsCheck),
        "FakeUpstream": [*public(FakeUpstream), "current_call", "FixFields"],
        "FakeCall": [n for n in FakeCall.__dataclass_fields__],
        "hub.pytest_plugin": ["served_fixture", "make_source_fixture"],
    }


def test_the_testing_page_names_every_helper_of_the_kit() -> None:
    """Every public helper of the kit's test modules, every check of both contracts and of
    ``PluginPackageChecks``, every ``HubDriver`` call and ``FakeUpstream`` method."""
    text = PAGES[1].read_text()
    groups = kit_names()
    assert len(groups["hub.testing"]) >= 20 and len(groups["HubDriver"]) >= 14
    missing = {
        where: [n for n in names if not re.search(rf"(?:[`.]|await ){n}(?:[`(]| =)", text)]
        for where, names in groups.items()
    }  # named in code: `name`, `name(`, `x.name`, `name = value`, `await name(`
    assert not any(missing.values()), {k: v for k, v in missing.items() if v}


def test_the_writing_page_names_the_runtime_kit() -> None:
    """Every reading helper of ``hub.upstream_values``, every credential field type, the
    plugin package's ``source_plugin`` and the HTTP helper's hooks and errors."""
    import hub.credential_fields
    import hub.upstream_values

    text = PAGES[0].read_text()

    def defined(module: ModuleType) -> list[str]:
        return [
            n
            for n, obj in vars(module).items()
            if not n.startswith("_")
            and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module.__name__
        ]

    names = [
        *defined(hub.upstream_values),
        "AccountName",
        "Password",
        "ApiToken",
        *defined(hub.credential_fields),
        "source_plugin",
        "NotJson",
        "BrokenJson",
        "error_text",
        "reason",
        "rate_limit",
        "lenient",
        "DEFAULT_TIMEOUT_S",
    ]
    assert len(names) >= 20, names
    missing = [n for n in names if not re.search(rf"[`.]{n}[`(=]", text)]
    assert not missing, f"{PAGES[0].name} does not describe {missing}"


# -- signatures: a documented ``name(params)`` names the real parameters ----------------
def signature_callables() -> dict[str, list[Any]]:
    """The kit's callables whose signatures the pages write out, by the name they use."""
    import hub.testing
    import hub.upstream_values
    from hub.contract import SourceContract
    from hub.credential_fields import one_word
    from hub.fake_upstream import FakeUpstream
    from hub.http_failures import upstream_errors
    from hub.hub_driver import HubDriver, HubFactory
    from hub.plugin_checks import readme_default, readme_table
    from hub.plugin_package import source_plugin
    from hub.pytest_plugin import make_source_fixture, served_fixture
    from hub.source import Source
    from hub.upstream_http import (
        UpstreamClient,
        decode_json,
        upstream_fetch,
        upstream_fetch_json,
    )

    table: dict[str, list[Any]] = {}

    def add(name: str, obj: Any) -> None:
        table.setdefault(name, []).append(obj)

    for cls in (FakeUpstream, HubDriver, hub.testing.Fleet, hub.testing.Poller):
        for name in vars(cls):
            if not name.startswith("_") and callable(getattr(cls, name)):
                add(name, getattr(cls, name))
    for name in ("make_fake", "add_device", "add_fix", "source", "failure"):
        add(name, getattr(SourceContract, name))
    for name, obj in vars(hub.testing).items():
        if callable(obj) and getattr(obj, "__module__", None) == "hub.testing":
            add(name, obj)
    for name, obj in vars(hub.upstream_values).items():
        if inspect.isfunction(obj) and obj.__module__ == "hub.upstream_values":  # not T
            add(name, obj)
    for obj in (HubFactory, HubDriver, upstream_errors, one_word, readme_default, readme_table):
        add(obj.__name__, obj)
    for obj in (source_plugin,):
        add(obj.__name__, obj)
    for obj in (served_fixture, make_source_fixture, decode_json, upstream_fetch):
        add(obj.__name__, obj)
    add("upstream_fetch_json", upstream_fetch_json)
    add("fetch", UpstreamClient.fetch)
    add("fetch_json", UpstreamClient.fetch_json)
    add("poll", Source.poll)
    return table


def parameters(obj: Any) -> list[str]:
    return [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]


def fits(obj: Any, written: list[str], complete: bool) -> bool:
    """Whether ``obj`` has the parameters a page writes: all of them, in order, for a
    complete signature; else the positional ones as its first ones, and each keyword one
    among its parameters (or it takes ``**kwargs``)."""
    real = parameters(obj)
    if complete:
        return real == [n.lstrip("*").split("=")[0] for n in written]
    positional = [n for n in written if "=" not in n]
    keywords = [n.split("=")[0] for n in written if "=" in n]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(obj).parameters.values())
    return real[: len(positional)] == positional and all(k in real or takes_any for k in keywords)


def written_signatures(text: str, name: str) -> list[tuple[list[str], bool]]:
    """Each ``name(a, b=1, *, c=None, **kw)`` in ``text`` that reads as a signature (every
    argument a name, ``*``, ``*name``, ``**name`` or ``name=default``): its parameters
    (``name``, ``name=``, ``*name``, ``**name``), and whether it is complete (it has a
    ``*``, ``*name`` or ``**name``) or a call pattern (``add_fix(upstream_id, t,
    speed_kmh=…)``)."""
    found = []
    for m in re.finditer(rf"(?<![\w]){re.escape(name)}\(", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        inside = " ".join(text[m.end() : i - 1].split())
        args, depth, current = [], 0, ""
        for c in inside:
            if c == "," and depth == 0:
                args.append(current.strip())
                current = ""
                continue
            depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(c, 0)
            current += c
        if current.strip():
            args.append(current.strip())
        args = [a for a in args if a not in ("…", "...")]
        shapes = [re.fullmatch(r"(\*{0,2})([A-Za-z_]\w*)(=.+)?|\*", a) for a in args]
        if not args or not all(shapes):
            continue
        written = [
            f"{s[1]}{s[2]}{'=' if s[3] else ''}"
            for s in shapes
            if s and s[2] and s[2] not in ("self", "cls")
        ]
        if any(keyword.iskeyword(n.strip("*=")) or n.strip("*")[0].isupper() for n in written):
            continue  # a call with a constant or a class, not a signature
        found.append((written, any(a.startswith("*") for a in args)))
    return found


def signature_text(page: Path) -> str:
    """Where a page writes signatures: its inline code (which may wrap a line) and its
    ``text`` blocks; not its Python, whose calls pass variables."""
    spans = re.findall(r"`([^`]+)`", prose(page))
    return "\n".join([*spans, *blocks(page, "text")])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_written_signatures_match_the_code(page: Path) -> None:
    text = signature_text(page)
    checked = 0
    for name, candidates in signature_callables().items():
        for written, complete in written_signatures(text, name):
            real = [parameters(c) for c in candidates]
            assert any(fits(c, written, complete) for c in candidates), (
                f"{page.name}: {name}({', '.join(written)}) but the code has {real}"
            )
            checked += 1
    assert checked >= 10, checked


def test_the_signature_check_can_fail() -> None:
    from hub.fake_upstream import FakeUpstream

    assert written_signatures("`fail(status=500, *, times=1)`", "fail") == [
        (["status=", "times="], True)
    ]
    assert written_signatures("`fake.fail(503, times=2)`", "fail") == []  # a call
    fail = FakeUpstream.fail
    assert not fits(fail, ["status=", "times="], True)  # the code has path, body, after
    assert fits(fail, ["status=", "times=", "path=", "body=", "after="], True)
    assert fits(fail, ["status", "times="], False)
    assert not fits(fail, ["status", "count="], False)  # no such parameter
    assert not fits(fail, ["times"], False)  # not the first parameter


def test_the_new_plugin_table_lists_what_the_template_writes() -> None:
    from hub.plugin_template import plugin_files

    section = PAGES[0].read_text().split("## The quick way", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([^`]+)` \|", section, re.M))
    assert listed == set(plugin_files("acme"))


def test_the_pages_state_the_kit_s_numbers() -> None:
    """The request timeout's one default and the contract's give-up time, as the code has
    them (an old default, 15 s, is gone)."""
    from hub.contract import GIVE_UP_S
    from hub.upstream_http import DEFAULT_TIMEOUT_S, MAX_CONNECT_S

    writing, testing = (page.read_text() for page in PAGES)
    for text in (writing, testing):
        assert f"DEFAULT_TIMEOUT_S`, {DEFAULT_TIMEOUT_S:g} s" in " ".join(text.split())
        assert "15 s" not in text
    assert f"`MAX_CONNECT_S`, {MAX_CONNECT_S:g} s" in " ".join(writing.split())
    assert f"({GIVE_UP_S:g} s of the source's time)" in " ".join(testing.split())
