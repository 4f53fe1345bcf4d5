"""The checks every gpshub source must pass, run against the simulator."""

from __future__ import annotations

from typing import Any, ClassVar

from gpshub_simulator import DEMO_ROUTE, SimulatorSource
from hub.source import DeviceRef
from hub.testing import SourceContract


class TestSimulatorSourceContract(SourceContract):
    source_class = SimulatorSource
    good_credentials: ClassVar[dict[str, Any]] = {"waypoints": DEMO_ROUTE}
    bad_credentials: ClassVar[dict[str, Any]] = {"waypoints": "0,0\n91,0"}
    devices: ClassVar[list[DeviceRef]] = [DeviceRef(1, "sim-1"), DeviceRef(2, "sim-2")]
