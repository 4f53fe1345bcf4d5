"""gpshub's dashboard: a web page served at ``/`` that signs in and uses the public API.

The page is HTML, CSS and small ES modules of our own (``static/``), plus third-party
browser libraries copied into ``static/vendor/`` at build time (``vendor.py``).  See
this plugin's README for the structure and how to add a page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub import hookimpl

if TYPE_CHECKING:
    from hub.core import Hub


@hookimpl
def register_pages(hub: Hub) -> list[Any]:
    from gpshub_dashboard.site import Site

    return Site.from_hub(hub).routes()
