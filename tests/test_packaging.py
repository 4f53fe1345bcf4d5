"""The core and each plugin build as separate wheels; installing the simulator's wheel
next to the core's makes the simulator appear, with no other change."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.packaging


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.skip("uv is not available")
    return found


def run(*cmd: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def install(venv: Path, *requirements: str, find_links: Path) -> None:
    base = [
        uv(),
        "pip",
        "install",
        "--python",
        str(venv / "bin" / "python"),
        "--find-links",
        str(find_links),
    ]
    try:
        run(*base, "--offline", *requirements)  # the dependencies are in uv's cache after `uv sync`
    except AssertionError:
        run(*base, *requirements)


def plugins(venv: Path, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "GPSHUB_"))}
    environ.update(env)
    return json.loads(run(str(venv / "bin" / "gpshub"), "plugins", "--json", env=environ))


def test_wheels_install_separately_and_plugins_are_discovered(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run(uv(), "build", "--package", "gpshub", "--wheel", "-o", str(dist))
    run(uv(), "build", "--package", "gpshub-simulator", "--wheel", "-o", str(dist))
    core = next(dist.glob("gpshub-*.whl"))
    sim = next(dist.glob("gpshub_simulator-*.whl"))
    names = subprocess.run(
        [sys.executable, "-m", "zipfile", "-l", str(core)], capture_output=True, text=True
    ).stdout
    assert (
        "hub/migrations/versions/0001_initial_schema.py" in names
        and "gpshub_simulator" not in names
    )

    venv = tmp_path / "venv"
    run(uv(), "venv", "--python", sys.executable, str(venv))
    install(venv, str(core), find_links=dist)
    assert plugins(venv)["plugins"] == []  # the core alone: a hub with no sources

    install(venv, str(sim), find_links=dist)
    found = plugins(venv)["plugins"]
    assert [(p["name"], p["distribution"], p["version"], p["kinds"]["sources"]) for p in found] == [
        ("simulator", "gpshub-simulator", "0.1.0", ["simulator"])
    ]
    assert plugins(venv, GPSHUB_DISABLE_PLUGINS="simulator")["plugins"] == []
