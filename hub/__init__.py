"""gpshub: a plugin-based GPS integration hub.

The public API for plugin authors and embedders is re-exported here.
"""

from hub.clock import Clock, SystemClock, TrioClock
from hub.config import Settings
from hub.core import Hub
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
from hub.plugins import ENTRY_POINT_GROUP
from hub.rangepoll import RangeOptions, RangeWindow, group_by_start
from hub.retry_after import parse_retry_after, response_retry_after
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

__version__ = "0.1.0"

__all__ = [
    "ENTRY_POINT_GROUP",
    "GROUP_EXTERNAL",
    "PLATFORM_ENGINE_HOURS",
    "PLATFORM_ODOMETER_KM",
    "BadConfig",
    "Cadence",
    "CannotConnect",
    "Clock",
    "Cursor",
    "Delivery",
    "DeliveryFailed",
    "DeliveryRejected",
    "DeviceRef",
    "Format",
    "Hub",
    "HubError",
    "InvalidAuth",
    "MemoryStateStore",
    "NoOptions",
    "NotSupported",
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
    "UpstreamUrl",
    "__version__",
    "group_by_start",
    "hookimpl",
    "parse_retry_after",
    "response_retry_after",
]
