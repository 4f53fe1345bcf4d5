"""The plugin as the hub loads it, and what its README promises."""

from __future__ import annotations

import math

import gpshub_gpsserver
from gpshub_gpsserver import HOSTED_URL, GpsServerSource
from hub.testing import PluginPackageChecks


class TestPackage(PluginPackageChecks, package=gpshub_gpsserver, sources=[GpsServerSource]):
    readme_says_required = False  # "yes, without an API key"


README = TestPackage.readme_text()


def test_readme_names_the_hosted_service() -> None:
    assert HOSTED_URL in README


def test_readme_states_the_request_formula_and_the_budget_arithmetic() -> None:
    assert "1 + devices with new data" in README
    assert "1 + units" in README
    assert "inferred" in README.lower()
    budget = GpsServerSource.Options().max_requests_per_poll  # type: ignore[attr-defined]
    cadence = GpsServerSource.cadence.active
    histories = budget - 1  # the locations call takes one
    polls = math.ceil(1000 / histories)
    assert f"at most {budget} requests per {cadence:.0f}-second poll" in README
    assert f"{budget / cadence:g} requests/s, {budget * 86_400 / cadence:,.0f} a day" in README
    assert f"up to {histories} histories are fetched per poll" in README
    assert f"⌈1000 / {histories}⌉ = {polls} polls" in README
    assert f"{polls} × {cadence:.0f} s = {polls * cadence / 60:g} minutes late" in README
