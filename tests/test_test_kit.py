"""The plugin author's kit helpers the five cloud plugins' tests share: the package checks'
README parsing, the trackers' feeds, and the driver's refused-credentials run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel
from trio.testing import MockClock

from hub.clock import TrioClock
from hub.errors import InvalidAuth
from hub.hub_driver import HubDriver, HubFactory
from hub.plugin_checks import PluginPackageChecks, readme_default, readme_table
from hub.source import Cadence
from hub.testing import EPOCH, ReportsBeforePolls, ScriptedSource, TrackerFeed

README = """# Acme

## Credentials

| Field | Required | Description |
|---|---|---|
| `token` | yes | The API token |

### Options

| Option | Default | Meaning |
|---|---|---|
| `late_window_s` | `300` | Looks again. |
| `base_url` | none (`https://acme.example`) | A proxy. |

## How it polls

| `token` | not | a row of another table |
"""


class AcmeOptions(BaseModel):
    late_window_s: float = 300.0
    base_url: str | None = None


class Refused(ScriptedSource):
    """A source whose upstream refuses its token on every poll."""

    kind = "refused"
    Options = AcmeOptions
    script: ClassVar[list[Any]] = [InvalidAuth("the token is refused")]
    cadence = Cadence(active=30.0, jitter=0.0)

    class Credentials(BaseModel):
        token: str


def test_a_readme_table_is_read_under_either_heading_level() -> None:
    assert readme_table(README, "Credentials") == {"token": ["yes", "The API token"]}
    assert list(readme_table(README, "Options")) == ["late_window_s", "base_url"]
    with pytest.raises(AssertionError, match="no '## Sensors' section"):
        readme_table(README, "Sensors")


def test_defaults_are_written_as_a_readme_writes_them() -> None:
    assert [readme_default(v) for v in (None, "", 300.0, 0.5, [1, 2], 7)] == [
        "none",
        '""',
        "300",
        "0.5",
        "1, 2",
        "7",
    ]


def test_the_readme_checks_pass_and_name_the_field_they_fail_on(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")

    class Checks(PluginPackageChecks, sources=[Refused], readme=readme):
        pass

    checks = Checks()
    checks.test_readme_lists_every_credential_field()
    checks.test_readme_lists_every_option_with_its_default()
    readme.write_text(README.replace("`300`", "`600`"), encoding="utf-8")
    with pytest.raises(AssertionError, match="late_window_s"):
        checks.test_readme_lists_every_option_with_its_default()


def test_the_readme_is_found_beside_the_tests_folder() -> None:
    class Checks(PluginPackageChecks):
        pass

    assert Checks.readme_path() == Path(__file__).resolve().parents[1] / "README.md"


async def test_trackers_report_every_ten_seconds_and_go_on_where_they_stopped(
    gpshub_clock: MockClock,
) -> None:
    wall = TrioClock(EPOCH)
    reports: list[tuple[int, str, int, float]] = []
    feed = TrackerFeed(wall, ["a", "b"], lambda *report: reports.append(report))
    await feed.run(20)
    await feed.run(10)
    start = EPOCH.timestamp()
    assert reports == [
        (0, "a", 0, start),
        (1, "b", 0, start),
        (0, "a", 1, start + 10),
        (1, "b", 1, start + 10),
        (0, "a", 2, start + 20),
        (1, "b", 2, start + 20),
    ]


async def test_reports_before_polls_in_the_same_second_are_a_second_apart(
    gpshub_clock: MockClock,
) -> None:
    wall = TrioClock(EPOCH)  # no sleep in between: one instant
    reports = ReportsBeforePolls(wall, ["a", "b"], lambda *report: None)
    reports(1)
    reports(2)
    t = int(EPOCH.timestamp()) - 2
    assert reports.sent == {"a": [t, t + 1], "b": [t, t + 1]}


@pytest.fixture
def gpshub_sources() -> list[type]:
    return [Refused]


async def test_refused_credentials_stop_the_connection_without_retrying(
    gpshub_clock: MockClock, gpshub_hub_factory: HubFactory
) -> None:
    Refused.calls.clear()
    driver = HubDriver(gpshub_hub_factory, "refused", {"token": "sekrit"})
    conn = await driver.assert_stops_for_new_credentials("unit-1", "sekrit")
    assert conn.last_error.endswith("the token is refused")
    assert len(Refused.calls) == 1  # not retried


async def test_a_secret_in_the_connection_s_error_fails_the_check(
    gpshub_clock: MockClock, gpshub_hub_factory: HubFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Refused, "script", [InvalidAuth("the token 'sekrit' is refused")])
    driver = HubDriver(gpshub_hub_factory, "refused", {"token": "sekrit"})
    with pytest.raises(AssertionError, match="the secret is in the connection's error"):
        await driver.assert_stops_for_new_credentials("unit-1", "sekrit")
