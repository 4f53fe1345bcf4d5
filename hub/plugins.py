"""Finding and loading plugins through entry points.

A plugin is a distribution that declares an entry point in the ``gpshub`` group pointing
at a module with ``@hookimpl`` functions.  We load entry points ourselves (rather than
``pluggy.PluginManager.load_setuptools_entrypoints``) so that a broken plugin stops
start-up with a message naming its distribution, its version and how to disable it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

import pluggy

from hub import hookspecs
from hub.errors import PluginError

ENTRY_POINT_GROUP = "gpshub"
DISABLE_ENV = "GPSHUB_DISABLE_PLUGINS"


@dataclass
class PluginInfo:
    """One loaded plugin and what it registered."""

    name: str
    distribution: str
    version: str
    module: str
    kinds: dict[str, list[str]] = field(
        default_factory=lambda: {"sources": [], "sinks": [], "formats": []}
    )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "kinds": self.kinds,
        }


def disabled_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> set[str]:
    value = (os.environ if environ is None else environ).get(DISABLE_ENV, "")
    return {name.strip() for name in value.split(",") if name.strip()}


def new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(
    disabled: Iterable[str] = (),
    extra: Iterable[tuple[str, ModuleType | object]] = (),
    *,
    use_entry_points: bool = True,
) -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    """Load every installed plugin (less ``disabled``) plus ``extra`` (name, module) pairs."""
    pm = new_manager()
    infos: dict[str, PluginInfo] = {}
    skip = set(disabled)
    eps = list(entry_points(group=ENTRY_POINT_GROUP)) if use_entry_points else []
    for ep in sorted(eps, key=lambda e: e.name):
        if ep.name in skip:
            continue
        dist, version = _dist_of(ep)
        if ep.name in infos:
            other = infos[ep.name]
            raise PluginError(
                f"two plugins are named {ep.name!r}: {other.distribution} {other.version} "
                f"and {dist} {version}; uninstall one of them"
            )
        try:
            module = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} from {dist} {version} failed to import: "
                f"{type(exc).__name__}: {exc}. Fix or uninstall it, or disable it with "
                f"{DISABLE_ENV}={ep.name}"
            ) from exc
        _register(pm, ep.name, module, dist, version)
        infos[ep.name] = PluginInfo(ep.name, dist, version, getattr(module, "__name__", ep.value))
    for name, module in extra:
        if name in skip:
            continue
        _register(pm, name, module, "(in-process)", "")
        infos[name] = PluginInfo(name, "(in-process)", "", getattr(module, "__name__", name))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        plugin = infos.get(exc.plugin_name if hasattr(exc, "plugin_name") else "")
        where = f" from {plugin.distribution} {plugin.version}" if plugin else ""
        raise PluginError(
            f"plugin {getattr(exc, 'plugin_name', '?')!r}{where} implements a hook gpshub "
            f"does not have: {exc}. Known hooks: {', '.join(hook_names())}"
        ) from exc
    return pm, infos


def hook_names() -> list[str]:
    return sorted(
        name
        for name in dir(hookspecs)
        if name.startswith("register_") and callable(getattr(hookspecs, name))
    )


def _register(pm: pluggy.PluginManager, name: str, module: object, dist: str, version: str) -> None:
    try:
        pm.register(module, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        raise PluginError(
            f"plugin {name!r} from {dist} {version} could not be registered: {exc}. "
            f"Disable it with {DISABLE_ENV}={name}"
        ) from exc


def _dist_of(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return "(unknown distribution)", ""
    return dist.metadata["Name"], dist.version
