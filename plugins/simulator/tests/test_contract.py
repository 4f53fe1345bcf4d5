"""The deep contract (``hub.contract``) for a source without an upstream, run against
the simulator."""

from __future__ import annotations

from gpshub_simulator import DEMO_ROUTE, SimulatorSource
from hub.contract import BaseSourceContract


class TestSimulatorContract(BaseSourceContract):
    source_class = SimulatorSource
    good_credentials = {"waypoints": DEMO_ROUTE}
    bad_credentials = {"waypoints": "0,0\n91,0"}
    device_ids = ("sim-1", "sim-2")
