"""The plugin as the hub loads it, and what its README promises."""

from __future__ import annotations

import gpshub_tracking3d
from gpshub_tracking3d import Tracking3DSource
from hub.testing import PluginPackageChecks


class TestPackage(PluginPackageChecks, package=gpshub_tracking3d, sources=[Tracking3DSource]):
    pass


README = TestPackage.readme_text()


def test_the_cadence_is_adaptive() -> None:
    cadence = Tracking3DSource.cadence
    assert (cadence.active, cadence.quiet, cadence.active_window) == (30.0, 120.0, 600.0)


def test_readme_states_the_request_formula_and_recent_activity() -> None:
    assert "1 position page + the reading pages since the last poll" in README
    assert "3 km/h" in README and "10 minutes" in README
