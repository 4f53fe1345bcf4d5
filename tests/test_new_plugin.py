"""``gpshub new-plugin NAME``: the plugin it writes passes ruff and its own tests as
written; a bad name or an existing folder is refused with nothing written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli import build_parser, main
from hub.plugin_template import LAYOUT, MAX_NAME, plugin_files

FILES = {
    "pyproject.toml",
    "README.md",
    "src/gpshub_acme/__init__.py",
    "src/gpshub_acme/source.py",
    "src/gpshub_acme/testing.py",
    "tests/test_contract.py",
    "tests/test_plugin.py",
    "tests/test_hub.py",
}
ENTRY_POINT_CHECK = "tests/test_plugin.py::TestPackage::test_entry_point_names_the_package"


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``argv`` in ``cwd`` with this interpreter's environment, its output as text."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def ruff(root: Path) -> None:
    """``ruff check`` and ``ruff format --check`` pass in ``root`` (its own settings)."""
    for argv in (["check", "."], ["format", "--check", "."]):
        done = run([sys.executable, "-m", "ruff", *argv, "--no-cache"], root)
        assert done.returncode == 0, f"ruff {' '.join(argv)}:\n{done.stdout}{done.stderr}"


def written(tmp_path: Path) -> set[str]:
    return {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}


def test_the_plugin_as_written_passes_ruff_and_its_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new-plugin", "acme", "--dir", str(tmp_path / "plugins")]) == 0
    root = tmp_path / "plugins" / "gpshub-acme"
    assert f"wrote {root}" in capsys.readouterr().out
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert files == FILES
    assert os.listdir(tmp_path / "plugins") == ["gpshub-acme"]  # no staging folder left
    (tmp_path / "usual").mkdir()
    assert root.stat().st_mode == (tmp_path / "usual").stat().st_mode  # not mkdtemp's 0700
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.gpshub]\nacme = "gpshub_acme"' in pyproject
    assert 'testing = ["gpshub[testing]>=0.1.0", "starlette>=0.41", "hypercorn>=0.17"]' in (
        pyproject
    )
    ruff(root)

    # not installed: pytest finds the package through its pythonpath setting ("src"); the
    # one check that needs the installed distribution (its entry point) says so and skips
    argv = ["-m", "pytest", "-v", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'tmp'}"]
    done = run([sys.executable, *argv], root)
    assert done.returncode == 0, done.stdout + done.stderr
    results = dict(re.findall(r"^(\S+::\S+) ([A-Z]+)\b", done.stdout, re.MULTILINE))
    assert results.pop(ENTRY_POINT_CHECK) == "SKIPPED", done.stdout
    assert "gpshub_acme is not installed (pip install -e .)" in done.stdout
    assert set(results.values()) == {"PASSED"}, done.stdout
    tests = {test.split("::")[0] for test in results}
    assert tests == {"tests/test_contract.py", "tests/test_plugin.py", "tests/test_hub.py"}
    assert len(results) >= 20, done.stdout


@pytest.mark.parametrize("name", ["s", "acme_fleet2", "a" * MAX_NAME, "ab_cd_ef_gh_ij_kl_m"])
def test_every_name_gives_ruff_clean_files(tmp_path: Path, name: str) -> None:
    """Names change the lines' lengths: the longest allowed still fit ``ruff format``."""
    assert main(["new-plugin", name, "--dir", str(tmp_path)]) == 0
    root = tmp_path / f"gpshub-{name}"
    ruff(root)
    text = "".join(p.read_text() for p in root.rglob("*") if p.is_file())
    assert not re.search(r"\{\{\w+\}\}", text), "a placeholder left"


def test_the_folder_defaults_to_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new-plugin", "my_fleet"]) == 0
    source = (tmp_path / "gpshub-my_fleet/src/gpshub_my_fleet/source.py").read_text()
    assert "class MyFleetSource(Source[MyFleetCredentials, MyFleetOptions]):" in source
    assert 'kind = "my_fleet"' in source and 'title = "My Fleet"' in source


@pytest.mark.parametrize(
    "name",
    ["Acme", "1acme", "acme-fleet", "acme fleet", "acme__fleet", "acme_", "_acme", "a" * 20, ""],
)
def test_a_bad_name_is_refused_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert main(["new-plugin", name, "--dir", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and repr(name) in error
    assert not (tmp_path / "out").exists()


def test_an_existing_folder_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gpshub-acme").mkdir()
    (tmp_path / "gpshub-acme" / "mine.txt").write_text("keep")
    assert main(["new-plugin", "acme", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert written(tmp_path) == {"gpshub-acme", "gpshub-acme/mine.txt"}


def test_a_folder_that_is_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plugins").write_text("a file")
    assert main(["new-plugin", "acme", "--dir", str(tmp_path / "plugins")]) == 2
    assert "cannot write in" in capsys.readouterr().err
    assert written(tmp_path) == {"plugins"}


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["new-plugin", "--help"])
    assert "usage: gpshub new-plugin [-h] [--dir PATH] NAME" in capsys.readouterr().out


def test_the_layout_is_the_documented_one() -> None:
    """The docs (and KIT.md) describe these files; a new one is a docs change too."""
    assert set(plugin_files("acme")) == FILES
    assert len(LAYOUT) == len(FILES)
