"""Wialon sensor parameters: the expression in a sensor's ``p``, compiled once, evaluated
per message.

What Wialon's documentation allows in a sensor's *Parameter* field, and what we do:

* a parameter of the message, by name (``adc1``, ``io_239``, ``can_fuel``); ``inN`` and
  ``outN`` are the digital inputs and outputs (bit N, from 1, of the message's ``i`` /
  ``o``) unless the device sends a parameter of that name; ``in`` / ``out`` are the whole
  masks; the virtual parameters ``speed``, ``altitude``, ``sats``, ``course``, ``lat``,
  ``lon``, ``time`` and ``regtime`` come from the message itself;
* ``name:N``: bit N (from 1) of a parameter, read as an integer;
* constants, ``const10`` or ``const-4.54`` (plain numbers are accepted too);
* ``+ - * / ^`` and parentheses, with the usual precedence (``^`` binds tightest);
* ``a|b``: the first of the alternatives that has a value in the message;
* ``[Sensor name]``: another sensor of the unit (the caller resolves it).

Not supported, so a sensor using them is skipped: ``#name`` (the previous message's
value: a poll does not always have it) and the ``:`` conversion of text parameters.

A value is a float, or ``None`` when the message does not give one (a missing or text
parameter, division by zero): then the whole expression has none, as in Wialon.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Value = float | None
Resolve = Callable[[str], Value]
"""Gives the value of a ``[Sensor name]`` reference for the message being evaluated."""

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<const>const\s*-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
    | (?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)
    | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    | \[(?P<sensor>[^\]]*)\]
    | (?P<op>[-+*/^|():\#])
    )""",
    re.VERBOSE,
)
VIRTUAL = ("speed", "altitude", "sats", "course", "lat", "lon", "time", "regtime")
_IO = re.compile(r"(in|out)(\d+)")
_POS_FIELDS = {"speed": "s", "altitude": "z", "sats": "sc", "course": "c", "lat": "y", "lon": "x"}
MAX_BIT = 64


class Unsupported(ValueError):
    """The expression uses something we cannot evaluate (or is not an expression)."""


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled sensor parameter: ``evaluate(message, resolve)`` gives its value."""

    text: str
    _run: Callable[[Mapping[str, Any], Resolve], Value]
    sensors: frozenset[str]
    """The names of the sensors it refers to (``[...]``)."""

    def evaluate(self, message: Mapping[str, Any], resolve: Resolve) -> Value:
        value = self._run(message, resolve)
        return value if value is not None and math.isfinite(value) else None


def compile_expression(text: str) -> Expression:
    """Compile a sensor's parameter expression; ``Unsupported`` when it cannot be."""
    parser = _Parser(_tokens(text))
    run = parser.alternatives()
    rest = parser.peek()
    if rest is not None:
        raise Unsupported(f"unexpected {rest[1]!r}")
    return Expression(text, run, frozenset(parser.sensors))


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise Unsupported(f"cannot read {text[pos : pos + 10]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    if not out:
        raise Unsupported("empty parameter")
    return out


Node = Callable[[Mapping[str, Any], Resolve], Value]


class _Parser:
    """Recursive descent: alternatives ``|`` < ``+ -`` < ``* /`` < ``^`` < unary < atom."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0
        self.sensors: set[str] = set()

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, op: str) -> bool:
        token = self.peek()
        if token is not None and token == ("op", op):
            self.i += 1
            return True
        return False

    def alternatives(self) -> Node:
        options = [self.sum()]
        while self.take("|"):
            options.append(self.sum())
        if len(options) == 1:
            return options[0]

        def first(message: Mapping[str, Any], resolve: Resolve) -> Value:
            for option in options:
                value = option(message, resolve)
                if value is not None and math.isfinite(value):
                    return value
            return None

        return first

    def sum(self) -> Node:
        node = self.product()
        while True:
            if self.take("+"):
                node = _binary(node, self.product(), lambda a, b: a + b)
            elif self.take("-"):
                node = _binary(node, self.product(), lambda a, b: a - b)
            else:
                return node

    def product(self) -> Node:
        node = self.power()
        while True:
            if self.take("*"):
                node = _binary(node, self.power(), lambda a, b: a * b)
            elif self.take("/"):
                node = _binary(node, self.power(), _divide)
            else:
                return node

    def power(self) -> Node:
        base = self.unary()
        if self.take("^"):
            return _binary(base, self.power(), _power)
        return base

    def unary(self) -> Node:
        if self.take("-"):
            inner = self.unary()
            return lambda m, r: None if (v := inner(m, r)) is None else -v
        if self.take("+"):
            return self.unary()
        return self.atom()

    def atom(self) -> Node:
        token = self.peek()
        if token is None:
            raise Unsupported("the expression ends too early")
        kind, text = token
        self.i += 1
        if kind == "const":
            value = float(text[len("const") :].replace(" ", ""))
            return lambda m, r: value
        if kind == "number":
            number = float(text)
            return lambda m, r: number
        if kind == "sensor":
            name = text.strip()
            self.sensors.add(name)
            return lambda m, r: r(name)
        if kind == "name":
            return self.parameter(text)
        if text == "(":
            node = self.alternatives()
            if not self.take(")"):
                raise Unsupported("a parenthesis is not closed")
            return node
        if text == "#":
            raise Unsupported("values of the previous message (#name) are not supported")
        raise Unsupported(f"unexpected {text!r}")

    def parameter(self, name: str) -> Node:
        if not self.take(":"):
            return lambda m, r: parameter(m, name)
        token = self.peek()
        if token is None or token[0] != "number" or not token[1].isdigit():
            raise Unsupported(f"{name}: only a bit number may follow ':'")
        self.i += 1
        bit = int(token[1])
        if not 1 <= bit <= MAX_BIT:
            raise Unsupported(f"{name}:{bit}: bits are numbered 1 to {MAX_BIT}")

        def bit_of(message: Mapping[str, Any], resolve: Resolve) -> Value:
            value = parameter(message, name)
            if value is None:
                return None
            return float(int(value) >> (bit - 1) & 1)

        return bit_of


def _binary(left: Node, right: Node, op: Callable[[float, float], Value]) -> Node:
    def run(message: Mapping[str, Any], resolve: Resolve) -> Value:
        a = left(message, resolve)
        if a is None:
            return None
        b = right(message, resolve)
        return None if b is None else op(a, b)

    return run


def _divide(a: float, b: float) -> Value:
    return a / b if b != 0 else None


def _power(a: float, b: float) -> Value:
    try:
        value = a**b
    except (OverflowError, ZeroDivisionError):
        return None
    return value if isinstance(value, float | int) else None  # a complex root: none


def parameter(message: Mapping[str, Any], name: str) -> Value:
    """The value of one parameter in a data message (see the module docstring)."""
    params = message.get("p")
    if isinstance(params, Mapping) and name in params:
        return number(params[name])
    io = _IO.fullmatch(name)
    if io is not None:
        mask = _mask(message, "i" if io.group(1) == "in" else "o")
        bit = int(io.group(2))
        return None if mask is None or not 1 <= bit <= MAX_BIT else float(mask >> (bit - 1) & 1)
    if name in ("in", "out"):
        mask = _mask(message, "i" if name == "in" else "o")
        return None if mask is None else float(mask)
    if name in _POS_FIELDS:
        pos = message.get("pos")
        return number(pos.get(_POS_FIELDS[name])) if isinstance(pos, Mapping) else None
    if name == "time":
        return number(message.get("t"))
    if name == "regtime":
        return number(message.get("rt"))
    return None


def _mask(message: Mapping[str, Any], key: str) -> int | None:
    value = message.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def number(value: Any) -> Value:
    """A parameter value as a number: numbers and booleans, and text that is a number."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None
