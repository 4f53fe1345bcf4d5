"""Liveness and readiness probes: unauthenticated by design, they expose no data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from starlette.responses import JSONResponse

from hub.web.auth import Access
from hub.web.routing import ApiRequest, ApiRoute
from hub.web.schemas import Health, Readiness

if TYPE_CHECKING:
    from hub.core import Hub


def _database_answers(hub: Hub) -> bool:
    try:
        with hub.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception:
        return False
    return True


async def healthz(req: ApiRequest) -> Health:
    return Health(status="ok")


async def readyz(req: ApiRequest) -> JSONResponse:
    checks = {
        "database": "ok" if await req.run(_database_answers, req.hub) else "unreachable",
        "hub": "ok" if req.hub.running else "stopped",
    }
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)


TAG = "health"
ROUTES = [
    ApiRoute("GET", "/healthz", healthz, Access.PUBLIC, "Liveness: the process answers", TAG,
             response=Health),
    ApiRoute("GET", "/readyz", readyz, Access.PUBLIC,
             "Readiness: the database answers and the hub runs", TAG, response=Readiness,
             errors=(503,)),
]  # fmt: skip
