"""Expiring API tokens through the API, and what the OpenAPI document says of them and
of the failed-authentication throttle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from harness import Web

from hub.models import ApiToken


async def test_create_a_token_that_expires(web: Web) -> None:
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    r = await web.post(
        "a_view", "/api/tokens", json={"name": "ci", "expires_at": later.isoformat()}
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert datetime.fromisoformat(created["expires_at"]) == later
    listed = (await web.get("a_view", "/api/tokens")).json()["tokens"]
    assert {t["id"]: t["expires_at"] for t in listed} == {
        next(t["id"] for t in listed if t["name"] == "test"): None,
        created["id"]: created["expires_at"],
    }
    own = {"Authorization": f"Bearer {created['token']}"}
    assert (await web.http.get("/api/me", headers=own)).status_code == 200

    with web.hub.store.engine.begin() as conn:  # time passes
        conn.execute(
            sa.update(ApiToken)
            .where(ApiToken.id == created["id"])  # type: ignore[arg-type]
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    r = await web.http.get("/api/me", headers=own)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


async def test_a_bad_expiry_is_a_422_naming_it(web: Web) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for value, words in (
        (past, "in the future"),
        ("2030-01-01T00:00:00", "timezone"),
        ("9999-12-31T23:59:59-05:00", "too far"),
        ("next week", "datetime"),
    ):
        r = await web.post("a_view", "/api/tokens", json={"expires_at": value})
        assert r.status_code == 422, (value, r.text)
        error = r.json()["error"]
        assert error["field"] == "expires_at" and words in error["message"], error
    names = [t["name"] for t in (await web.get("a_view", "/api/tokens")).json()["tokens"]]
    assert names == ["test"]  # nothing half-stored


async def test_openapi_describes_expiry_and_the_throttle(web: Web) -> None:
    doc = (await web.get(None, "/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert "expires_at" in schemas["TokenOut"]["properties"]
    assert "expires_at" in schemas["TokenCreate"]["properties"]
    assert "expires_at" in schemas["TokenCreated"]["properties"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            if path == "/api/session":  # signing in is throttled, the cookie is not
                assert ("429" in responses) == (method == "post"), (method, path)
                continue
            if op.get("security") == []:  # public: no token, no throttle
                assert "429" not in responses, (method, path)
                continue
            assert "429" in responses, (method, path)
            assert "Retry-After" in responses["429"]["headers"], (method, path)
    assert "429" in doc["info"]["description"]
