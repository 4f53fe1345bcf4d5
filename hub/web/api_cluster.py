"""``GET /api/cluster``: the hub processes sharing the database, and what each runs
(``hub.cluster``)."""

from __future__ import annotations

from hub.web.auth import Access
from hub.web.routing import ApiRequest, ApiRoute
from hub.web.schemas import ClusterOut


async def cluster(req: ApiRequest) -> ClusterOut:
    hub = req.hub
    nodes = await hub.cluster.describe()
    me = hub.cluster.node.node_id
    return ClusterOut.model_validate(
        {
            "shared": hub.cluster.shared,
            "lease_s": hub.settings.lease_s,
            "nodes": [{**n, "this": n["node_id"] == me} for n in nodes],
        }
    )


TAG = "operations"
ROUTES = [
    ApiRoute("GET", "/api/cluster", cluster, Access.ADMIN,
             "The hub processes and what each holds", TAG, response=ClusterOut,
             description="Every process known on the database (PostgreSQL: those whose "
             "heartbeat is recent are alive; dead ones are listed for an hour), with the "
             "leases it holds: the connections it polls, the sinks it delivers to and "
             "whether it runs the maintenance. On SQLite: this process alone, holding "
             "everything it runs."),
]  # fmt: skip
