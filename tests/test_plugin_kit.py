"""The kit pieces a plugin's own modules use: ``hub.plugin_package`` (its ``__init__``),
``hub.credential_fields`` (its credentials) and ``hub.upstream_values`` (its parser)."""

from __future__ import annotations

import logging
import math
import sys
import types
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
from pydantic import AfterValidator, BaseModel, SecretStr, ValidationError

from hub.credential_fields import AccountName, ApiToken, Password, one_word
from hub.plugin_package import source_plugin
from hub.plugins import load_plugins
from hub.source import NoOptions, Source, secret_field
from hub.upstream_values import (
    ParseStats,
    coordinates,
    count,
    flat_items,
    heading,
    iso_time,
    kept,
    number,
    plain,
    switch,
)


def test_source_plugin_makes_the_hook_and_the_lazy_exports() -> None:
    package = types.ModuleType("kit_pkg")
    sys.modules["kit_pkg"] = package
    try:
        hook, getattr_, dir_ = source_plugin(
            "kit_pkg", {"hub.source": ("NoOptions",)}, "hub.testing:FeedSource"
        )
        package.register_sources, package.__getattr__, package.__dir__ = hook, getattr_, dir_  # type: ignore[attr-defined]
        from hub.source import NoOptions
        from hub.testing import FeedSource

        assert package.NoOptions is NoOptions and "NoOptions" in dir(package)
        pm, infos = load_plugins(extra=[("kit", package)], use_entry_points=False)
        got: list[type] = []
        pm.hook.register_sources(register=got.append)
        assert got == [FeedSource] and infos["kit"].module == "kit_pkg"
    finally:
        del sys.modules["kit_pkg"]
    with pytest.raises(ValueError, match="module:Class"):
        source_plugin("kit_pkg", {}, "hub.testing.FeedSource")


class Login(BaseModel):
    username: AccountName
    password: Password
    token: ApiToken
    other: Annotated[SecretStr, AfterValidator(one_word("empty!", "one word!"))] = SecretStr("x")


def test_credential_fields_check_and_stay_secret() -> None:
    login = Login(username="  ann@example.com ", password=" p w ", token=" abc ")
    assert login.username == "ann@example.com"
    assert login.password.get_secret_value() == " p w " and login.token.get_secret_value() == "abc"
    assert secret_field(Login, "password") and secret_field(Login, "token")
    for bad, message in (
        ({"username": " ", "password": "p", "token": "t"}, "at least 1 character"),
        ({"username": "a", "password": "", "token": "t"}, "the password must not be empty"),
        ({"username": "a", "password": "p", "token": "  "}, "the API token is empty"),
        ({"username": "a", "password": "p", "token": "a b"}, "must not contain spaces"),
        ({"username": "a", "password": "p", "token": "t", "other": "a b"}, "one word!"),
    ):
        with pytest.raises(ValidationError, match=message):
            Login.model_validate(bad)


def test_numbers_counts_and_switches() -> None:
    assert number(3) == 3.0 and number(True) is None and number(math.inf) is None
    assert number("4.5") is None and number("4.5", text=True) == 4.5
    assert (
        number("4,5", text=True) is None and number(" 4,5 ", text=True, decimal_comma=True) == 4.5
    )
    assert (
        count(7.0) == 7 and count(-1) is None and count(2.5) is None and count("9", text=True) == 9
    )
    assert switch(1) is True and switch(2) is None and switch(2, numbers="nonzero") is True
    assert switch(0, numbers="none") is None and switch(" ON ") is True and switch("off") is False
    assert switch("on", words=False) is None and switch("maybe") is None


def test_coordinates_and_headings() -> None:
    assert coordinates(37.9, 23.7) == (37.9, 23.7) and coordinates("37.9", 23.7) is None
    assert coordinates("37,9", "23.7", text=True, decimal_comma=True) == (37.9, 23.7)
    assert (
        coordinates(91, 0) is None and coordinates(0, -181) is None and coordinates(None, 0) is None
    )
    assert heading(360) == 360.0 and heading(-90) == 270.0 and heading("725", text=True) == 5.0
    assert heading(None) is None


def test_times_and_sensor_items() -> None:
    assert iso_time("2024-05-14T09:12:41Z") == datetime(2024, 5, 14, 9, 12, 41, tzinfo=UTC)
    assert iso_time("2024-05-14T12:12:41+03:00") == datetime(2024, 5, 14, 9, 12, 41, tzinfo=UTC)
    assert iso_time("2024-05-14 09:12:41") == datetime(2024, 5, 14, 9, 12, 41, tzinfo=UTC)
    assert iso_time(" ") is None and iso_time(17) is None and iso_time("soon") is None
    assert plain(math.nan) is None and plain([1]) is None and plain("x") == "x"
    nested = {"a": 1, "b": {"c": True, "d": {"e": "x"}}, "l": [1], "n": None, "f": math.inf}
    assert dict(flat_items(nested)) == {"a": 1, "b.c": True, "b.d.e": "x"}
    assert dict(flat_items(nested, max_depth=1)) == {"a": 1, "b.c": True}
    assert dict(flat_items({"v": "12"}, convert=lambda v: number(v, text=True))) == {"v": 12.0}


def test_parse_stats_count_and_report(caplog: pytest.LogCaptureFixture) -> None:
    stats, log = ParseStats(), logging.getLogger("kit.parse")
    stats.report(log, "Acme position(s)", 3)
    stats.skip("no time")
    stats.skip("no time")
    with caplog.at_level(logging.DEBUG, "kit.parse"):
        stats.report(log, "Acme position(s)", 3)
    assert stats.count == 2
    assert caplog.messages == ["skipped 2 of 3 Acme position(s): {'no time': 2}"]


def test_a_source_takes_its_models_from_its_brackets() -> None:
    class Creds(BaseModel):
        token: str

    class Opts(BaseModel):
        every_s: float = 1.0

    class Named(Source[Creds, Opts]):
        kind = "named"

    class Own(Source[Creds, Opts]):
        kind = "own"
        Options = NoOptions

    class Loose(Source[Any, BaseModel]):
        kind = "loose"

    assert (Named.Credentials, Named.Options) == (Creds, Opts)
    assert (Own.Credentials, Own.Options) == (Creds, NoOptions)
    assert Loose.Options is NoOptions and not hasattr(Loose, "Credentials")


def test_kept_leaves_out_and_tells_what_does_not_parse(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("kit.kept")
    with caplog.at_level(logging.DEBUG, "kit.kept"):
        assert kept(
            [1, -2, 3], lambda v: v if v > 0 else None, log, "Acme unit(s) without an id"
        ) == [1, 3]
        assert kept([], lambda v: v, log, "none") == []
    assert caplog.messages == ["skipped 1 Acme unit(s) without an id"]
