"""Encryption of secrets at rest (connection credentials, plugin state).

Keys come from ``GPSHUB_SECRET_KEY`` (one Fernet key, or several separated by commas:
the first encrypts, all decrypt, for rotation) or from ``secret.key`` in the data
directory, created with mode 0600 on first start.  Fernet has no associated data, so
every ciphertext carries the name of the row it belongs to and is refused anywhere else:
a ciphertext copied to another tenant's row does not decrypt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hub.errors import HubError

KEY_ENV = "GPSHUB_SECRET_KEY"
KEY_FILE = "secret.key"


class SecretError(HubError):
    """A ciphertext could not be decrypted or does not belong where it was found."""


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretError("no encryption key configured")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError) as exc:
            raise SecretError(f"invalid encryption key: {exc}") from None

    @classmethod
    def generate_key(cls) -> str:
        return Fernet.generate_key().decode()

    @classmethod
    def from_env_or_file(cls, data_dir: Path, environ: dict[str, str] | None = None) -> SecretBox:
        env = os.environ if environ is None else environ
        value = env.get(KEY_ENV, "").strip()
        if value:
            return cls([k.strip().encode() for k in value.split(",") if k.strip()])
        return cls([load_or_create_key_file(data_dir / KEY_FILE)])

    def encrypt(self, binding: str, data: Any) -> str:
        """Encrypt JSON-serialisable ``data`` for the row named ``binding``."""
        payload = json.dumps({"b": binding, "d": data}, separators=(",", ":")).encode()
        return self._fernet.encrypt(payload).decode()

    def decrypt(self, binding: str, token: str) -> Any:
        try:
            payload = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SecretError(
                f"cannot decrypt the secret of {binding}: wrong or missing key"
            ) from None
        if payload.get("b") != binding:
            raise SecretError(f"the secret stored on {binding} belongs to another row")
        return payload["d"]

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the first (newest) key."""
        return self._fernet.rotate(token.encode()).decode()


def load_or_create_key_file(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return key
