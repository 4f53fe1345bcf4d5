"""Finding a secret in a text that quotes it in another form, to mask it.

Receivers and upstream APIs that refuse a request often quote it back: a JSON echo of
the request's headers escapes ``"`` and ``\\``, an error page escapes HTML, a redirect
URL-encodes, a debugging service base64-encodes.  ``secret_pattern(value)`` is a
regular expression that matches ``value`` in any of these forms:

* as it is;
* JSON-escaped: ``\\"``, ``\\\\``, ``\\/``, ``\\t`` and ``\\u00XX`` (any case of hex digits),
  also escaped twice or more (a JSON string inside a JSON echo);
* URL-encoded: ``%XX`` in either case of hex digits, a space as ``%20`` or ``+``, also
  encoded twice (``%2522``);
* HTML-escaped: ``&quot;``, ``&amp;``, ``&lt;``, ``&gt;``, ``&apos;``, ``&#NN;`` and
  ``&#xHH;``;
* base64, standard or URL-safe, with or without padding, also when the value is part
  of a longer encoded string (``user:secret`` in Basic credentials): the base64
  characters that depend on the value alone are matched at each of the three
  alignments (plus the character on either side that carries some of its bits), and
  those characters may themselves be JSON-escaped or URL-encoded.

Characters are mixed freely (one may be escaped and the next one not), since encoders
escape different sets of characters.  Letters, digits and ``-._~`` are matched only as
themselves: encoders leave them alone.

A value of the form ``<scheme> <credentials>`` (``Bearer abc…``, ``Basic dXNl…``) is
also looked for without its scheme, since a receiver may quote just the credentials;
Basic credentials are also looked for decoded (``user:password``) and as the password.

This catches honest echoes; a receiver bent on leaking the value (it has it) could
always encode it some other way.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import string
from collections.abc import Iterable, Iterator

__all__ = ["MASK", "MIN_SECRET_CHARS", "mask_secrets", "secret_forms"]

MIN_SECRET_CHARS = 3
"""Shorter values are not looked for (they would mask ordinary words)."""
MIN_BASE64_CHARS = 4
"""Base64 stretches shorter than this (of values of 3 or 4 characters) are not looked for."""
MASK = "[redacted]"

_PLAIN = frozenset(string.ascii_letters + string.digits + "-._~")
_HTML_NAMES = {'"': "quot", "&": "amp", "<": "lt", ">": "gt", "'": "apos"}
_B64_CHAR = "[A-Za-z0-9+/_-]"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9_-]{0,19}) +(\S+)")


def _hex(n: int, width: int) -> str:
    """``n`` in hex digits, as a pattern taking either case: 0x2f -> ``2[fF]``."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{n:0{width}x}")


def _json_escapes(c: str) -> list[str]:
    """``\\uXXXX`` escapes of a character (a surrogate pair beyond the BMP)."""
    units = c.encode("utf-16-be")
    codes = [int.from_bytes(units[i : i + 2], "big") for i in range(0, len(units), 2)]
    return ["".join(rf"\\+u{_hex(u, 4)}" for u in codes)]


@functools.lru_cache(maxsize=512)
def _char(c: str) -> str:
    """A pattern matching one character of a secret in any of its forms."""
    if c in _PLAIN:
        return re.escape(c)
    forms = [re.escape(c), *_json_escapes(c)]
    if c in '"/':
        forms.append(r"\\+" + re.escape(c))
    elif c == "\\":
        forms.append(r"\\\\+")  # two or more: escaped once or more
    elif c == "\t":
        forms.append(r"\\+t")
    forms.append("".join(f"%(?:25)*{_hex(b, 2)}" for b in c.encode()))
    if c == " ":
        forms.append(r"\+")
    forms.append(f"&#0*{ord(c)};")
    forms.append(f"&#[xX]0*{_hex(ord(c), 1)};")
    if c in _HTML_NAMES:
        forms.append(f"&{_HTML_NAMES[c]};")
    return "(?:" + "|".join(forms) + ")"


def _text(value: str) -> str:
    return "".join(_char(c) for c in value)


def _base64_stretches(value: str) -> Iterator[str]:
    """The base64 characters that encode ``value``'s bits only, at each alignment."""
    raw = value.encode()
    for align in range(3):
        encoded = base64.b64encode(b"\0" * align + raw + b"\0\0").decode()
        start = -(-align * 8 // 6)  # the first character wholly inside the value
        end = (align + len(raw)) * 8 // 6  # past the last one
        stretch = encoded[start:end]
        if len(stretch) >= MIN_BASE64_CHARS:
            yield stretch
            urlsafe = stretch.translate(str.maketrans("+/", "-_"))
            if urlsafe != stretch:
                yield urlsafe


def secret_forms(value: str) -> list[str]:
    """The texts looked for in their every form: ``value``, and its credentials when it
    names a scheme (see the module's docstring), longest first."""
    out = [value]
    m = _SCHEME.fullmatch(value.strip())
    if m and len(m.group(2)) >= MIN_SECRET_CHARS:
        credentials = m.group(2)
        out.append(credentials)
        if m.group(1).lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except (binascii.Error, ValueError):
                decoded = ""
            if decoded.isprintable() and ":" in decoded:
                out.append(decoded)
                out.append(decoded.partition(":")[2])
    unique = {v for v in out if len(v) >= MIN_SECRET_CHARS}
    return sorted(unique, key=lambda v: (-len(v), v))


class _Form:
    """One text (a value, or a base64 stretch of it) in any of its forms.

    Letters, digits and ``-._~`` only ever match as themselves, so every match holds the
    text's longest run of them verbatim: that ``anchor`` is looked for first, and the
    pattern (slow to compile for a long value) is compiled only when it is there.
    """

    __slots__ = ("_pattern", "anchor", "source")

    def __init__(self, source: str, anchor: str) -> None:
        self.source = source
        self.anchor = anchor if len(anchor) >= MIN_SECRET_CHARS else ""
        self._pattern: re.Pattern[str] | None = None

    def sub(self, text: str) -> str:
        if self.anchor and self.anchor not in text:
            return text
        if self._pattern is None:
            self._pattern = re.compile(self.source)
        return self._pattern.sub(MASK, text)


def _anchor(text: str) -> str:
    return max(re.findall(r"[A-Za-z0-9._~-]+", text), key=len, default="")


@functools.lru_cache(maxsize=1024)
def _forms(value: str) -> tuple[_Form, ...]:
    values = secret_forms(value)
    out = [_Form(_text(v), _anchor(v)) for v in values]
    for v in values:
        for s in _base64_stretches(v):
            around = f"{_B64_CHAR}?{_text(s)}(?:{_B64_CHAR}?(?:=|%3[dD]){{0,2}})?"
            out.append(_Form(around, _anchor(s)))
    return tuple(out)


def mask_secrets(text: str, secrets: Iterable[object]) -> str:
    """``text`` with every form of each of ``secrets`` (strings; others are skipped)
    replaced by ``[redacted]``."""
    values = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_CHARS}
    for value in sorted(values, key=lambda v: (-len(v), v)):  # a secret inside another
        for form in _forms(value):
            text = form.sub(text)
    return text
