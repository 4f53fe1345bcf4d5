"""Wheel build hook: the third-party browser libraries go into the wheel.

A wheel (not an editable install: ``make vendor`` serves a checkout) gets
``static/vendor/`` freshly copied from ``npm ci --ignore-scripts`` (``vendor.py``), so a
wheel never ships a stale or hand-edited copy.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class VendorHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        spec = importlib.util.spec_from_file_location("vendor", Path(self.root) / "vendor.py")
        assert spec is not None and spec.loader is not None
        vendor = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(vendor)
        vendor.npm_ci()
        vendor.copy()
