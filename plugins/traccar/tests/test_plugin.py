"""The plugin as the hub loads it, and what its README promises."""

from __future__ import annotations

import math
import re

import gpshub_traccar
from gpshub_traccar import TraccarSource
from gpshub_traccar.source import MAX_BATCH
from hub.testing import PluginPackageChecks


class TestPackage(PluginPackageChecks, package=gpshub_traccar, sources=[TraccarSource]):
    pass


README = TestPackage.readme_text()


def test_readme_states_the_request_formula_and_the_batch_limit() -> None:
    assert "ceil(devices / batch_size)" in README
    assert f"at most {MAX_BATCH}" in README
    match = re.search(
        r"(\d[\d,]*) devices with the default `batch_size` cost (\d+) requests", README
    )
    assert match is not None
    devices, requests = int(match.group(1).replace(",", "")), int(match.group(2))
    assert requests == math.ceil(devices / 200)


def test_readme_warns_about_disabled_reports() -> None:
    assert "disableReports" in README and "missed" in README
