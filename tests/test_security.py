"""Secrets at rest, API tokens and log redaction."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from hub import tokens
from hub.logging_setup import RedactingFilter, configure_logging, install_redaction, redact
from hub.secrets import KEY_FILE, SecretBox, SecretError


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    box = SecretBox.from_env_or_file(tmp_path, environ={})
    mode = stat.S_IMODE(os.stat(tmp_path / KEY_FILE).st_mode)
    assert mode == 0o600
    token = box.encrypt("connection:1", {"password": "p"})
    again = SecretBox.from_env_or_file(tmp_path, environ={})
    assert again.decrypt("connection:1", token) == {"password": "p"}


def test_env_keys_rotate(tmp_path: Path) -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    token = SecretBox.from_env_or_file(tmp_path, {"GPSHUB_SECRET_KEY": old}).encrypt("r", 1)
    both = SecretBox.from_env_or_file(tmp_path, {"GPSHUB_SECRET_KEY": f"{new},{old}"})
    assert both.decrypt("r", token) == 1
    rotated = both.rotate(token)
    assert SecretBox([new.encode()]).decrypt("r", rotated) == 1
    with pytest.raises(SecretError, match="wrong or missing key"):
        SecretBox([new.encode()]).decrypt("r", token)
    with pytest.raises(SecretError, match="belongs to another row"):
        both.decrypt("other", token)
    with pytest.raises(SecretError, match="invalid encryption key"):
        SecretBox([b"short"])


def test_tokens_carry_a_checksum() -> None:
    t = tokens.new_token()
    assert t.startswith("gph_") and len(t) == 42 and tokens.well_formed(t)
    assert not tokens.well_formed(t[:-1] + ("0" if t[-1] != "0" else "1"))
    assert not tokens.well_formed("gph_" + "!" * 38)
    assert tokens.new_token() != t
    assert tokens.token_hash(t) != t and len(tokens.token_hash(t)) == 64


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        (
            "GET https://hst-api.wialon.com/wialon/ajax.html?svc=core/login&params=x&sid=ABC123",
            "ABC123",
        ),
        ('HTTP Request: GET http://h/api/session?token=TOK-999 "HTTP/1.1 200 OK"', "TOK-999"),
        ("login failed password=hunter2 for user", "hunter2"),
        ('{"aas_token": "aas_et/SECRET"}', "aas_et/SECRET"),
        ("Authorization: Bearer gph_abcdef", "gph_abcdef"),
        ("Authorization: FlespiToken XYZ987", "XYZ987"),
    ],
)
def test_redaction_masks_secrets(text: str, leak: str) -> None:
    assert leak not in redact(text)


def test_httpx_request_logs_lose_their_query_string(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    caplog.set_level(logging.INFO, logger="httpx")
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s %d %s"',
        "GET",
        "https://x.test/a?sid=SID-MARKER",
        "HTTP/1.1",
        200,
        "OK",
    )
    assert "SID-MARKER" not in caplog.text and "https://x.test/a" in caplog.text


def test_configured_handlers_redact_every_logger(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("INFO")
        logging.getLogger("gpshub.source.x").warning("session expired, token=%s", "TOKEN-MARKER")
        assert "TOKEN-MARKER" not in capsys.readouterr().err
    finally:
        root.handlers[:], root.level = saved


def test_filter_survives_bad_format_strings() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s", ("only one",), None)
    assert RedactingFilter().filter(record)
