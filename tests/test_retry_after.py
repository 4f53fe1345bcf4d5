"""Retry-After as sinks and sources read it: seconds or an HTTP date, never negative."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from hub import parse_retry_after, response_retry_after

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Thu, 01 Jan 2026 00:02:00 GMT", 120.0),
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0.0),  # already past
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_values(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_a_cap_bounds_the_wait() -> None:
    assert parse_retry_after("999999", NOW, cap=3600) == 3600
    response = httpx.Response(429, headers={"Retry-After": "30"})
    assert response_retry_after(response, NOW) == 30.0
    assert response_retry_after(httpx.Response(429), NOW) is None
