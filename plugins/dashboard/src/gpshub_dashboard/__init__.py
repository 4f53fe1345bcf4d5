"""gpshub's dashboard: a web page served at ``/`` that signs in and uses the public API.

The page is HTML, CSS and small ES modules of our own (``static/``), plus third-party
browser libraries copied into ``static/vendor/`` at build time (``vendor.py``).  See
this plugin's README for the structure and how to add a page.

Its exports are imported when first used (``hub.lazy``): the command line imports this
package for every command, and needs none of them for that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub import hookimpl
from hub.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see __getattr__
    from gpshub_dashboard.site import Site
    from hub.core import Hub


@hookimpl
def register_pages(hub: Hub) -> list[Any]:
    from gpshub_dashboard.site import Site

    return Site.from_hub(hub).routes()


__getattr__, __dir__ = lazy_exports(__name__, {"gpshub_dashboard.site": ("Site",)})

__all__ = ["Site", "register_pages"]
