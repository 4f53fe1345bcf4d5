"""A plugin package's ``__init__``: its hook and its lazy re-exports in one call.

A source plugin's package is what its ``gpshub`` entry point names.  The command line
imports it for every command, so it should import nothing heavy: it registers its
sources from their modules only when pluggy calls the hook, and re-exports its public
names on first use (``hub.lazy``)::

    from hub.plugin_package import source_plugin

    if TYPE_CHECKING:  # what type checkers and IDEs see
        from gpshub_acme.source import AcmeSource

    register_sources, __getattr__, __dir__ = source_plugin(
        __name__, {"gpshub_acme.source": ("AcmeSource",)}, "gpshub_acme.source:AcmeSource"
    )
    __all__ = ["AcmeSource", "register_sources"]
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hub.hookspecs import hookimpl
from hub.lazy import lazy_exports

RegisterSources = Callable[[Callable[[type], None]], None]


def source_plugin(
    package: str, exports: Mapping[str, Iterable[str]], *sources: str
) -> tuple[RegisterSources, Callable[[str], Any], Callable[[], list[str]]]:
    """The ``register_sources`` hook, ``__getattr__`` and ``__dir__`` of ``package`` (its
    ``__name__``): the hook registers each of ``sources`` (``"module:Class"``, imported
    when the hook is called); ``exports`` are re-exported lazily (``lazy_exports``)."""
    targets = [source.partition(":") for source in sources]
    for module, colon, name in targets:
        if not colon or not module or not name:
            raise ValueError(f"a source is named 'module:Class', not {module}{colon}{name!r}")

    @hookimpl
    def register_sources(register: Callable[[type], None]) -> None:
        for module, _, name in targets:
            register(getattr(importlib.import_module(module), name))

    register_sources.__module__ = package
    register_sources.__qualname__ = "register_sources"
    return (register_sources, *lazy_exports(package, exports))
