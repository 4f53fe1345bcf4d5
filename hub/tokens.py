"""API tokens: ``gph_`` + 32 random base62 characters + a 6-character checksum.

The prefix and checksum let secret scanners recognise a leaked token; the hub stores only
its SHA-256 (tokens carry 190 bits of entropy, so a slow hash would add nothing).
"""

from __future__ import annotations

import hashlib
import secrets
import zlib

PREFIX = "gph_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY = 32
_CHECK = 6


def _base62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def new_token() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_BODY))
    return PREFIX + body + _base62(zlib.crc32(body.encode()), _CHECK)


def well_formed(token: str) -> bool:
    """True when ``token`` has our prefix, length and a matching checksum."""
    if not token.startswith(PREFIX) or len(token) != len(PREFIX) + _BODY + _CHECK:
        return False
    body, check = token[len(PREFIX) : -_CHECK], token[-_CHECK:]
    if any(c not in _ALPHABET for c in body):
        return False
    return secrets.compare_digest(check, _base62(zlib.crc32(body.encode()), _CHECK))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    return token[: len(PREFIX) + 6]
