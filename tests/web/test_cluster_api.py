"""``GET /api/cluster``: the processes on the database, their heartbeat and leases; on
SQLite this process alone.  Who may call it: ``test_authz.py``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from harness import running_web

from hub.lease_store import MAINTENANCE, LeaseStore, NodeRow
from hub.secrets import SecretBox
from hub.testing import make_hub


async def test_on_sqlite_the_cluster_is_this_process(tmp_path: Path) -> None:
    async with running_web(tmp_path) as web:
        r = await web.get("admin", "/api/cluster")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["shared"] is False and body["lease_s"] == 30.0
        (node,) = body["nodes"]
        assert node["this"] and node["alive"] and node["node_id"] == web.hub.cluster.node.node_id
        assert {x["resource"] for x in node["leases"]} == {MAINTENANCE}
        doc = (await web.get(None, "/openapi.json")).json()
        assert "ClusterOut" in str(doc["paths"]["/api/cluster"]["get"]["responses"]["200"])


@pytest.mark.postgres
async def test_on_postgresql_every_node_and_its_leases(pg_url: str, tmp_path: Path) -> None:
    hub = make_hub(tmp_path, db_url=pg_url, secret_key=SecretBox.generate_key().encode())
    async with running_web(tmp_path, hub=hub) as web:
        now = datetime.now(UTC)
        leases = LeaseStore(hub.store.engine, 30.0)
        leases.round(NodeRow("other", "elsewhere", 42, now), now)
        leases.round(
            NodeRow("gone", "lost", 7, now - timedelta(hours=1)), now - timedelta(minutes=5)
        )
        r = await web.get("admin", "/api/cluster")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["shared"] is True
        nodes = {n["node_id"]: n for n in body["nodes"]}
        me = nodes[hub.cluster.node.node_id]
        assert me["this"] and me["alive"] and me["pid"] > 0
        assert [x["resource"] for x in me["leases"]] == [MAINTENANCE]  # the first took it
        assert nodes["other"]["alive"] and not nodes["other"]["this"]
        assert (nodes["other"]["host"], nodes["other"]["pid"]) == ("elsewhere", 42)
        assert nodes["other"]["leases"] == []
        assert nodes["gone"]["alive"] is False
