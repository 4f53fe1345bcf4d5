"""The README documents every field the validators know, and its verification code works."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gpshub_startrack_relay.testing import (
    ALERT_FIELDS,
    ALERT_OPTIONAL_FIELDS,
    JSON1_FIELDS,
    JSON2_FIELDS,
)
from hub.signing import generate_secret, signature_header

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    return README.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_every_field_is_in_its_table() -> None:
    for title, fields in (
        ("Location relay: JSON 1", JSON1_FIELDS),
        ("Location relay: JSON 2", JSON2_FIELDS),
        ("Alerts webhook", {**ALERT_FIELDS, **ALERT_OPTIONAL_FIELDS}),
    ):
        text = section(title)
        for key in fields:
            assert f"`{key}`" in text, (title, key)
    for option in ("date_unit", "odometer_text"):
        assert f"`{option}`" in section("Alerts webhook")


def test_the_verification_example_accepts_a_signed_request() -> None:
    code = section("Verifying a request").split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    verify = namespace["verify"]
    old, new = generate_secret(), generate_secret()
    body, stamp = b'{"code":0}', int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature_header([new, old], "msg_1", stamp, body),
    }
    assert verify(new, headers, body) and verify(old, headers, body)
    assert not verify(generate_secret(), headers, body)
    assert not verify(new, headers, body + b" ")
    assert not verify(new, {**headers, "webhook-timestamp": str(stamp - 301)}, body)
