"""The plugin as the hub loads it (entry point, hook, registry) and its README's claims."""

from __future__ import annotations

import math
import re

import gpshub_flespi
from gpshub_flespi import FlespiSource
from gpshub_flespi.source import FlespiOptions
from hub.source import describe_fields, url_fields
from hub.testing import PluginPackageChecks


class TestPackage(PluginPackageChecks, package=gpshub_flespi, sources=[FlespiSource]):
    readme_in_field_order = False  # timeout_s, inherited, comes first in the model


README = TestPackage.readme_text()


def test_declares_what_the_hub_needs() -> None:
    assert FlespiSource.kind == "flespi"
    assert FlespiSource.title == "Flespi Cloud"
    assert FlespiSource.supports_browse is True
    assert FlespiSource.cadence.active == 30.0
    (token,) = describe_fields(FlespiSource.Credentials)
    assert (token.name, token.label, token.required, token.secret) == ("token", "Token", True, True)
    assert token.description == "Standard or ACL token with read access to gw/devices"
    assert url_fields(FlespiOptions) == ["base_url"]


def test_option_defaults() -> None:
    opts = FlespiSource.parse_options(None)
    assert opts.model_dump() == {
        "base_url": None,
        "late_window_s": 300.0,
        "backfill_s": 3600.0,
        "max_lookback_s": 86400.0,
        "batch_size": 250,
        "page_size": 10000,
        "max_extra_pages": 20,
        "sync_every_s": 600.0,
        "timeout_s": 30.0,
    }
    assert FlespiSource.parse_options({"base_url": "http://proxy.example:8080/"}).base_url == (
        "http://proxy.example:8080"
    )


def test_readme_requests_per_cycle_formula() -> None:
    assert "ceil(devices / batch_size)" in README
    # the README's worked example: 1,000 devices at the default batch size
    match = re.search(r"1,000 devices[^.]*?(\d+) requests", README)
    assert match is not None
    assert int(match.group(1)) == math.ceil(1000 / 250)


def test_readme_fake_example_names_real_methods() -> None:
    from gpshub_flespi.testing import FakeFlespi

    example = README.split("```python", 1)[1].split("```", 1)[0]
    fake = FakeFlespi()
    names = set(re.findall(r"fake\.(\w+)", example))
    assert {"add_unit", "add_fix", "rate_limit", "fail", "malformed", "slow"} <= names
    for name in names:
        assert hasattr(fake, name), name
