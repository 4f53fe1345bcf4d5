"""gpshub: a plugin-based GPS integration hub.

The public API for plugin authors and embedders is re-exported here.  Each name is
imported on first use (PEP 562), so ``import hub`` — and the command line's quick
commands — do not pay for SQLAlchemy, trio or httpx until something needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see _EXPORTS
    from hub.clock import Clock, SystemClock, TrioClock
    from hub.config import Settings
    from hub.core import Hub
    from hub.credential_fields import AccountName, ApiToken, Password, one_word
    from hub.errors import (
        BadConfig,
        CannotConnect,
        DeliveryFailed,
        DeliveryRejected,
        HubError,
        InvalidAuth,
        NotSupported,
        PluginError,
        RateLimited,
        SourceError,
        UpdateFailed,
    )
    from hub.fix import PLATFORM_ENGINE_HOURS, PLATFORM_ODOMETER_KM, PositionFix
    from hub.formats import Format
    from hub.hookspecs import hookimpl
    from hub.http_failures import failure_detail, upstream_errors
    from hub.plugin_package import source_plugin
    from hub.plugins import ENTRY_POINT_GROUP
    from hub.rangepoll import HttpOptions, RangeOptions, RangeWindow, group_by_start
    from hub.retry_after import parse_retry_after, response_retry_after
    from hub.runner import new_http_client
    from hub.sink import Delivery, Sink
    from hub.source import (
        GROUP_EXTERNAL,
        Cadence,
        Cursor,
        DeviceRef,
        MemoryStateStore,
        NoOptions,
        PollResult,
        RemoteDevice,
        Source,
        SourceContext,
        StateStore,
        UpstreamUrl,
    )
    from hub.upstream_http import (
        BrokenJson,
        NotJson,
        UpstreamClient,
        answer_text,
        decode_json,
        error_text,
        upstream_fetch,
        upstream_fetch_json,
    )

__version__ = "0.1.0"

_EXPORTS = {  # module: the names it gives
    "hub.clock": ("Clock", "SystemClock", "TrioClock"),
    "hub.config": ("Settings",),
    "hub.credential_fields": ("AccountName", "ApiToken", "Password", "one_word"),
    "hub.core": ("Hub",),
    "hub.errors": (
        "BadConfig",
        "CannotConnect",
        "DeliveryFailed",
        "DeliveryRejected",
        "HubError",
        "InvalidAuth",
        "NotSupported",
        "PluginError",
        "RateLimited",
        "SourceError",
        "UpdateFailed",
    ),
    "hub.fix": ("PLATFORM_ENGINE_HOURS", "PLATFORM_ODOMETER_KM", "PositionFix"),
    "hub.formats": ("Format",),
    "hub.hookspecs": ("hookimpl",),
    "hub.plugin_package": ("source_plugin",),
    "hub.plugins": ("ENTRY_POINT_GROUP",),
    "hub.rangepoll": ("HttpOptions", "RangeOptions", "RangeWindow", "group_by_start"),
    "hub.retry_after": ("parse_retry_after", "response_retry_after"),
    "hub.runner": ("new_http_client",),
    "hub.sink": ("Delivery", "Sink"),
    "hub.source": (
        "GROUP_EXTERNAL",
        "Cadence",
        "Cursor",
        "DeviceRef",
        "MemoryStateStore",
        "NoOptions",
        "PollResult",
        "RemoteDevice",
        "Source",
        "SourceContext",
        "StateStore",
        "UpstreamUrl",
    ),
    "hub.http_failures": ("failure_detail", "upstream_errors"),
    "hub.upstream_http": (
        "BrokenJson",
        "NotJson",
        "UpstreamClient",
        "answer_text",
        "decode_json",
        "error_text",
        "upstream_fetch",
        "upstream_fetch_json",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "ENTRY_POINT_GROUP",
    "GROUP_EXTERNAL",
    "PLATFORM_ENGINE_HOURS",
    "PLATFORM_ODOMETER_KM",
    "AccountName",
    "ApiToken",
    "BadConfig",
    "BrokenJson",
    "Cadence",
    "CannotConnect",
    "Clock",
    "Cursor",
    "Delivery",
    "DeliveryFailed",
    "DeliveryRejected",
    "DeviceRef",
    "Format",
    "HttpOptions",
    "Hub",
    "HubError",
    "InvalidAuth",
    "MemoryStateStore",
    "NoOptions",
    "NotJson",
    "NotSupported",
    "Password",
    "PluginError",
    "PollResult",
    "PositionFix",
    "RangeOptions",
    "RangeWindow",
    "RateLimited",
    "RemoteDevice",
    "Settings",
    "Sink",
    "Source",
    "SourceContext",
    "SourceError",
    "StateStore",
    "SystemClock",
    "TrioClock",
    "UpdateFailed",
    "UpstreamClient",
    "UpstreamUrl",
    "__version__",
    "answer_text",
    "decode_json",
    "error_text",
    "failure_detail",
    "group_by_start",
    "hookimpl",
    "new_http_client",
    "one_word",
    "parse_retry_after",
    "response_retry_after",
    "source_plugin",
    "upstream_errors",
    "upstream_fetch",
    "upstream_fetch_json",
]
