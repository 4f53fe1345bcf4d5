"""``/metrics``: who may scrape it, what it says, and the token-free ``metrics_listen``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from harness import Web, make_hub
from prometheus_client.parser import text_string_to_metric_families
from trio_websocket import ConnectionRejected, open_websocket_url

from hub.models import TokenScope

CREDS = {"username": "ann", "password": "hunter22"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition: (name, labels) → value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


async def scrape(web: Web, who: str | None = "admin") -> str:
    r = await web.get(who, "/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


async def metrics_token(web: Web) -> str:
    r = await web.post("admin", "/api/tokens", json={"name": "prometheus", "scope": "metrics"})
    assert r.status_code == 201, r.text
    assert r.json()["scope"] == "metrics"
    return str(r.json()["token"])


async def test_the_administrator_and_a_metrics_token_may_scrape(web: Web) -> None:
    device = web.device("a")
    await web.write_positions(device, 3)
    await web.write_positions(device, 3)  # the same fixes again: duplicates
    text = await scrape(web)
    assert value(text, "gpshub_positions_ingested_total") == 3
    assert value(text, "gpshub_positions_duplicate_total") == 3
    assert value(text, "gpshub_ingest_batch_seconds_count") == 2
    assert value(text, "gpshub_live_clients") == 0

    token = await metrics_token(web)
    web.tokens["metrics"] = token
    assert value(await scrape(web, "metrics"), "gpshub_positions_ingested_total") == 3
    for who in ("a_mgr", "a_view", "b_mgr"):
        r = await web.get(who, "/metrics")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", who
    assert (await web.get(None, "/metrics")).status_code == 401


async def test_a_metrics_token_may_do_nothing_else(web: Web) -> None:
    web.tokens["metrics"] = await metrics_token(web)
    for method, path in (
        ("GET", "/api/me"),
        ("GET", "/api/devices"),
        ("GET", "/api/tokens"),
        ("POST", "/api/tokens"),
        ("GET", "/api/clients"),
    ):
        r = await web.call("metrics", method, path, json={} if method == "POST" else None)
        assert r.status_code == 403, (path, r.text)
        assert "/metrics" in r.json()["error"]["message"]
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(
            web.ws_url, extra_headers=list(web.headers("metrics").items())
        ):
            pass
    assert rejected.value.status_code == 401
    tokens = (await web.get("admin", "/api/tokens")).json()["tokens"]
    assert sorted(t["scope"] for t in tokens) == ["all", "metrics"]


async def test_only_the_administrator_may_have_a_metrics_token(web: Web) -> None:
    r = await web.post("a_mgr", "/api/tokens", json={"scope": "metrics"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "scope", r.text
    r = await web.post(
        "admin", "/api/tokens", json={"scope": "metrics", "user_id": web.users["a_mgr"]}
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "scope", r.text
    r = await web.post("admin", "/api/tokens", json={"scope": "everything"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "scope", r.text


async def test_connection_series_come_with_polls_and_go_with_the_connection(web: Web) -> None:
    r = await web.post(
        "a_mgr", "/api/connections", json={"kind": "fake", "label": "Fleet", "credentials": CREDS}
    )
    cid = r.json()["id"]
    r = await web.post("a_mgr", f"/api/connections/{cid}/import", json={"upstream_ids": ["1001"]})
    assert r.status_code == 200, r.text
    ok = {"connection_id": str(cid), "kind": "fake", "outcome": "ok"}
    with trio.fail_after(120):  # against hangs only
        while not value(await scrape(web), "gpshub_polls_total", **ok):  # noqa: ASYNC110 - scrapes
            await trio.sleep(0.05)
    text = await scrape(web)
    where = {"connection_id": str(cid), "kind": "fake"}
    assert value(text, "gpshub_poll_duration_seconds_count", **where) == 1
    assert value(text, "gpshub_connection_state", **where, state="ok") == 1
    assert value(text, "gpshub_connection_state", **where, state="failing") is None

    r = await web.delete("a_mgr", f"/api/connections/{cid}")
    assert r.status_code == 204, r.text
    text = await scrape(web)
    assert f'connection_id="{cid}"' not in text


async def test_series_of_a_connection_deleted_elsewhere_go_at_the_next_scrape(web: Web) -> None:
    cid = web.connection("a")
    web.hub.metrics.observe_poll(cid, "fake", "failed", 0.25)
    assert value(await scrape(web), "gpshub_polls_total", connection_id=str(cid), kind="fake",
                 outcome="failed") == 1  # fmt: skip
    web.hub.store.delete_connection(cid)  # as another process would: the hub is not told
    assert f'connection_id="{cid}"' not in await scrape(web)


async def test_two_hubs_keep_their_own_metrics(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    one, two = make_hub(tmp_path / "one"), make_hub(tmp_path / "two")
    client = one.store.create_client("A").id or 0
    cid = one.store.create_connection(client, "fake", "x", CREDS, enabled=False).id or 0
    one.pipeline.stats.stored = 5
    one.metrics.observe_poll(cid, "fake", "ok", 0.1)
    text_one = one.metrics.render()[0].decode()
    text_two = two.metrics.render()[0].decode()
    assert value(text_one, "gpshub_positions_ingested_total") == 5
    assert value(text_two, "gpshub_positions_ingested_total") == 0
    assert "gpshub_polls_total{" in text_one and "gpshub_polls_total{" not in text_two
    for hub in (one, two):
        hub.store.close()


async def test_metrics_listen_serves_metrics_without_a_token(
    start_web: Any, tmp_path: Path
) -> None:
    hub = make_hub(tmp_path, metrics_listen="127.0.0.1:0")
    async with start_web(hub=hub) as web:
        url = web.hub.metrics.url
        assert url is not None and url.endswith("/metrics") and url != web.url + "/metrics"
        async with httpx.AsyncClient(timeout=60) as http:
            r = await http.get(url)
            assert r.status_code == 200 and "gpshub_positions_ingested_total" in r.text
            assert (await http.get(url.replace("/metrics", "/api/me"))).status_code == 404
        # the API's own /metrics still wants a token
        assert (await web.get(None, "/metrics")).status_code == 401


def test_a_metrics_token_is_stored_with_its_scope(tmp_path: Path) -> None:
    hub = make_hub(tmp_path)
    store = hub.store
    admin = store.create_user("root", "admin", None)
    row, plain = store.create_token(admin.id or 0, "prometheus", TokenScope.METRICS)
    principal = store.authenticate(plain)
    assert principal is not None and principal.token_scope == "metrics" and row.scope == "metrics"
    store.close()


async def test_openmetrics_when_asked(web: Web) -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    r = await web.http.get("/metrics", headers={**web.headers("admin"), "Accept": accept})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert "gpshub_positions_ingested_total 0" in r.text and r.text.endswith("# EOF\n")
