"""What the command line and the packages import at start-up: the quick commands do not
import what they do not use, and every re-exported name still imports.

Each check runs in a fresh interpreter (a subprocess): this test process has imported
everything long ago.  How long start-up takes is measured by ``bench/startup.py``."""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import hub
from hub.lazy import lazy_exports

HEAVY = (
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "trio",
    "httpx",
    "httpcore",
    "pydantic",
    "starlette",
    "hypercorn",
    "cryptography",
    "prometheus_client",
    "hub.core",
    "hub.store",
    "hub.models",
    "hub.web",
)
PLUGINS = sorted(ep.value for ep in entry_points(group=hub.ENTRY_POINT_GROUP))


def imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter has imported after running ``code``."""
    script = textwrap.dedent(code) + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def under(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The ``modules`` that are one of ``packages`` or inside one."""
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def heavy_in(modules: set[str]) -> list[str]:
    return under(modules, HEAVY)


def test_import_hub_imports_none_of_the_heavy_modules() -> None:
    assert heavy_in(imported_after("import hub")) == []


def test_help_and_version_import_none_of_the_heavy_modules() -> None:
    modules = imported_after(
        """
        import contextlib, io
        from hub.cli import main
        for argv in (["--help"], ["--version"], ["device", "--help"], ["token", "create", "--help"]):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
                main(argv)
        """
    )
    assert "hub.cli" in modules and "hub.plugins" in modules
    assert set(PLUGINS) <= modules  # plugins were asked for their commands
    assert heavy_in(modules) == []


def test_a_parse_error_imports_none_of_the_heavy_modules() -> None:
    modules = imported_after(
        """
        import contextlib, io
        from hub.cli import main
        with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
            main(["no-such-command"])
        """
    )
    assert heavy_in(modules) == []


def test_plugins_command_imports_no_database_or_web_server() -> None:
    modules = imported_after(
        """
        import contextlib, io
        from hub.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["plugins", "--json"]) == 0
        """
    )
    assert under(modules, ("sqlalchemy", "sqlmodel", "alembic", "starlette", "hypercorn")) == []
    assert under(modules, ("hub.store", "hub.core", "hub.web")) == []


def test_help_still_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    from hub.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in (
        "serve",
        "plugins",
        "client",
        "token",
        "connection",
        "history",
        "secrets",
        "backup",
        "device",
        "geofence",
        "rule",
        "sink",
        "alert",
        "devices",
    ):
        assert f"    {command} " in out or f"    {command}\n" in out, command


@pytest.mark.parametrize("name", hub.__all__)
def test_every_public_name_imports_from_hub(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from hub import {name}", namespace)
    value = namespace[name]
    assert value is getattr(hub, name)
    if name != "__version__":
        (module,) = (m for m, names in hub._EXPORTS.items() if name in names)
        assert value is getattr(importlib.import_module(module), name)


def test_star_import_and_dir_give_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from hub import *", namespace)
    assert set(hub.__all__) <= set(namespace)
    assert set(hub.__all__) <= set(dir(hub))


def test_a_fresh_interpreter_resolves_every_public_name() -> None:
    names = ", ".join(n for n in hub.__all__ if n != "__version__")
    modules = imported_after(f"from hub import {names}")
    assert "hub.core" in modules  # Hub was asked for: now it is imported


@pytest.mark.parametrize("package", PLUGINS)
def test_a_plugin_package_imports_light_and_exports_everything(package: str) -> None:
    modules = imported_after(f"import {package}")
    assert heavy_in(modules) == []
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        hub.nothing  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(ImportError):
        exec("from hub import nothing", {})


def test_lazy_exports_import_the_module_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    package = types.ModuleType("lazy_probe")
    monkeypatch.setitem(sys.modules, "lazy_probe", package)
    getattr_, dir_ = lazy_exports("lazy_probe", {"json": ("dumps",), "textwrap": ("dedent",)})
    package.__getattr__ = getattr_  # type: ignore[attr-defined]
    assert "dumps" in dir_() and "dedent" in dir_()
    assert package.dumps is json.dumps  # type: ignore[attr-defined]
    assert vars(package)["dumps"] is json.dumps  # kept: the next lookup is a plain one
    with pytest.raises(AttributeError, match="'lazy_probe' has no attribute 'loads'"):
        package.loads  # type: ignore[attr-defined]  # noqa: B018


@pytest.mark.parametrize("collecting", [True, False])
def test_serve_gives_the_cycle_collector_back_when_it_fails_to_start(
    tmp_path: Path, collecting: bool
) -> None:
    """``serve`` turns the collector off while it starts; a start that fails (here: the
    port is taken) leaves it as it found it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        script = textwrap.dedent(
            f"""
            import gc
            from hub.cli import main
            {"" if collecting else "gc.disable()"}
            code = main(["--data-dir", {str(tmp_path)!r}, "serve", "--port", "{port}"])
            print(code, gc.isenabled())
            """
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("GPSHUB_")}
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
        )
    assert "cannot listen" in done.stderr
    assert done.stdout.split() == ["2", str(collecting)]


async def test_serve_collects_again_once_it_listens(tmp_path: Path) -> None:
    import gc

    import trio

    from hub import cli
    from hub.testing import make_hub

    hub_ = make_hub(tmp_path, host="127.0.0.1", port=0)
    collecting_when_told: list[bool] = []
    with trio.CancelScope() as scope:

        class Say:
            """Where serve tells people it listens: we stop it there."""

            def print(self, *args: object, **kwargs: object) -> None:
                collecting_when_told.append(gc.isenabled())
                scope.cancel()

        gc.disable()  # as cmd_serve leaves it for _serve
        try:
            await cli._serve(hub_, hub_.settings, Say(), True, freeze=False)  # type: ignore[arg-type]
        finally:
            gc.enable()
            hub_.store.close()
    assert collecting_when_told[:1] == [True]


def test_a_sqlite_hub_opens_without_alembic_or_the_postgresql_dialect(
    tmp_path: Path,
) -> None:
    script = f"""
        from hub.config import Settings
        from hub.core import Hub
        from hub.web.app import create_app
        hub = Hub.open(Settings(data_dir=__import__("pathlib").Path({str(tmp_path)!r})))
        create_app(hub)
        hub.store.close()
        """
    first = imported_after(script)  # a new database: created at the head from the models
    again = imported_after(script)  # at the head
    for modules in (first, again):
        assert "hub.core" in modules
        assert under(modules, ("alembic", "sqlalchemy.dialects.postgresql")) == []


def test_store_commands_open_the_store_alone(tmp_path: Path) -> None:
    """``token create`` (and the other commands on the database alone) import no web
    server, runner or metrics, nor Alembic once the database is at the head."""
    script = f"""
        import contextlib, io
        from hub.cli import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["--data-dir", {str(tmp_path)!r}, "token", "create"]) == 0
            assert main(["--data-dir", {str(tmp_path)!r}, "client", "list"]) == 0
        """
    imported_after(script)  # the first: makes and migrates the database
    modules = imported_after(script)
    unused = ("hub.core", "hub.web", "starlette", "hypercorn", "prometheus_client", "alembic")
    assert under(modules, unused) == []
    assert "hub.store" in modules
