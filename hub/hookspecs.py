"""The hooks a gpshub plugin may implement.

Every hook is called once at start-up, never per position.  A plugin module implements
any of them with ``@hub.hookimpl``::

    from hub import hookimpl

    @hookimpl
    def register_sources(register):
        register(MySource)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse

    from hub.core import Hub

PROJECT = "gpshub"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_sources(register: Callable[[type], None]) -> None:
    """Call ``register(SourceClass)`` for each source kind the plugin provides."""


@hookspec
def register_sinks(register: Callable[[type], None]) -> None:
    """Call ``register(SinkClass)`` for each delivery sink kind the plugin provides."""


@hookspec
def register_formats(register: Callable[[type], None]) -> None:
    """Call ``register(FormatClass)`` for each payload format the plugin provides."""


@hookspec
def register_geocoder(register: Callable[[Callable[[float, float], str | None]], None]) -> None:
    """Call ``register(place_name)`` with a reverse geocoder: ``place_name(lat, lon)``
    returns a place name or ``None``.  It runs on the ingest path for every position
    outside the client's geofences, so it must be fast (a local data set or a cache):
    no network call per position.  At most one plugin may provide one."""


@hookspec
def register_routes(hub: Hub) -> list[Any] | None:
    """Return extra Starlette routes (mounted under ``/api/plugins/<plugin>``, an API
    token or session required; the caller is in ``request.state.principal``)."""


@hookspec
def register_pages(hub: Hub) -> list[Any] | None:
    """Return public Starlette routes served from the site's root (``/``, ``/assets/…``):
    web pages, which sign in through the API like any other client.  No authentication
    is done for them.  They come after the API: a path under ``/api/`` and the hub's own
    ``/openapi.json``, ``/healthz``, ``/readyz`` and ``/metrics`` are refused at start-up
    (``hub.web.app.RESERVED_PATHS``), and two plugins may not serve the same path."""


@hookspec
def register_commands(
    subparsers: argparse._SubParsersAction[Any], hub_factory: Callable[[], Any]
) -> None:
    """Add sub-commands to the ``gpshub`` CLI."""
