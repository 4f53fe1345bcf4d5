"""A hub with a client, devices and sinks for the delivery tests, and ways to feed it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio

from hub.clock import TrioClock
from hub.fix import PositionFix
from hub.positions import IngestItem
from hub.signing import generate_secret
from hub.testing import EPOCH, make_hub

LOOPBACK = ("127.0.0.0/8",)


@dataclass
class World:
    hub: Any
    client: int
    devices: list[int]
    owner: Any
    sent: dict[int, int] = field(default_factory=dict)  # fixes fed per device

    def sink(
        self,
        url: str,
        *,
        kind: str = "startrack-relay",
        format: str = "startrack-json1",
        purpose: str = "locations",
        signing: bool = False,
        headers: dict[str, str] | None = None,
        **settings: Any,
    ) -> int:
        secrets: dict[str, Any] = {"headers": headers or {}}
        if signing:
            secrets["signing"] = [{"secret": generate_secret(), "until": None}]
        row = self.hub.store.sinks.create(
            self.client,
            name=f"{format} to {url}",
            kind=kind,
            format=format,
            purpose=purpose,
            settings={"url": url, **settings},
            secrets=secrets,
        )
        return int(row.id)

    def alerts_sink(self, url: str, **kw: Any) -> int:
        return self.sink(
            url, kind="startrack-alerts", format="startrack-alert", purpose="alerts", **kw
        )

    def ignition_rule(self) -> int:
        rule = self.hub.store.rules.create(
            self.client, self.owner, "ignition on", "ignitionOn", webhook=True
        )
        return int(rule.id)

    async def feed(
        self, count: int, *, step_s: float = 10.0, devices: list[int] | None = None
    ) -> int:
        """``count`` fixes per device through the pipeline, continuing each device's
        track; the ignition toggles every fourth fix (so ignition rules fire)."""
        items = []
        for d in devices or self.devices:
            start = self.sent.get(d, 0)
            for i in range(start, start + count):
                items.append(
                    IngestItem(
                        d,
                        None,
                        PositionFix(
                            fix_time=EPOCH + timedelta(seconds=step_s * i),
                            lat=14.6 + 0.0005 * i,
                            lon=-90.5 - 0.0005 * d,
                            speed_kmh=30.0 + i % 7,
                            course_deg=float(i * 13 % 360),
                            ignition=(i // 4) % 2 == 0,
                            source_ip="198.51.100.7",
                            source_port=5027,
                        ),
                    )
                )
            self.sent[d] = start + count
        result = await self.hub.pipeline.submit(items)
        return len(result.inserted)

    def stats(self, sink_id: int) -> dict[str, int]:
        store = self.hub.store.sinks
        return store.stats(store.get(sink_id))

    def restart(self, store: Any = None) -> Any:
        """A new hub on the same data (or on ``store``), clock and settings: a restart
        (stop the old one first)."""
        old = self.hub
        self.hub = old.__class__(
            store or old.store, old.registry, old.plugins, clock=old.clock, settings=old.settings
        )
        return self.hub


def world(tmp_path: Path, *, devices: int = 3, **settings: Any) -> World:
    settings.setdefault("outbound_allow_networks", LOOPBACK)
    settings.setdefault("status_check_s", 3600.0)
    settings.setdefault("delivery_poll_s", 60.0)  # writes wake the workers anyway
    hub = make_hub(tmp_path, clock=TrioClock(EPOCH), use_entry_points=True, **settings)
    store = hub.store
    client = store.create_client("ACME").id
    store.update_client(client, timezone="America/Guatemala")
    owner = store.create_user("Jose Perez", "manager", client)
    ids = [
        store.create_device(
            client,
            name=f"truck {i}",
            license_plate=f"P-{i}00ABC",
            imei=f"35874105030248{i}",
            remote_id=f"unit-{i}",
        ).id
        for i in range(devices)
    ]
    return World(hub, client, ids, owner)


async def until(check: Callable[[], bool], timeout: float = 600.0, step: float = 2.0) -> None:
    """Wait (in the test's clock) until ``check()`` holds."""
    with trio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 - polls the store and the receiver
            await trio.sleep(step)
