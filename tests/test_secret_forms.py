"""Masking a secret in the forms an echo gives it (``hub.secret_forms``).

The end-to-end test with a real receiver is ``tests/delivery/test_echoed_secrets.py``;
these check the forms one by one, and with hypothesis over arbitrary values.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.logging_setup import MaskingAdapter, scrub
from hub.secret_forms import MASK, mask_secrets, secret_forms

SECRET = 'pa"ss\\w/rd <x>'


def lower_hex(text: str) -> str:
    """Percent-escapes with lower-case hex digits (the rest as it is)."""
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def stretch(prefix: str, secret: str, *, urlsafe: bool = False) -> str:
    """The base64 characters that encode only the secret's bits, after ``prefix``."""
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    encoded = encode((prefix + secret + "!!").encode()).decode()
    start = -(-len(prefix.encode()) * 8 // 6)
    return encoded[start : (len(prefix.encode()) + len(secret.encode())) * 8 // 6]


def test_each_form_is_masked() -> None:
    forms = {
        "raw": SECRET,
        "json": json.dumps(SECRET)[1:-1],
        "json twice": json.dumps(json.dumps(SECRET)[1:-1])[1:-1],
        "json ascii escapes": "".join(f"\\u{ord(c):04X}" if not c.isalnum() else c for c in SECRET),
        "url plus": quote_plus(SECRET),
        "url percent, lower-case hex": lower_hex(quote(SECRET, safe="")),
        "url twice": quote(quote(SECRET, safe=""), safe=""),
        "html": html.escape(SECRET),
        "html numeric": "".join(f"&#{ord(c)};" if not c.isalnum() else c for c in SECRET),
        "mixed": "pa\\u0022ss%5Cw\\/rd+&lt;x%3e",
    }
    for name, form in forms.items():
        assert mask_secrets(f"you sent «{form}», refused", [SECRET]) == (
            f"you sent «{MASK}», refused"
        ), name


def test_base64_at_every_alignment_with_or_without_padding() -> None:
    for prefix in ("", "u", "us", "user:", "longer prefix:"):
        for suffix in ("", "!", "!!", ":more"):
            raw = (prefix + SECRET + suffix).encode()
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                for text in (encode(raw).decode(), encode(raw).decode().rstrip("=")):
                    masked = mask_secrets(f"echo {text} end", [SECRET])
                    assert MASK in masked, (prefix, suffix, text)
                    core = stretch(prefix, SECRET, urlsafe=encode is not base64.b64encode)
                    assert core not in masked


def test_credentials_without_their_scheme_and_basic_decoded() -> None:
    bearer = "Bearer abc123XYZ"
    assert secret_forms(bearer) == [bearer, "abc123XYZ"]
    assert mask_secrets('{"error": "token abc123XYZ expired"}', [bearer]) == (
        f'{{"error": "token {MASK} expired"}}'
    )
    basic = "Basic " + base64.b64encode(b"ann:hunter2!").decode()
    assert set(secret_forms(basic)) >= {"ann:hunter2!", "hunter2!"}
    assert mask_secrets("wrong password hunter2! for ann", [basic]) == (
        f"wrong password {MASK} for ann"
    )
    # a pass phrase with spaces is not a scheme and credentials
    assert secret_forms("correct horse battery staple") == ["correct horse battery staple"]


def test_unicode_secrets_in_json_and_url_forms() -> None:
    secret = "clé-😀-ß"
    for form in (
        json.dumps(secret)[1:-1],  # \u00e9 and a surrogate pair
        quote(secret),
        lower_hex(quote(secret)),
    ):
        assert mask_secrets(f"[{form}]", [secret]) == f"[{MASK}]", form


def test_ordinary_text_and_short_values_are_left_alone() -> None:
    text = 'HTTP 400: {"error": "bad request", "detail": "missing field id"}'
    assert mask_secrets(text, ["s3cr3t-value", "ab", 42, None]) == text
    assert scrub(text, ["s3cr3t-value"]) == text
    assert scrub(None, ["s3cr3t-value"]) is None


@settings(max_examples=150, deadline=None)
@given(
    secret=st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=6, max_size=40
    ),
    how=st.sampled_from(["json", "json2", "plus", "pct", "html", "b64", "b64url", "basic"]),
    before=st.text(alphabet="abc ,:{}", max_size=5),
)
def test_any_printable_secret_in_any_form(secret: str, how: str, before: str) -> None:
    encode = {
        "json": lambda s: json.dumps(s)[1:-1],
        "json2": lambda s: json.dumps(json.dumps(s))[1:-1],
        "plus": quote_plus,
        "pct": lambda s: lower_hex(quote(s, safe="")),
        "html": html.escape,
        "b64": lambda s: base64.b64encode((before + s).encode()).decode(),
        "b64url": lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("="),
        "basic": lambda s: base64.b64encode(f"user:{s}".encode()).decode(),
    }[how]
    text = f"{before}<<{encode(secret)}>>"
    masked = mask_secrets(text, [secret])
    assert MASK in masked
    needle = {
        "b64": stretch(before, secret),
        "b64url": stretch("", secret, urlsafe=True),
        "basic": stretch("user:", secret),
    }.get(how, encode(secret))
    assert needle not in masked


def test_a_sinks_logger_masks_its_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gpshub.sink")
    log = MaskingAdapter(logging.getLogger("gpshub.sink"), {"sink": "s"}, [SECRET])
    log.info("receiver said %s (%d)", json.dumps({"key": SECRET}), 400)
    log.warning("raw %s", SECRET)
    log.debug("not logged %s", SECRET)
    assert [r.getMessage() for r in caplog.records] == [
        f'receiver said {{"key": "{MASK}"}} (400)',
        f"raw {MASK}",
    ]
