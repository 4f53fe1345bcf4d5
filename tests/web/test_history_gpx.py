"""The history export as GPX 1.1: structure, order of elements, escaping, streaming."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from harness import T0, Web

from hub.exports import GPX_NS, GPX_TPX_NS
from hub.web import api_history

G = f"{{{GPX_NS}}}"
X = f"{{{GPX_TPX_NS}}}"
# the children a GPX 1.1 wptType may have, in the order its schema requires
WPT_ORDER = ["ele", "time", "magvar", "geoidheight", "name", "cmt", "desc", "src", "link",
             "sym", "type", "fix", "sat", "hdop", "vdop", "pdop", "ageofdgpsdata", "dgpsid",
             "extensions"]  # fmt: skip


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


async def test_gpx_export(web: Web) -> None:
    device = web.device("a", name='Van <7> & "Ana\'s"')
    await web.write_positions(
        device, 3, altitude_m=1500.5, speed_kmh=36.0, course_deg=360.0, satellites=9
    )
    await web.write_positions(device, 1, start=T0 + timedelta(minutes=5))  # no speed nor height
    path = f"/api/devices/{device}/positions"
    r = await web.get("a_view", path, params={"format": "gpx"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/gpx+xml")
    assert (
        r.headers["content-disposition"] == f'attachment; filename="device-{device}-positions.gpx"'
    )
    assert r.text.startswith('<?xml version="1.0" encoding="UTF-8"?>')

    root = ET.fromstring(r.content)
    assert root.tag == f"{G}gpx" and root.get("version") == "1.1" and root.get("creator")
    assert [local(c.tag) for c in root] == ["metadata", "trk"]  # metadata comes first
    assert root.find(f"{G}metadata/{G}name").text == 'Van <7> & "Ana\'s"'
    trk = root.find(f"{G}trk")
    assert [local(c.tag) for c in trk] == ["name", "trkseg"]
    assert trk.find(f"{G}name").text == 'Van <7> & "Ana\'s"'
    points = trk.findall(f"{G}trkseg/{G}trkpt")
    assert len(points) == 4
    assert len(trk.findall(f"{G}trkseg")) == 1

    first = points[0]
    assert float(first.get("lat")) == 14.6 and float(first.get("lon")) == -90.5
    children = [local(c.tag) for c in first]
    assert children == ["ele", "time", "sat", "extensions"]
    assert first.find(f"{G}ele").text == "1500.5"
    assert first.find(f"{G}time").text == "2026-03-01T12:00:00Z"
    assert first.find(f"{G}sat").text == "9"
    ext = first.find(f"{G}extensions/{X}TrackPointExtension")
    assert [local(c.tag) for c in ext] == ["speed", "course"]  # the order of its schema
    assert float(ext.find(f"{X}speed").text) == 10.0  # m/s
    assert float(ext.find(f"{X}course").text) == 0.0  # 360 is 0: DegreesType is [0, 360)

    bare = points[3]
    assert [local(c.tag) for c in bare] == ["time"]
    assert bare.find(f"{G}time").text == "2026-03-01T12:05:00Z"
    for point in points:  # every point keeps the schema's order
        names = [local(c.tag) for c in point]
        assert names == sorted(names, key=WPT_ORDER.index)
    times = [p.find(f"{G}time").text for p in points]
    assert times == sorted(times)

    # the range applies, and an empty one is still a valid document
    r = await web.get(
        "a_view",
        path,
        params={"format": "gpx", "from": "2026-03-01T12:01:00Z", "to": "2026-03-01T12:02:00Z"},
    )
    assert len(ET.fromstring(r.content).findall(f"{G}trk/{G}trkseg/{G}trkpt")) == 1
    r = await web.get("a_view", path, params={"format": "gpx", "from": "2030-01-01T00:00:00Z"})
    empty = ET.fromstring(r.content)
    assert empty.find(f"{G}trk/{G}trkseg") is not None
    assert empty.findall(f"{G}trk/{G}trkseg/{G}trkpt") == []
    assert (await web.get("b_mgr", path, params={"format": "gpx"})).status_code == 404


async def test_gpx_streams_every_page(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_history, "EXPORT_PAGE", 7)
    device = web.device("a")
    await web.write_positions(device, 20, speed_kmh=10.0)
    r = await web.get("a_view", f"/api/devices/{device}/positions", params={"format": "gpx"})
    points = ET.fromstring(r.content).findall(f"{G}trk/{G}trkseg/{G}trkpt")
    assert len(points) == 20
    assert len({p.find(f"{G}time").text for p in points}) == 20
