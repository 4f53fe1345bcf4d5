"""What a dashboard page needs to draw a map as the hub sees it: the tile source and the
thresholds of the map status (``hub.map_status``), with the server's clock."""

from __future__ import annotations

from hub.map_status import MOVING_KMH, MapStatus
from hub.stops import DEFAULT_MIN_STOP_S, MAX_RANGE_DAYS, STOP_RADIUS_M
from hub.web.auth import Access
from hub.web.routing import ApiRequest, ApiRoute
from hub.web.schemas import DashboardSettings


async def dashboard_settings(req: ApiRequest) -> DashboardSettings:
    settings = req.hub.settings
    return DashboardSettings(
        map_tile_url=settings.map_tile_url or None,
        map_tile_attribution=settings.map_tile_attribution,
        map_tile_max_zoom=settings.map_tile_max_zoom,
        statuses=[s.value for s in MapStatus],
        moving_kmh=MOVING_KMH,
        offline_timeout_s=settings.offline_timeout_s,
        min_stop_s=DEFAULT_MIN_STOP_S,
        stop_radius_m=STOP_RADIUS_M,
        stops_max_days=MAX_RANGE_DAYS,
        server_time=req.hub.clock.now(),
    )


ROUTES = [
    ApiRoute("GET", "/api/dashboard-settings", dashboard_settings, Access.USER,
             "The map's tile source and the thresholds of the map status", "dashboard",
             response=DashboardSettings,
             description="A page computes a live position's map `status` as "
             "`GET /api/devices/latest` does: `offline` when `server_time`'s clock minus "
             "the fix time is above the device's `offline_timeout_s`, else `moving` when "
             "`speed_kmh` is above `moving_kmh`, else `ignition_off` when `ignition` is "
             "false, else `stopped` (`no_data` without a position).  Compare "
             "`server_time` with the browser's clock to allow for its skew."),
]  # fmt: skip
