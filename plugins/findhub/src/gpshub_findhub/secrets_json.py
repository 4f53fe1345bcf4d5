"""The pasted ``secrets.json``: parsed and checked into a typed ``FindHubSecrets``.

The file is what GoogleFindMyTools writes to ``Auth/secrets.json`` (a flat JSON object):

* ``aas_token`` and ``username`` (required): the Android master token and the account's
  e-mail, from which every ADM access token is made;
* ``fcm_credentials`` (optional): the FCM/GCM registration of the tool's push client — its
  android id and security token (MCS login), its FCM token (put into locate requests so
  the answer is pushed to us) and its web-push keys (the pushes are encrypted to them).
  Without it the account is *list only*: devices, and the rare location the list carries;
* ``owner_key`` (optional, 64 hex characters): the account's end-to-end key, which opens
  each tracker's identity key and so its location reports.  Without it: no coordinates.

``shared_key`` and the keys only forks write (``adm_token_…``, ``google_email`` …) are
ignored; ``google_email`` is read as the user name when ``username`` is missing, as the
Home Assistant port does.

A problem raises ``SecretsError`` whose ``path`` names the key, e.g.
``secrets_json.fcm_credentials.gcm.android_id``, and whose reason says what is wrong
without ever quoting a value (the whole file is a secret).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gpshub_findhub.webpush import FcmKeys

ROOT = "secrets_json"
_U64 = 1 << 64


class SecretsError(ValueError):
    """``secrets.json`` is unusable: ``path`` names the key, ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FcmCredentials:
    """What fresh locations need from ``fcm_credentials``: the android id and security
    token (check-in, MCS login), the FCM token (into each locate request) and the web-push
    keys the pushes are encrypted to (``keys``, as ``webpush.load_fcm_keys`` loads them)."""

    android_id: int
    security_token: int = field(repr=False)
    fcm_token: str = field(repr=False)
    keys: FcmKeys = field(repr=False)


@dataclass(frozen=True, slots=True)
class FindHubSecrets:
    """A parsed ``secrets.json``.  ``repr`` shows no secret."""

    aas_token: str = field(repr=False)
    username: str
    fcm: FcmCredentials | None = None
    owner_key: bytes | None = field(default=None, repr=False)

    @property
    def list_only(self) -> bool:
        """No ``fcm_credentials``: no locate requests, so no fresh locations."""
        return self.fcm is None

    @property
    def android_id(self) -> str | None:
        """The android id the AAS token was minted with (decimal), when the file has it."""
        return None if self.fcm is None else str(self.fcm.android_id)


def parse_secrets(text: str) -> FindHubSecrets:
    """``text`` (the file's content) as ``FindHubSecrets``; ``SecretsError`` if unusable."""
    if not text.strip():
        raise SecretsError(ROOT, "empty: paste the whole content of Auth/secrets.json")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # exc.msg says what was expected, never what was found: safe to show
        raise SecretsError(
            ROOT, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise SecretsError(ROOT, "not a secrets.json: nested too deeply") from None
    if not isinstance(data, dict):
        raise SecretsError(
            ROOT, f"must be a JSON object (the whole secrets.json), not {_kind(data)}"
        )
    aas_token = _string(data, "aas_token", ROOT)
    if "username" in data or "google_email" not in data:
        username = _string(data, "username", ROOT)
    else:
        username = _string(data, "google_email", ROOT)
    if "@" not in username:
        raise SecretsError(f"{ROOT}.username", "must be the Google account's e-mail address")
    fcm = None
    if data.get("fcm_credentials") is not None:
        fcm = _fcm(data["fcm_credentials"], f"{ROOT}.fcm_credentials")
    owner_key = None
    if data.get("owner_key") is not None:
        owner_key = _owner_key(data["owner_key"], f"{ROOT}.owner_key")
    return FindHubSecrets(aas_token=aas_token, username=username, fcm=fcm, owner_key=owner_key)


def _fcm(value: Any, path: str) -> FcmCredentials:
    obj = _object(value, path)
    gcm = _object(_required(obj, "gcm", path), f"{path}.gcm")
    android_id = _u64(gcm, "android_id", f"{path}.gcm")
    security_token = _u64(gcm, "security_token", f"{path}.gcm")
    fcm = _object(_required(obj, "fcm", path), f"{path}.fcm")
    registration = _object(
        _required(fcm, "registration", f"{path}.fcm"), f"{path}.fcm.registration"
    )
    token = _string(registration, "token", f"{path}.fcm.registration")
    keys = _object(_required(obj, "keys", path), f"{path}.keys")
    for name in ("public", "private", "secret"):
        _string(keys, name, f"{path}.keys")
    return FcmCredentials(
        android_id=android_id,
        security_token=security_token,
        fcm_token=token,
        keys=_load_keys(keys, f"{path}.keys"),
    )


def _load_keys(keys: Mapping[str, Any], path: str) -> FcmKeys:
    """The web-push keys, loaded (and so checked) by ``webpush.load_fcm_keys``, whose
    errors name the key as ``fcm_credentials.keys.<name>: reason``."""
    from gpshub_findhub.webpush import load_fcm_keys

    try:
        return load_fcm_keys(keys)
    except ValueError as exc:
        where, sep, reason = str(exc).partition(": ")
        if sep and where.startswith("fcm_credentials.keys"):
            raise SecretsError(f"{ROOT}.{where}", reason) from None
        raise SecretsError(path, str(exc) or "unusable web-push keys") from None


def _owner_key(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise SecretsError(path, f"must be a string of 64 hexadecimal digits, not {_kind(value)}")
    text = value.strip()
    if len(text) != 64:
        raise SecretsError(
            path, f"must be 64 hexadecimal digits (32 bytes), not {len(text)} characters"
        )
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise SecretsError(path, "must be 64 hexadecimal digits (0-9, a-f)") from None


def _required(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj or obj[key] is None:
        raise SecretsError(f"{path}.{key}", "missing")
    return obj[key]


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SecretsError(path, f"must be a JSON object, not {_kind(value)}")
    return value


def _string(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = _required(obj, key, path)
    if not isinstance(value, str):
        raise SecretsError(f"{path}.{key}", f"must be a string, not {_kind(value)}")
    if not value.strip():
        raise SecretsError(f"{path}.{key}", "must not be empty")
    return value.strip()


def _u64(obj: Mapping[str, Any], key: str, path: str) -> int:
    """A 64-bit unsigned id, written as a decimal string (how the tool saves it) or a number."""
    value = _required(obj, key, path)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SecretsError(f"{path}.{key}", f"must be a decimal number, not {_kind(value)}")
    text = str(value).strip()
    if not text.isdigit() or not text.isascii():
        raise SecretsError(f"{path}.{key}", "must be a decimal number (digits only)")
    number = int(text)
    if not 0 < number < _U64:
        raise SecretsError(f"{path}.{key}", "must be a positive 64-bit number")
    return number


def _kind(value: Any) -> str:
    """A JSON value's type in JSON's words (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
