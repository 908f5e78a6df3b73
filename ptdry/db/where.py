"""Parse ``ptdry runs --where``: a JSON Mongo filter, or a small expression language.

Grammar (``and`` binds tighter than ``or``; keywords are case-insensitive)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | comparison
    comparison := path op value | path ["not"] "in" list
    op         := "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "matches"
    value      := number | "quoted string" | 'quoted string' | true | false | null
                | an ISO date (2024-05-01, 2024-05-01T12:30) | bare-word | list
    list       := "[" [value ("," value)*] "]"
    path       := name ("." name)*        (names: letters, digits, "_")

Example:
    >>> parse_where("trainer.optimizer.lr < 1e-3 and status = completed",
    ...             aliases={"status": "status.state"}, prefix_unknown="config.")
    {'$and': [{'config.trainer.optimizer.lr': {'$lt': 0.001}}, {'status.state': 'completed'}]}
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Callable, Mapping

from ptdry.db.matcher import validate_filter
from ptdry.errors import SelectorError

__all__ = ["KNOWN_FIELDS", "parse_where", "resolve_path"]

#: Top-level fields of a stored run, used as they are (no ``prefix_unknown``).
KNOWN_FIELDS = frozenset(
    ["_id", "name", "version", "project", "tags", "status", "summary", "config", "created_at", "cls", "category"]
)

_OPERATORS = {"=": None, "==": None, "!=": "$ne", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "~": "$regex"}
_OP_LIST = "=, ==, !=, <, <=, >, >=, in, not in, ~, matches"
_KEYWORDS = {"and", "or", "not", "in", "matches"}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<op><=|>=|==|!=|=|<|>|~)
  | (?P<punct>[()\[\],])
  | (?P<string>"|')
  | (?P<word>[^\s()\[\],=<>!~"']+)
  | (?P<bad>.)
    """,
    re.X,
)
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*\Z")
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\Z")
#: Words made of a number's characters only (``1.2.3``, ``1e-3.5``, ``-.``): meant as numbers.
_NUMBER_LIKE = re.compile(r"[+-]?[\d.]*\d[\d.]*([eE][+-]?[\d.]*)?\Z|[+-]?\.?[eE]?\Z")
#: Words shaped like a date (``2024-13-01``, ``2024-05-01T25``): meant as dates.
_DATE_LIKE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}([T ][\d:.]*)?\Z")


class _Token:
    __slots__ = ("kind", "text", "value", "col")

    def __init__(self, kind: str, text: str, value: Any, col: int) -> None:
        self.kind, self.text, self.value, self.col = kind, text, value, col

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words

    def describe(self) -> str:
        return "the end of the expression" if self.kind == "end" else repr(self.text)


def parse_where(
    text: str,
    aliases: Mapping[str, str] = {},  # noqa: B006
    prefix_unknown: str = "",
    resolve: Callable[[str], str] | None = None,
) -> dict:
    """Turn a ``--where`` text into a validated MongoDB filter.

    Bare words that look like numbers or dates must be valid ones (``1e-3x`` and
    ``2024-13-01`` are errors, not text), and ``<``, ``<=``, ``>``, ``>=`` need a number, a
    date or a quoted string: nothing silently turns into a comparison of text.

    Args:
        text: a JSON filter (starting with ``{``) or an expression such as
            ``"trainer.optimizer.lr < 1e-3 and status = completed"``.
        aliases: field names mapped to stored paths (``{"status": "status.state"}``).
        prefix_unknown: put before paths that are neither aliases nor known top-level fields
            (``"config."``: ``lr`` means ``config.lr``).
        resolve: maps each path as written to the stored path instead of ``aliases`` and
            ``prefix_unknown`` (e.g. the runs table's column names).

    Raises:
        SelectorError: the text cannot be parsed (the message gives the column and what was
            expected) or the filter is refused (e.g. ``$where``).
    """
    if not isinstance(text, str):
        raise SelectorError(f"--where needs a text; received {type(text).__qualname__}")
    if text.lstrip().startswith("{"):
        return _parse_json(text)
    if not text.strip():
        return {}
    parser = _Parser(text, aliases, prefix_unknown, resolve)
    return validate_filter(parser.parse())


def _parse_json(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SelectorError(
            f"invalid JSON filter at column {exc.colno} (line {exc.lineno}): {exc.msg}"
        ) from None
    return validate_filter(data)


class _Parser:
    def __init__(self, text: str, aliases: Mapping[str, str], prefix: str, resolver: Callable[[str], str] | None) -> None:
        self.text = text
        self.aliases = aliases
        self.prefix = prefix
        self.resolver = resolver
        self.tokens = _tokenize(text)
        self.pos = 0

    # -- token stream ------------------------------------------------------------------------
    @property
    def tok(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> _Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def error(self, message: str, tok: _Token | None = None) -> SelectorError:
        tok = tok or self.tok
        return SelectorError(f"{message} at column {tok.col} in --where {self.text!r}")

    # -- grammar -----------------------------------------------------------------------------
    def parse(self) -> dict:
        result = self.or_expr()
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.tok.describe()}; expected 'and', 'or' or the end")
        return result

    def or_expr(self) -> dict:
        parts = [self.and_expr()]
        while self.tok.is_word("or"):
            self.advance()
            parts.append(self.and_expr())
        return _joined("$or", parts)

    def and_expr(self) -> dict:
        parts = [self.not_expr()]
        while self.tok.is_word("and"):
            self.advance()
            parts.append(self.not_expr())
        return _joined("$and", parts)

    def not_expr(self) -> dict:
        if self.tok.is_word("not"):
            self.advance()
            return {"$nor": [self.not_expr()]}
        if self.tok.text == "(" and self.tok.kind == "punct":
            opening = self.advance()
            inner = self.or_expr()
            if not (self.tok.kind == "punct" and self.tok.text == ")"):
                raise self.error(
                    f"expected ')' to close the '(' at column {opening.col}, found {self.tok.describe()}"
                )
            self.advance()
            return inner
        return self.comparison()

    def comparison(self) -> dict:
        tok = self.tok
        if tok.kind != "word" or tok.text.lower() in _KEYWORDS or not _PATH.match(tok.text):
            raise self.error(f"expected a field name (like lr or trainer.optimizer.lr), found {tok.describe()}")
        self.advance()
        path = self.resolve(tok.text)
        op_tok = self.tok
        if op_tok.is_word("not"):
            self.advance()
            if not self.tok.is_word("in"):
                raise self.error(f"expected 'in' after 'not' (after {tok.text!r}), found {self.tok.describe()}")
            self.advance()
            return {path: {"$nin": self.list_value(op_tok)}}
        if op_tok.is_word("in"):
            self.advance()
            return {path: {"$in": self.list_value(op_tok)}}
        if op_tok.is_word("matches") or op_tok.kind == "op":
            self.advance()
            op = "~" if op_tok.is_word("matches") else op_tok.text
            value = self.value(op_tok)
            if op in ("<", "<=", ">", ">=") and self.tokens[self.pos - 1].kind == "word" and isinstance(value, str):
                what = "is not a valid number or date" if value[:1] in "0123456789+-." else "is a word"
                raise self.error(
                    f"{op!r} compares numbers or dates, and {value!r} {what} (quote it to compare text)",
                    self.tokens[self.pos - 1],
                )
            if op == "~":
                return {path: {"$regex": self.pattern(value, op_tok)}}
            mongo_op = _OPERATORS[op]
            return {path: value if mongo_op is None else {mongo_op: value}}
        raise self.error(f"expected an operator ({_OP_LIST}) after {tok.text!r}, found {op_tok.describe()}", op_tok)

    def resolve(self, path: str) -> str:
        if self.resolver is not None:
            return self.resolver(path)
        return resolve_path(path, self.aliases, self.prefix)

    def value(self, after: _Token) -> Any:
        tok = self.tok
        if tok.kind == "punct" and tok.text == "[":
            return self.list_value(after)
        if tok.kind == "string":
            self.advance()
            return tok.value
        if tok.kind == "word" and tok.text.lower() not in _KEYWORDS:
            self.advance()
            try:
                return _word_value(tok.text)
            except ValueError as exc:
                raise self.error(str(exc), tok) from None
        hint = " (quote it to mean the word)" if tok.kind == "word" else ""
        raise self.error(f"expected a value after {after.text!r}, found {tok.describe()}{hint}")

    def list_value(self, after: _Token) -> list:
        if not (self.tok.kind == "punct" and self.tok.text == "["):
            raise self.error(f"expected a list like [1, 2] after {after.text!r}, found {self.tok.describe()}")
        opening = self.advance()
        items: list[Any] = []
        if self.tok.kind == "punct" and self.tok.text == "]":
            self.advance()
            return items
        while True:
            items.append(self.value(opening if not items else self.tokens[self.pos - 1]))
            if self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                continue
            if self.tok.kind == "punct" and self.tok.text == "]":
                self.advance()
                return items
            raise self.error(f"expected ',' or ']' in the list opened at column {opening.col}, found {self.tok.describe()}")

    def pattern(self, value: Any, op_tok: _Token) -> str:
        if not isinstance(value, str):
            raise self.error(f"{op_tok.text!r} needs a pattern (a string); received {value!r}", op_tok)
        try:
            re.compile(value)
        except re.error as exc:
            raise self.error(f"invalid regular expression {value!r} ({exc})", self.tokens[self.pos - 1]) from None
        return value


def resolve_path(path: str, aliases: Mapping[str, str] = {}, prefix_unknown: str = "") -> str:  # noqa: B006
    """The stored field a ``--where`` / ``--sort`` name stands for: an alias, a known top-level
    field (``summary.val.loss``), or ``prefix_unknown`` + the name (``lr`` → ``config.lr``).

    Raises:
        SelectorError: ``path`` is not names of letters, digits and ``_`` joined by dots.
    """
    if not _PATH.match(path):
        raise SelectorError(f"expected a field name like lr or trainer.optimizer.lr; received {path!r}")
    first, _, rest = path.partition(".")
    if path in aliases:
        return aliases[path]
    if first in KNOWN_FIELDS:
        return path
    if first in aliases:
        return f"{aliases[first]}.{rest}" if rest else aliases[first]
    return prefix_unknown + path


def _joined(op: str, parts: list[dict]) -> dict:
    if len(parts) == 1:
        return parts[0]
    flat: list[dict] = []
    for part in parts:
        flat += part[op] if set(part) == {op} else [part]
    return {op: flat}


def _word_value(text: str) -> Any:
    lower = text.lower()
    if lower in ("true", "false"):
        return lower == "true"
    if lower in ("null", "none"):
        return None
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if _DATE.match(text):
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a valid date ({exc}; quote it to mean the text)") from None
    if _DATE_LIKE.match(text):
        raise ValueError(f"{text!r} is not a valid date (use 2024-05-01 or 2024-05-01T12:30; quote it to mean the text)")
    if _NUMBER_LIKE.match(text):
        raise ValueError(f"{text!r} is not a valid number (like 3, -2.5 or 1e-3; quote it to mean the text)")
    return text


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m is not None  # the pattern ends with a catch-all
        kind = m.lastgroup
        col = pos + 1
        if kind == "space":
            pos = m.end()
            continue
        if kind == "string":
            value, pos = _read_string(text, pos)
            tokens.append(_Token("string", text[col - 1 : pos], value, col))
            continue
        if kind == "bad":
            raise SelectorError(f"unexpected character {m.group()!r} at column {col} in --where {text!r}")
        tokens.append(_Token(kind, m.group(), None, col))
        pos = m.end()
    tokens.append(_Token("end", "", None, len(text) + 1))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    escapes = {"n": "\n", "t": "\t"}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(escapes.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise SelectorError(f"unterminated string starting at column {start + 1} in --where {text!r}")
