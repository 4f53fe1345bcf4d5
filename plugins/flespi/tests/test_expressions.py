"""The fake's flespi expression evaluator (filters and ``{…}`` selectors)."""

from __future__ import annotations

from typing import Any

import pytest

from gpshub_flespi.expressions import ExpressionError, compile_filter

MESSAGE: dict[str, Any] = {
    "device.name": "123456789012345",
    "timestamp": 1490347944.893743,
    "server.timestamp": 1490347950.5,
    "din": 9,
    "altitude": 568.49,
    "hdop": 0.9,
    "speed": 10,
    "valid": True,
    "name": "Truck 7",
    "nested": {"a": 1},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("server.timestamp>=1490347950.5", True),
        ("server.timestamp>=1490347950.500001", False),
        ("server.timestamp > 1490347950.5", False),
        ("timestamp > 1490347940 && timestamp < 1490347950", True),
        ("(hdop < 1 && (din % 2 == 1)) || speed == 0", True),
        ("device.name == '12*45'", True),
        ('device.name == "12?45"', False),
        ("name != 'Truck 7'", False),
        ("valid == true", True),
        ("not(valid)", False),
        ("if(speed > 5, altitude, 0) > 500", True),
        ("abs(-speed) == 10", True),
        ("speed * 2 + 1 == 21 && speed / 4 == 2.5 && -speed < 0", True),
        ("0x10 == 16", True),
        ("1e3 == 1000", True),
        ("missing > 1", False),  # a missing parameter: an error, so false
        ("missing > 1 || speed == 10", False),  # ...for the whole expression
        ("$missing == null || speed == 0", True),
        ("$missing > 1", False),  # null compared to a number: an error
        ("speed / 0 > 1", False),
        ("name > 5", False),
        ("nested == null", True),  # an object reads as null
        ("$nested == null", True),
    ],
)
def test_evaluation(text: str, expected: bool) -> None:
    assert compile_filter(text)(MESSAGE) is expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "speed >",
        "speed >= >= 1",
        "(speed",
        "speed)",
        "speed = 1",
        "!valid",
        "a ? b : c",
        "f(1)",
    ],
)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(ExpressionError):
        compile_filter(text)
