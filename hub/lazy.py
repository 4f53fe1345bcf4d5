"""Re-exports imported on first use (PEP 562).

A package that re-exports names from its modules but should stay cheap to import (the
``hub`` package itself, a plugin's package that the command line imports for every
command) declares where each name lives::

    __getattr__, __dir__ = lazy_exports(__name__, {"my_plugin.source": ("MySource",)})

and lists the same names under ``if TYPE_CHECKING:`` imports for type checkers and IDEs.
``from package import MySource`` then imports ``my_plugin.source`` at that moment.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` (its ``__name__``),
    which re-exports each name of ``exports[module]`` from ``module``."""
    module_of = {name: module for module, names in exports.items() for name in names}
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later lookups find it without coming here
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *module_of})

    return __getattr__, __dir__
