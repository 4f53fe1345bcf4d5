"""Users' passwords: scrypt hashes (``cryptography``'s, already a dependency).

A hash is one self-describing string, ``scrypt$n=16384,r=8,p=2$<salt>$<hash>`` (salt
and hash in unpadded URL-safe base64), so the cost can be raised later: a hash keeps
the parameters it was made with, and ``needs_rehash`` says when it is weaker than
today's.  The cost (about 90 ms and 16 MiB on a small server) makes guessing slow;
hashing never runs on the trio thread (``hash_password_async``,
``verify_password_async``), and at most ``CONCURRENT`` run at once, so a burst of
sign-ins cannot take the server's memory.

A password is 10 to 1024 characters, compared after Unicode NFC normalisation (the
same password typed on two systems matches).  Neither a password nor a hash is ever
logged or answered.
"""

from __future__ import annotations

import base64
import hmac
import os
import unicodedata
from dataclasses import dataclass

import trio
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from hub.blocking import run_blocking

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "hash_password",
    "hash_password_async",
    "password_problem",
    "verify_password",
    "verify_password_async",
]

MIN_LENGTH = 10
MAX_LENGTH = 1024
SCHEME = "scrypt"
CONCURRENT = 4


@dataclass(frozen=True, slots=True)
class Params:
    n: int = 2**14
    r: int = 8
    p: int = 2
    length: int = 32

    def text(self) -> str:
        return f"n={self.n},r={self.r},p={self.p}"


CURRENT = Params()
_MAX_N = 2**20  # a stored hash asking for more is refused rather than run (memory)
_LIMITER: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("password_limiter")


def password_problem(password: str) -> str | None:
    """What is wrong with ``password`` as a new password (never quoting it), or ``None``."""
    if len(password) < MIN_LENGTH:
        return f"must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"may have at most {MAX_LENGTH} characters"
    return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, params: Params) -> bytes:
    kdf = Scrypt(salt=salt, length=params.length, n=params.n, r=params.r, p=params.p)
    return kdf.derive(unicodedata.normalize("NFC", password).encode("utf-8"))


def hash_password(password: str, params: Params = CURRENT) -> str:
    """Blocking.  The stored form of ``password`` (a fresh random salt each time)."""
    salt = os.urandom(16)
    digest = _derive(password, salt, params)
    return f"{SCHEME}${params.text()}${_b64(salt)}${_b64(digest)}"


def _parse(stored: str) -> tuple[Params, bytes, bytes] | None:
    try:
        scheme, text, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return None
        values = dict(part.split("=", 1) for part in text.split(","))
        raw = _unb64(digest)
        params = Params(int(values["n"]), int(values["r"]), int(values["p"]), len(raw))
        if not (2 <= params.n <= _MAX_N) or params.n & (params.n - 1) or params.r < 1:
            return None
        if not 1 <= params.p <= 16 or not 16 <= params.length <= 64:
            return None
        return params, _unb64(salt), raw
    except (ValueError, KeyError):
        return None


def verify_password(password: str, stored: str | None) -> bool:
    """Blocking.  Whether ``password`` is the one ``stored`` was made from, compared in
    constant time.  Without a hash (``None``, or one this code cannot read) the same
    work is done against a dummy, so the answer takes as long either way."""
    parsed = _parse(stored) if stored else None
    if parsed is None:
        _derive(password, b"\0" * 16, CURRENT)
        return False
    params, salt, expected = parsed
    return hmac.compare_digest(_derive(password, salt, params), expected)


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with other parameters than today's."""
    parsed = _parse(stored)
    return parsed is None or parsed[0] != CURRENT


def _capacity() -> trio.CapacityLimiter:
    """The limiter of this trio run (one per run: trio objects do not cross runs)."""
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = trio.CapacityLimiter(CONCURRENT)
        _LIMITER.set(limiter)
        return limiter


async def hash_password_async(password: str) -> str:
    async with _capacity():
        return await run_blocking(hash_password, password)


async def verify_password_async(password: str, stored: str | None) -> bool:
    async with _capacity():
        return await run_blocking(verify_password, password, stored)
