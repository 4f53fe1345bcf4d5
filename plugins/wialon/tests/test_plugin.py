"""The plugin as the hub loads it, its form fields, and what its README claims."""

from __future__ import annotations

import re

import pytest

import gpshub_wialon
from gpshub_wialon import WialonSource
from gpshub_wialon import protocol as p
from gpshub_wialon.source import MAX_BATCH, MAX_PAGE
from hub.errors import BadConfig
from hub.source import describe_fields, url_fields
from hub.testing import PluginPackageChecks


class TestPackage(PluginPackageChecks, package=gpshub_wialon, sources=[WialonSource]):
    readme_quotes_descriptions = False  # the README says more of server_url


README = TestPackage.readme_text()


def test_declares_what_the_hub_needs() -> None:
    assert WialonSource.kind == "wialon" and WialonSource.title == "Wialon (Gurtam)"
    assert WialonSource.supports_browse is True
    assert WialonSource.cadence.active == 30.0 and not WialonSource.cadence.adaptive


def test_credential_fields_are_the_seeds() -> None:
    fields = {f.name: f for f in describe_fields(WialonSource.Credentials)}
    assert list(fields) == ["token", "server_url"]
    token, server = fields["token"], fields["server_url"]
    assert (token.required, token.secret, token.default) == (True, True, None)
    assert token.description == (
        "API token from Wialon User Settings → API. Requires Online Tracking and "
        "General Information access."
    )
    assert (server.required, server.secret, server.default) == (False, False, p.DEFAULT_SERVER)
    assert (
        server.description == "Override for on-premise Wialon. Default: https://hst-api.wialon.com"
    )
    assert url_fields(WialonSource.Credentials) == ["server_url"]
    assert url_fields(WialonSource.Options) == ["base_url"]


def test_option_defaults() -> None:
    opts = WialonSource.parse_options({})
    assert opts.model_dump() == {
        "base_url": None,
        "late_window_s": 300.0,
        "backfill_s": 3600.0,
        "max_lookback_s": 86_400.0,
        "batch_size": 100,
        "sync_every_s": 600.0,
        "page_size": MAX_PAGE,
        "max_pages": 5,
    }


def test_readme_documents_every_field_and_option() -> None:
    for model in (WialonSource.Credentials, WialonSource.Options):
        for name in model.model_fields:
            assert f"`{name}`" in README, name
    assert str(MAX_BATCH) in README and "10000" in README.replace(",", "")


def test_readme_example_requests_per_cycle_match_the_formula() -> None:
    """The README's table: ceil(units / batch_size) batches, + 1 on sync cycles."""
    rows = re.findall(r"^\| (\d[\d,]*) \| (\d+) \| (\d+) \| (\d+) \|$", README, re.M)
    assert rows
    for units, batch, steady, sync in rows:
        n, b = int(units.replace(",", "")), int(batch)
        assert int(steady) == -(-n // b) and int(sync) == int(steady) + 1


def test_readme_fake_example_runs() -> None:
    code = README.split("## Using the fake server", 1)[1].split("```python\n", 1)[1]
    code = code.split("```", 1)[0]
    import trio

    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    trio.run(namespace["main"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "credentials.token"),
        ({"token": "  "}, "credentials.token"),
        ({"token": "two words"}, "credentials.token"),
        ({"token": "t", "server_url": "ftp://wialon.example"}, "credentials.server_url"),
        ({"token": "t", "server_url": "https://w.example/?x=1"}, "credentials.server_url"),
        ({"token": "t", "password": "x"}, "credentials.password"),
    ],
)
def test_bad_credentials_name_their_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(BadConfig) as info:
        WialonSource.parse_credentials(raw)
    assert info.value.field == field
    assert "two words" not in str(info.value)


def test_the_token_is_trimmed_and_secret() -> None:
    creds = WialonSource.parse_credentials({"token": " abc \n"})
    assert creds.token.get_secret_value() == "abc" and "abc" not in repr(creds)


@pytest.mark.parametrize(
    "raw",
    [
        {"batch_size": MAX_BATCH + 1},
        {"batch_size": 0},
        {"page_size": MAX_PAGE + 1},
        {"late_window_s": -1},
        {"late_window_s": "inf"},
        {"max_pages": 0},
        {"base_url": "not a url"},
        {"lookback": 10},
    ],
)
def test_bad_options_name_their_field(raw: dict[str, object]) -> None:
    with pytest.raises(BadConfig) as info:
        WialonSource.parse_options(raw)
    assert info.value.field == f"options.{next(iter(raw))}"
