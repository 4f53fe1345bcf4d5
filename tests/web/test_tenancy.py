"""Clients, users, tokens and "who am I"."""

from __future__ import annotations

from typing import Any

from harness import Web


def error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


async def test_clients_are_the_administrators(web: Web) -> None:
    r = await web.post("admin", "/api/clients", json={"name": "Client C"})
    assert r.status_code == 201, r.text
    c = r.json()
    names = [x["name"] for x in (await web.get("admin", "/api/clients")).json()["clients"]]
    assert names == ["Client A", "Client B", "Client C"]
    err = error(await web.post("admin", "/api/clients", json={"name": "Client C"}), 409)
    assert err["field"] == "name"
    error(await web.post("admin", "/api/clients", json={"name": " "}), 422)

    # deleting a client stops its connections' runners
    r = await web.post(
        "admin",
        "/api/connections",
        json={
            "client_id": c["id"],
            "kind": "plain",
            "label": "Feed",
            "credentials": {"api_key": "k"},
        },
    )
    conn_id = r.json()["id"]
    assert conn_id in web.hub.runners
    assert (await web.delete("admin", f"/api/clients/{c['id']}")).status_code == 204
    assert conn_id not in web.hub.runners
    error(await web.get("admin", f"/api/connections/{conn_id}"), 404)
    error(await web.delete("admin", f"/api/clients/{c['id']}"), 404)


async def test_users_of_a_client(web: Web) -> None:
    r = await web.post("a_mgr", "/api/users", json={"name": "val", "role": "viewer"})
    assert r.status_code == 201, r.text
    assert r.json()["client_id"] == web.clients["a"] and r.json()["role"] == "viewer"
    err = error(await web.post("a_mgr", "/api/users", json={"name": "boss", "role": "admin"}), 403)
    assert err["field"] == "role"
    r = await web.post(
        "a_mgr", "/api/users", json={"name": "spy", "role": "viewer", "client_id": web.clients["b"]}
    )
    assert error(r, 403)["field"] == "client_id"
    error(await web.post("a_mgr", "/api/users", json={"name": "val"}), 409)
    err = error(await web.post("a_mgr", "/api/users", json={"name": "x", "role": "owner"}), 422)
    assert err["field"] == "role"

    names = {u["name"] for u in (await web.get("a_mgr", "/api/users")).json()["users"]}
    assert names == {"a_mgr", "a_view", "val"}
    everyone = {u["name"] for u in (await web.get("admin", "/api/users")).json()["users"]}
    assert everyone == {"admin", "a_mgr", "a_view", "b_mgr", "val"}
    r = await web.get("admin", "/api/users", params={"client_id": web.clients["b"]})
    assert [u["name"] for u in r.json()["users"]] == ["b_mgr"]

    r = await web.post("admin", "/api/users", json={"name": "root2", "role": "admin"})
    assert r.status_code == 201 and r.json()["client_id"] is None
    err = error(await web.post("admin", "/api/users", json={"name": "m", "role": "manager"}), 422)
    assert err["field"] == "client_id"
    r = await web.post(
        "admin", "/api/users", json={"name": "r", "role": "admin", "client_id": web.clients["a"]}
    )
    assert error(r, 422)["field"] == "role"


async def test_tokens(web: Web) -> None:
    r = await web.post("a_view", "/api/tokens", json={"name": "laptop"})
    assert r.status_code == 201, r.text
    created = r.json()
    plain = created["token"]
    assert plain.startswith("gph_") and created["prefix"] == plain[:10]
    assert created["user_id"] == web.users["a_view"]

    me = await web.http.get("/api/me", headers={"Authorization": f"Bearer {plain}"})
    assert me.json()["user"]["name"] == "a_view"

    listed = (await web.get("a_view", "/api/tokens")).json()["tokens"]
    assert {t["name"] for t in listed} == {"test", "laptop"}
    assert plain not in str(listed) and all("token" not in t for t in listed)
    assert all("hash" not in key for t in listed for key in t)

    # a viewer acts on its own tokens only; a manager also on its client's users'
    r = await web.post("a_view", "/api/tokens", json={"user_id": web.users["a_mgr"]})
    assert error(r, 403)["field"] == "user_id"
    r = await web.get("a_view", "/api/tokens", params={"user_id": web.users["a_mgr"]})
    error(r, 403)
    r = await web.post("a_mgr", "/api/tokens", json={"user_id": web.users["a_view"], "name": "x"})
    assert r.status_code == 201 and r.json()["user_id"] == web.users["a_view"]
    r = await web.get("a_mgr", "/api/tokens", params={"user_id": web.users["a_view"]})
    assert len(r.json()["tokens"]) == 3
    error(await web.post("b_mgr", "/api/tokens", json={"user_id": web.users["a_view"]}), 404)
    error(await web.get("b_mgr", "/api/tokens", params={"user_id": web.users["a_view"]}), 404)
    r = await web.post("admin", "/api/tokens", json={"user_id": web.users["b_mgr"]})
    assert r.status_code == 201

    mgr_token = (await web.get("a_mgr", "/api/tokens")).json()["tokens"][0]["id"]
    error(await web.delete("a_view", f"/api/tokens/{mgr_token}"), 404)
    error(await web.delete("b_mgr", f"/api/tokens/{created['id']}"), 404)
    assert (await web.delete("a_view", f"/api/tokens/{created['id']}")).status_code == 204
    gone = await web.http.get("/api/me", headers={"Authorization": f"Bearer {plain}"})
    assert error(gone, 401)["code"] == "invalid_token"


async def test_me(web: Web) -> None:
    r = await web.get("a_view", "/api/me")
    me = r.json()
    assert me["user"]["name"] == "a_view" and me["user"]["role"] == "viewer"
    assert me["client"]["name"] == "Client A"
    assert me["can_write"] is False and me["is_admin"] is False
    admin = (await web.get("admin", "/api/me")).json()
    assert admin["client"] is None and admin["is_admin"] is True


async def test_bad_authorization_headers(web: Web) -> None:
    for header in (
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        f"Token {web.tokens['admin']}",
        "Bearer x y",
    ):
        r = await web.http.get("/api/me", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.headers["www-authenticate"].startswith("Bearer")
    r = await web.http.get("/api/me", headers={"Authorization": f"bearer {web.tokens['admin']}"})
    assert r.status_code == 200


async def test_client_retention(web: Web) -> None:
    r = await web.post(
        "admin", "/api/clients", json={"name": "Client R", "positions_retention_days": 90}
    )
    assert r.status_code == 201, r.text
    c = r.json()
    assert (c["positions_retention_days"], c["alerts_retention_days"]) == (90, None)
    path = f"/api/clients/{c['id']}"
    r = await web.patch("admin", path, json={"alerts_retention_days": 365})
    assert r.status_code == 200, r.text
    assert (r.json()["positions_retention_days"], r.json()["alerts_retention_days"]) == (90, 365)
    r = await web.patch("admin", path, json={"timezone": "America/Guatemala"})
    assert r.json()["positions_retention_days"] == 90  # what is not given stays
    r = await web.patch("admin", path, json={"positions_retention_days": None})  # forever
    assert (r.json()["positions_retention_days"], r.json()["alerts_retention_days"]) == (None, 365)
    for bad in (0, -5, 36501, "30", True, 2.5, 2**64):
        err = error(await web.patch("admin", path, json={"alerts_retention_days": bad}), 422)
        assert err["field"] == "alerts_retention_days", (bad, err)
        err = error(
            await web.post("admin", "/api/clients",
                           json={"name": f"bad {bad}", "positions_retention_days": bad}),
            422,
        )  # fmt: skip
        assert err["field"] == "positions_retention_days", (bad, err)
    listed = {x["name"]: x for x in (await web.get("admin", "/api/clients")).json()["clients"]}
    assert listed["Client R"]["alerts_retention_days"] == 365 and "bad 0" not in listed
    error(await web.patch("a_mgr", path, json={"alerts_retention_days": 7}), 403)
    me = (await web.get("a_mgr", "/api/me")).json()
    assert me["client"]["positions_retention_days"] is None  # a client's users can read it

    doc = (await web.get(None, "/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    field = schemas["ClientUpdate"]["properties"]["positions_retention_days"]
    assert "latest" in field["description"]
    assert any(o.get("minimum") == 1 and o.get("maximum") == 36500 for o in field["anyOf"])
    assert "alerts_retention_days" in schemas["ClientOut"]["required"]
