"""A small SCIM-style filter parser for the sandbox's ``search`` and ``filter`` parameters.

Okta accepts expressions such as ``profile.name eq "aws#123#Admin"`` or
``eventType eq "a" or eventType eq "b"``. This module turns one into a predicate
over a JSON-like dict. Supported: ``eq ne sw co ew gt ge lt le pr``, ``and``,
``or``, ``not``, parentheses, string / number / boolean / null literals.
String comparisons ignore case, as Okta's do for logins and group names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\() | (?P<rparen>\)) |
        (?P<string>"(?:[^"\\]|\\.)*") |
        (?P<word>[A-Za-z_][\w.\-]*) |
        (?P<number>-?\d+(?:\.\d+)?)
    )""",
    re.VERBOSE,
)
_OPERATORS = {"eq", "ne", "sw", "co", "ew", "gt", "ge", "lt", "le"}


class FilterError(ValueError):
    """The expression is not one this sandbox (or Okta) understands."""


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"unexpected character at {pos}: {text[pos : pos + 10]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def _resolve(item: Any, path: str) -> list[Any]:
    """All values at a dotted path; lists fan out (``target.id`` matches any target)."""
    values = [item]
    for part in path.split("."):
        found: list[Any] = []
        for value in values:
            for element in value if isinstance(value, list) else [value]:
                if isinstance(element, dict) and part in element:
                    found.append(element[part])
        values = found
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if actual is None:
        return op == "ne" and expected is not None
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
    try:
        match op:
            case "eq":
                return bool(actual == expected)
            case "ne":
                return bool(actual != expected)
            case "sw":
                return isinstance(actual, str) and actual.startswith(expected)
            case "co":
                return isinstance(actual, str) and expected in actual
            case "ew":
                return isinstance(actual, str) and actual.endswith(expected)
            case "gt":
                return bool(actual > expected)
            case "ge":
                return bool(actual >= expected)
            case "lt":
                return bool(actual < expected)
            case "le":
                return bool(actual <= expected)
    except TypeError:
        return False
    raise FilterError(f"unknown operator {op!r}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek_word(self) -> str:
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "word":
            return self.tokens[self.pos][1].lower()
        return ""

    def take(self, kind: str) -> str:
        if self.pos >= len(self.tokens) or self.tokens[self.pos][0] != kind:
            raise FilterError(f"expected {kind} at token {self.pos}")
        self.pos += 1
        return self.tokens[self.pos - 1][1]

    def parse(self) -> Predicate:
        predicate = self.expr()
        if self.pos != len(self.tokens):
            raise FilterError(f"unexpected token {self.tokens[self.pos][1]!r}")
        return predicate

    def expr(self) -> Predicate:
        terms = [self.term()]
        while self.peek_word() == "or":
            self.pos += 1
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else (lambda item: any(t(item) for t in terms))

    def term(self) -> Predicate:
        factors = [self.factor()]
        while self.peek_word() == "and":
            self.pos += 1
            factors.append(self.factor())
        if len(factors) == 1:
            return factors[0]
        return lambda item: all(f(item) for f in factors)

    def factor(self) -> Predicate:
        if self.peek_word() == "not":
            self.pos += 1
            inner = self.factor()
            return lambda item: not inner(item)
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "lparen":
            self.pos += 1
            inner = self.expr()
            self.take("rparen")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        path = self.take("word")
        op = self.take("word").lower()
        if op == "pr":
            return lambda item: any(v is not None for v in _resolve(item, path))
        if op not in _OPERATORS:
            raise FilterError(f"unknown operator {op!r}")
        expected = self.literal()
        return lambda item: any(_compare(op, v, expected) for v in _resolve(item, path))

    def literal(self) -> Any:
        if self.pos >= len(self.tokens):
            raise FilterError("missing value")
        kind, raw = self.tokens[self.pos]
        self.pos += 1
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", raw[1:-1])
        if kind == "number":
            return float(raw) if "." in raw else int(raw)
        if kind == "word" and raw.lower() in {"true", "false", "null"}:
            return {"true": True, "false": False, "null": None}[raw.lower()]
        raise FilterError(f"expected a value, got {raw!r}")


def compile_filter(text: str) -> Predicate:
    """Compile ``text`` into a predicate; raises :class:`FilterError` if malformed."""
    return _Parser(text).parse()
