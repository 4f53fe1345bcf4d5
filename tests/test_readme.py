"""The README's worked examples, run against a served hub set up like the quick start's
demo (so the ids in the examples are the ids the hub gives).

An example is a ``<!-- example: STATUS -->`` comment, a ``sh`` block with one ``curl``
command, then a ``json`` block with the answer.  The request body must be valid JSON and
the hub must answer it with STATUS.  The answer may be shortened: an object shows some
of the keys, ``…`` ends a list that goes on, a string value ``"…"`` stands for any value
and ``"text…"`` for any text that starts so.  Everything it does show must match.  The
``<!-- alert object -->`` block must have the keys of a real alert of its type.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from hub.cli import setup_demo
from hub.fix import PositionFix
from hub.positions import IngestItem
from hub.testing import make_hub
from hub.web import serve
from hub.web.schemas import AlertOut

README = Path(__file__).parents[1] / "README.md"
BASE = "http://127.0.0.1:8080"
EXAMPLE = re.compile(
    r"<!-- example: (\d{3}) -->\s*```sh\n(?P<curl>.*?)```\s*```json\n(?P<answer>.*?)```", re.S
)
ALERT = re.compile(r"<!-- alert object -->\s*```json\n(.*?)```", re.S)
MORE = "<<more>>"
ANY = "…"


@dataclass
class Example:
    status: int
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    answer: Any
    line: int

    def __str__(self) -> str:
        return f"README.md line {self.line}: {self.method} {self.path}"


def parse_curl(text: str) -> tuple[str, str, dict[str, str], Any]:
    words = shlex.split(text.replace("\\\n", " "))
    assert words[0] == "curl", text
    method, url, body = "GET", "", None
    headers: dict[str, str] = {}
    rest = iter(words[1:])
    for word in rest:
        if word == "-X":
            method = next(rest)
        elif word == "-H":
            name, value = next(rest).split(":", 1)
            headers[name.strip()] = value.strip()
        elif word == "-d":
            body = json.loads(next(rest))  # the README's bodies are valid JSON
            method = "POST" if method == "GET" else method
        elif word.startswith(BASE):
            url = word
        else:
            raise AssertionError(f"an argument the test does not know: {word!r}")
    parts = urlsplit(url)
    return method, parts.path + (f"?{parts.query}" if parts.query else ""), headers, body


def loose_json(text: str) -> Any:
    """A shortened answer: ``, …]`` ends a list that goes on; ``, …}`` some more keys."""
    text = re.sub(r",\s*…\s*\]", f', "{MORE}"]', text)
    text = re.sub(r",\s*…\s*\}", "}", text)
    return json.loads(text)


def examples() -> list[Example]:
    text = README.read_text()
    found = []
    for m in EXAMPLE.finditer(text):
        method, path, headers, body = parse_curl(m["curl"])
        line = text[: m.start()].count("\n") + 1
        found.append(Example(int(m[1]), method, path, headers, body, loose_json(m["answer"]), line))
    return found


def mismatch(shown: Any, got: Any, where: str = "") -> str | None:
    """Where ``got`` differs from what the README shows, or ``None``."""
    if isinstance(shown, str) and shown.endswith(ANY):
        if shown == ANY or (isinstance(got, str) and got.startswith(shown[:-1])):
            return None
        return f"{where or 'answer'}: {got!r} does not start with {shown[:-1]!r}"
    if isinstance(shown, dict):
        if not isinstance(got, dict):
            return f"{where}: {got!r} is not an object"
        for key, value in shown.items():
            if key not in got:
                return f"{where}.{key}: not in the answer (its keys: {sorted(got)})"
            problem = mismatch(value, got[key], f"{where}.{key}")
            if problem:
                return problem
        return None
    if isinstance(shown, list):
        goes_on = bool(shown) and shown[-1] == MORE
        items = shown[:-1] if goes_on else shown
        if not isinstance(got, list) or len(got) < len(items):
            return f"{where}: {got!r} is shorter than the README's list"
        if not goes_on and len(got) != len(items):
            return f"{where}: {len(got)} items, the README shows {len(items)}"
        for i, (a, b) in enumerate(zip(items, got, strict=False)):
            problem = mismatch(a, b, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if shown != got or isinstance(shown, bool) != isinstance(got, bool):
        return f"{where}: {got!r}, the README shows {shown!r}"
    return None


def times(value: Any) -> list[str]:
    """The ``…_at`` and ``…_time`` texts in an answer (the README: "UTC with a Z")."""
    if isinstance(value, list):
        return [t for v in value for t in times(v)]
    if not isinstance(value, dict):
        return []
    found = [v for k, v in value.items() if k.endswith(("_at", "_time")) and isinstance(v, str)]
    return found + times(list(value.values()))


def test_the_readme_has_an_example_for_each_object() -> None:
    created = {e.path for e in examples() if e.method == "POST" and e.status == 201}
    assert {"/api/connections", "/api/devices", "/api/geofences", "/api/rules"} <= created
    assert all(e.headers.get("Authorization") == "Bearer $TOKEN" for e in examples())


def test_the_comparison_can_fail() -> None:
    assert mismatch({"a": 1}, {"a": 1, "b": 2}) is None
    assert mismatch({"a": 1}, {"a": 2}) and mismatch({"c": 1}, {"a": 1})
    assert mismatch(["x", MORE], ["x", "y"]) is None and mismatch(["x"], ["x", "y"])
    assert mismatch("ab…", "abc") is None and mismatch("ab…", "b")
    assert mismatch(True, 1) and mismatch(1, 1.0) is None


async def first_position(url: str, token: str) -> None:
    """Wait until the demo vehicle has a position (the simulator's first poll)."""
    headers = [("Authorization", f"Bearer {token}")]
    async with open_websocket_url(url.replace("http://", "ws://") + "/api/live",
                                  extra_headers=headers) as ws:  # fmt: skip
        while not any(m["type"] == "position" for m in json.loads(await ws.get_message())):
            pass


def next_weekday_noon(now: datetime) -> datetime:
    """A Wednesday noon (UTC) more than a week from ``now``: inside the example rule's
    schedule, and later than any fix the simulator gives meanwhile."""
    day = (now + timedelta(days=8)).replace(hour=12, minute=0, second=0, microsecond=0)
    return day + timedelta(days=(2 - day.weekday()) % 7)


async def enter_the_depot(hub: Any, device_id: int, lon: float, lat: float) -> None:
    start = next_weekday_noon(datetime.now(UTC))
    fixes = [(0, lat + 0.006), (60, lat), (120, lat)]  # outside, then two fixes inside
    items = [
        IngestItem(device_id, None, PositionFix(start + timedelta(seconds=s), y, lon))
        for s, y in fixes
    ]
    await hub.pipeline.submit(items)


@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_the_readme_examples_run_against_a_served_hub(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, use_entry_points=True)
    if "simulator" not in hub.registry.sources:
        pytest.skip("the demo needs gpshub-simulator installed")
    token = hub.store.bootstrap_admin()
    assert token is not None
    setup_demo(hub)
    found = examples()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            functools.partial(hub.run, serve=functools.partial(serve, hub, "127.0.0.1", 0))
        )
        try:
            with trio.fail_after(60):  # against a hang only
                await first_position(url, token)
            async with httpx.AsyncClient(base_url=url, timeout=60) as http:
                for example in found:
                    headers = {k: v.replace("$TOKEN", token) for k, v in example.headers.items()}
                    r = await http.request(
                        example.method, example.path, headers=headers, json=example.body
                    )
                    assert r.status_code == example.status, f"{example}: {r.text}"
                    problem = mismatch(example.answer, r.json())
                    assert problem is None, f"{example}: {problem}"
                    assert all(t.endswith("Z") for t in times(r.json())), f"{example}: {r.text}"
                fence = hub.store.geofences.list(1)[0]
                lon, lat = fence.geometry["coordinates"]
                van = next(d for d in hub.store.list_devices(1) if d.name == "Van 7")
                await enter_the_depot(hub, van.id or 0, lon, lat)
                r = await http.get(
                    "/api/alerts",
                    params={"device_id": van.id},
                    headers={"Authorization": f"Bearer {token}"},
                )
                real = r.json()["alerts"]
        finally:
            hub.shutdown()
    hub.store.close()
    (block,) = ALERT.findall(README.read_text())
    (shown,) = json.loads(block)["alerts"]
    AlertOut.model_validate(shown)
    assert [a["message_id"] for a in real] == [shown["message_id"]]
    assert sorted(shown) == sorted(real[0]), "the README's alert object has other keys"
