"""A small evaluator of flespi expressions, for the fake server's ``filter`` and ``{…}``
selectors.

flespi expressions are C-like (https://flespi.com/kb/expressions): numbers, quoted
strings, ``true``/``false``/``null``, dotted parameter names (``server.timestamp``),
``+ - * / %``, comparisons ``== != < <= > >=``, ``&&``, ``||``, brackets, and functions
such as ``not(x)`` and ``if(cond, a, b)`` (there is no ``!`` operator and no ``?:``).
A parameter missing from the message makes the whole expression an error, which a
filter treats as false, unless it is written with a dollar sign (``$speed``): then it is
``null``.  ``==`` against a string with ``*`` or ``?`` matches it as a wildcard mask.

Only what a poller and its tests need is implemented; anything else is a syntax error.
Expressions compile once to Python closures, so a filter over many messages stays cheap.
"""

from __future__ import annotations

import fnmatch
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

Value = float | str | bool | None
Evaluator = Callable[[Mapping[str, Any]], Value]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
      | (?P<string>"[^"]*"|'[^']*')
      | (?P<name>\$?[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>(),])
    )""",
    re.VERBOSE,
)


class ExpressionError(ValueError):
    """The expression cannot be parsed: the message says where."""


class _Missing(Exception):
    """A parameter referenced without ``$`` is absent: the expression has no value."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ExpressionError(
                f"unexpected character at position {pos}: {text[pos : pos + 10]!r}"
            )
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _number(value: Value) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    raise _Missing  # a string or null in arithmetic: the evaluation fails


def _truthy(value: Value) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value != ""
    return bool(value)


def _equal(a: Value, b: Value) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        if "*" in b or "?" in b:
            return fnmatch.fnmatchcase(a, b)
        return a == b
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return a == b
    return _number(a) == _number(b)


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Value, Value], bool]:
    """An ordering comparison: strings with strings, anything else as numbers."""

    def compare(a: Value, b: Value) -> bool:
        if isinstance(a, str) and isinstance(b, str):
            return op(a, b)
        return op(_number(a), _number(b))

    return compare


_COMPARE: dict[str, Callable[[Value, Value], bool]] = {
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "<": _ordered(operator.lt),
    "<=": _ordered(operator.le),
    ">": _ordered(operator.gt),
    ">=": _ordered(operator.ge),
}


def _divide(a: float, b: float) -> float:
    if b == 0:
        raise _Missing
    return a / b


def _modulo(a: float, b: float) -> float:
    if b == 0:
        raise _Missing
    return math.fmod(a, b)


_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "%": _modulo,
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, op: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ExpressionError(f"unexpected end of expression {self.text!r}")
        if op is not None and token != ("op", op):
            raise ExpressionError(f"expected {op!r}, found {token[1]!r} in {self.text!r}")
        self.pos += 1
        return token

    def accept(self, *ops: str) -> str | None:
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in ops:
            self.pos += 1
            return token[1]
        return None

    def parse(self) -> Evaluator:
        if not self.tokens:
            raise ExpressionError("empty expression")
        expr = self.logical_or()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in {self.text!r}")  # type: ignore[index]
        return expr

    def logical_or(self) -> Evaluator:
        left = self.logical_and()
        while self.accept("||"):
            right = self.logical_and()
            left = _or(left, right)
        return left

    def logical_and(self) -> Evaluator:
        left = self.equality()
        while self.accept("&&"):
            right = self.equality()
            left = _and(left, right)
        return left

    def equality(self) -> Evaluator:
        left = self.relation()
        while (op := self.accept("==", "!=")) is not None:
            left = _compare(_COMPARE[op], left, self.relation())
        return left

    def relation(self) -> Evaluator:
        left = self.additive()
        while (op := self.accept("<", "<=", ">", ">=")) is not None:
            left = _compare(_COMPARE[op], left, self.additive())
        return left

    def additive(self) -> Evaluator:
        left = self.multiplicative()
        while (op := self.accept("+", "-")) is not None:
            left = _arith(_ARITHMETIC[op], left, self.multiplicative())
        return left

    def multiplicative(self) -> Evaluator:
        left = self.unary()
        while (op := self.accept("*", "/", "%")) is not None:
            left = _arith(_ARITHMETIC[op], left, self.unary())
        return left

    def unary(self) -> Evaluator:
        if self.accept("-"):
            inner = self.unary()
            return lambda msg: -_number(inner(msg))
        if self.accept("+"):
            inner = self.unary()
            return lambda msg: _number(inner(msg))
        return self.primary()

    def primary(self) -> Evaluator:
        kind, text = self.take()
        if kind == "number":
            value = float(int(text, 16)) if text[:2].lower() == "0x" else float(text)
            return lambda msg: value
        if kind == "string":
            literal = text[1:-1]
            return lambda msg: literal
        if kind == "name":
            return self.name(text)
        if (kind, text) == ("op", "("):
            inner = self.logical_or()
            self.take(")")
            return inner
        raise ExpressionError(f"unexpected {text!r} in {self.text!r}")

    def name(self, text: str) -> Evaluator:
        if self.accept("("):
            args: list[Evaluator] = []
            if not self.accept(")"):
                args.append(self.logical_or())
                while self.accept(","):
                    args.append(self.logical_or())
                self.take(")")
            return _function(text, args, self.text)
        constants: dict[str, Value] = {"true": True, "false": False, "null": None}
        if text in constants:
            constant = constants[text]
            return lambda msg: constant
        if text.startswith("$"):
            key = text[1:]
            return lambda msg: _scalar(msg.get(key))
        return _parameter(text)


def _scalar(value: Any) -> Value:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return None


def _parameter(key: str) -> Evaluator:
    def get(msg: Mapping[str, Any]) -> Value:
        try:
            return _scalar(msg[key])
        except KeyError:
            raise _Missing from None

    return get


def _or(left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda msg: _truthy(left(msg)) or _truthy(right(msg))


def _and(left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda msg: _truthy(left(msg)) and _truthy(right(msg))


def _compare(op: Callable[[Value, Value], bool], left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda msg: op(left(msg), right(msg))


def _arith(op: Callable[[float, float], float], left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda msg: op(_number(left(msg)), _number(right(msg)))


def _function(name: str, args: list[Evaluator], text: str) -> Evaluator:
    if name == "not" and len(args) == 1:
        (arg,) = args
        return lambda msg: not _truthy(arg(msg))
    if name == "if" and len(args) == 3:
        cond, yes, no = args
        return lambda msg: yes(msg) if _truthy(cond(msg)) else no(msg)
    if name == "abs" and len(args) == 1:
        (arg,) = args
        return lambda msg: abs(_number(arg(msg)))
    raise ExpressionError(f"unknown function {name}() with {len(args)} argument(s) in {text!r}")


def compile_expression(text: str) -> Evaluator:
    """Compile ``text``; raise ``ExpressionError`` when it is not a valid expression."""
    return _Parser(text).parse()


def compile_filter(text: str) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over messages: true where the expression is true; an evaluation error
    (a missing parameter, a division by zero, a wrongly typed operand) is false."""
    expr = compile_expression(text)

    def matches(msg: Mapping[str, Any]) -> bool:
        try:
            return _truthy(expr(msg))
        except _Missing:
            return False

    return matches
