"""The OpenAPI document is made when ``/openapi.json`` is first asked for, not at
start-up (readiness does not wait for it), and only once however many ask at once."""

from __future__ import annotations

from typing import Any

import trio
from harness import Web


async def test_the_document_is_made_once_when_first_asked_for(web: Web) -> None:
    state = web.app.state
    assert state.openapi is None  # the hub serves, the document is not made yet
    assert (await web.get(None, "/readyz")).status_code == 200
    make = state.make_openapi
    made: list[int] = []

    def counted() -> dict[str, Any]:
        made.append(1)
        return make()

    state.make_openapi = counted
    bodies: list[dict[str, Any]] = []

    async def fetch() -> None:
        r = await web.get(None, "/openapi.json")
        assert r.status_code == 200
        bodies.append(r.json())

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(fetch)
    await fetch()
    assert made == [1]
    assert len(bodies) == 6 and all(b == bodies[0] for b in bodies)
    assert bodies[0]["openapi"] == "3.1.0" and "/readyz" in bodies[0]["paths"]
