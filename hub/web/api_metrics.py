"""``GET /metrics``: the hub's Prometheus metrics (see ``hub.metrics``).

On the API's address it needs the administrator's token, or better a token of the
administrator's created with scope ``metrics`` (it may call nothing else).  With the
``metrics_listen`` setting the hub also serves ``/metrics`` alone on another address,
without a token, for a Prometheus server on the same host or a trusted network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.blocking import run_blocking
from hub.web.auth import Access
from hub.web.routing import ApiRequest, ApiRoute

if TYPE_CHECKING:
    from hub.core import Hub


async def _render(hub: Hub, accept: str | None) -> Response:
    body, content_type = await run_blocking(hub.metrics.render, accept)
    return Response(body, headers={"content-type": content_type})


async def metrics(req: ApiRequest) -> Response:
    return await _render(req.hub, req.request.headers.get("accept"))


def metrics_app(hub: Hub) -> Starlette:
    """The application of the ``metrics_listen`` address: ``/metrics`` and nothing else,
    without a token."""

    async def endpoint(request: Request) -> Response:
        return await _render(hub, request.headers.get("accept"))

    return Starlette(routes=[Route("/metrics", endpoint, methods=["GET"])])


TAG = "operations"
ROUTES = [
    ApiRoute("GET", "/metrics", metrics, Access.METRICS, "Prometheus metrics", TAG,
             media_types=("text/plain",),
             description="The hub's metrics in the Prometheus text format (OpenMetrics when "
             "the Accept header asks for it). The README's Metrics section lists them."),
]  # fmt: skip
