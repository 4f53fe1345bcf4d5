"""gpshub-findhub: the trackers and phones of a Google Find Hub account as a gpshub source.

The hub finds this plugin through the ``gpshub`` entry point in ``pyproject.toml``; pluggy
calls ``register_sources`` once at start-up.  ``gpshub_findhub.testing.FakeFindHub`` is a
fake of Google's endpoints (auth, Nova, check-in, push) for tests and benchmarks (the
running hub never imports it).

Its exports are imported when first used (``hub.lazy``): the command line imports this
package for every command, ``--help`` included, and needs none of them for that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hub import hookimpl
from hub.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see __getattr__
    from gpshub_findhub.auth import TokenManager
    from gpshub_findhub.nova import NovaClient
    from gpshub_findhub.secrets_json import FindHubSecrets, SecretsError, parse_secrets
    from gpshub_findhub.source import FindHubCredentials, FindHubOptions, FindHubSource


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    from gpshub_findhub.source import FindHubSource

    register(FindHubSource)


__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "gpshub_findhub.auth": ("TokenManager",),
        "gpshub_findhub.nova": ("NovaClient",),
        "gpshub_findhub.secrets_json": ("FindHubSecrets", "SecretsError", "parse_secrets"),
        "gpshub_findhub.source": ("FindHubCredentials", "FindHubOptions", "FindHubSource"),
    },
)

__all__ = [
    "FindHubCredentials",
    "FindHubOptions",
    "FindHubSecrets",
    "FindHubSource",
    "NovaClient",
    "SecretsError",
    "TokenManager",
    "parse_secrets",
    "register_sources",
]
