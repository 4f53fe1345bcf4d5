"""secrets.json: what is required, what is optional, and errors that name the key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gpshub_findhub.secrets_json import SecretsError, parse_secrets
from gpshub_findhub.source import FindHubSource
from gpshub_findhub.testing import (
    TEST_AAS_TOKEN,
    TEST_ANDROID_ID,
    TEST_FCM_TOKEN,
    TEST_OWNER_KEY,
    TEST_SECURITY_TOKEN,
    secrets_document,
)
from hub.errors import BadConfig


def text(doc: dict[str, Any]) -> str:
    return json.dumps(doc)


def error(doc: dict[str, Any] | str) -> SecretsError:
    with pytest.raises(SecretsError) as err:
        parse_secrets(doc if isinstance(doc, str) else text(doc))
    return err.value


def test_the_whole_file_parses_into_what_each_part_enables() -> None:
    secrets = parse_secrets(text(secrets_document()))
    assert secrets.aas_token == TEST_AAS_TOKEN
    assert secrets.username == "alice@gmail.com"
    assert secrets.owner_key == TEST_OWNER_KEY
    assert secrets.fcm is not None and not secrets.list_only
    assert secrets.fcm.android_id == TEST_ANDROID_ID
    assert secrets.fcm.security_token == TEST_SECURITY_TOKEN
    assert secrets.fcm.fcm_token == TEST_FCM_TOKEN
    assert len(secrets.fcm.keys.public_key) == 65
    assert secrets.android_id == str(TEST_ANDROID_ID)


def test_fcm_credentials_and_owner_key_are_optional() -> None:
    secrets = parse_secrets(text(secrets_document(fcm=False, owner_key=None)))
    assert secrets.list_only and secrets.fcm is None and secrets.android_id is None
    assert secrets.owner_key is None


def test_keys_of_forks_and_the_shared_key_are_ignored() -> None:
    doc = secrets_document()
    doc.update({"shared_key": "zz", "adm_token_alice@gmail.com": 12, "oauth_token": None})
    assert parse_secrets(text(doc)).username == "alice@gmail.com"


def test_google_email_stands_for_a_missing_username() -> None:
    doc = secrets_document()
    doc["google_email"] = doc.pop("username")
    assert parse_secrets(text(doc)).username == "alice@gmail.com"


def test_ids_may_be_numbers_as_well_as_decimal_strings() -> None:
    doc = secrets_document()
    doc["fcm_credentials"]["gcm"]["android_id"] = TEST_ANDROID_ID
    secrets = parse_secrets(text(doc))
    assert secrets.fcm is not None and secrets.fcm.android_id == TEST_ANDROID_ID


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        (lambda d: d.pop("aas_token"), "secrets_json.aas_token", "missing"),
        (lambda d: d.pop("username"), "secrets_json.username", "missing"),
        (
            lambda d: d.update(aas_token=123),
            "secrets_json.aas_token",
            "must be a string, not a number",
        ),
        (lambda d: d.update(aas_token="  "), "secrets_json.aas_token", "must not be empty"),
        (lambda d: d.update(username="alice"), "secrets_json.username", "e-mail"),
        (lambda d: d.update(owner_key="abc"), "secrets_json.owner_key", "64 hexadecimal digits"),
        (lambda d: d.update(owner_key="g" * 64), "secrets_json.owner_key", "hexadecimal"),
        (lambda d: d.update(owner_key=7), "secrets_json.owner_key", "not a number"),
        (lambda d: d.update(fcm_credentials=[]), "secrets_json.fcm_credentials", "an array"),
        (
            lambda d: d["fcm_credentials"]["gcm"].update(android_id="0x1f"),
            "secrets_json.fcm_credentials.gcm.android_id",
            "decimal number",
        ),
        (
            lambda d: d["fcm_credentials"]["gcm"].update(android_id=True),
            "secrets_json.fcm_credentials.gcm.android_id",
            "not a boolean",
        ),
        (
            lambda d: d["fcm_credentials"]["gcm"].update(security_token=str(1 << 64)),
            "secrets_json.fcm_credentials.gcm.security_token",
            "64-bit",
        ),
        (
            lambda d: d["fcm_credentials"].pop("gcm"),
            "secrets_json.fcm_credentials.gcm",
            "missing",
        ),
        (
            lambda d: d["fcm_credentials"]["fcm"]["registration"].pop("token"),
            "secrets_json.fcm_credentials.fcm.registration.token",
            "missing",
        ),
        (
            lambda d: d["fcm_credentials"]["keys"].update(private="QUJD"),
            "secrets_json.fcm_credentials.keys.private",
            "P-256",
        ),
        (
            lambda d: d["fcm_credentials"]["keys"].update(secret=None),
            "secrets_json.fcm_credentials.keys.secret",
            "missing",
        ),
    ],
)
def test_a_bad_key_is_named_with_its_path(change: Any, path: str, reason: str) -> None:
    doc = secrets_document()
    change(doc)
    exc = error(doc)
    assert exc.path == path
    assert reason in exc.reason
    assert str(exc) == f"{path}: {exc.reason}"


def test_malformed_json_says_where() -> None:
    exc = error('{\n  "aas_token": "aas_et/x",\n  "username": "a@b.c"\n  "owner_key": 1\n}')
    assert exc.path == "secrets_json"
    assert "not valid JSON (line 4, column 3" in exc.reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [("", "empty"), ("[1, 2]", "an array"), ('"x"', "a string"), ("[" * 100_000, "")],
)
def test_what_is_no_secrets_file_at_all(content: str, reason: str) -> None:
    exc = error(content)
    assert exc.path == "secrets_json" and reason in exc.reason


def test_no_message_ever_shows_a_value() -> None:
    secret_values = ["aas_et/VERY-SECRET-TOKEN", "9" * 30, "f" * 63]
    doc = secrets_document(aas_token=secret_values[0])
    doc["fcm_credentials"]["gcm"]["android_id"] = secret_values[1]  # too big: an error
    doc["owner_key"] = secret_values[2]
    for broken in (text(doc), text(doc)[:-5], text({**doc, "username": secret_values[0]})):
        with pytest.raises(SecretsError) as err:
            parse_secrets(broken)
        assert not any(v in str(err.value) for v in secret_values)
    parsed = parse_secrets(text(secrets_document(aas_token=secret_values[0])))
    assert secret_values[0] not in repr(parsed) and TEST_OWNER_KEY.hex() not in repr(parsed)


def test_the_source_turns_errors_into_bad_config_naming_the_key() -> None:
    doc = secrets_document()
    doc["fcm_credentials"]["gcm"]["android_id"] = "12a"
    with pytest.raises(BadConfig) as err:
        FindHubSource.parse_credentials({"secrets_json": text(doc)})
    assert err.value.field == "credentials.secrets_json.fcm_credentials.gcm.android_id"
    with pytest.raises(BadConfig) as err:
        FindHubSource.parse_credentials({})
    assert err.value.field == "credentials.secrets_json"
    with pytest.raises(BadConfig) as err:
        FindHubSource.parse_credentials({"secrets_json": "{"})
    assert err.value.field == "credentials.secrets_json"
