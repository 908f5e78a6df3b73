"""BSON value semantics for the in-memory matcher: ``$type`` codes and MongoDB's ordering.

Values fall into canonical type brackets in MongoDB's comparison order; values of different
brackets are never equal, and ``$gt``/``$lt`` only compare within one bracket.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
import numbers
import re
from typing import Any, Callable, Mapping

from ptdry.errors import SelectorError

__all__ = ["MISSING", "compare"]

Predicate = Callable[[Any], bool]


class _Missing:
    """A path that leads nowhere (compares like null, but does not "exist")."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


_FLAG_BITS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "u": 0}


def _flags_from_text(text: str, at: str) -> int:
    flags = 0
    for ch in text:
        if ch not in _FLAG_BITS:
            raise SelectorError(f"{at}: unknown regex option {ch!r}; use some of 'imsx'")
        flags |= _FLAG_BITS[ch]
    return flags


def _is_regex(v: Any) -> bool:
    return isinstance(v, re.Pattern) or (type(v).__name__ == "Regex" and type(v).__module__.startswith("bson"))


def _regex_identity(v: Any) -> tuple:
    if isinstance(v, re.Pattern):
        return (v.pattern, v.flags & (re.I | re.M | re.S | re.X))
    flags = v.flags if isinstance(v.flags, int) else _flags_from_text(v.flags, "regex")
    return (v.pattern, flags & (re.I | re.M | re.S | re.X))


# -- $type -----------------------------------------------------------------------------------
_TYPE_NAMES = {
    "double": 1, "string": 2, "object": 3, "array": 4, "binData": 5, "undefined": 6,
    "objectId": 7, "bool": 8, "date": 9, "null": 10, "regex": 11, "dbPointer": 12,
    "javascript": 13, "symbol": 14, "int": 16, "timestamp": 17, "long": 18, "decimal": 19,
    "minKey": -1, "maxKey": 127,
}  # fmt: skip
_NUMBER_CODES = frozenset({1, 16, 18, 19})


def _type_test(arg: Any, at: str) -> Predicate:
    items = arg if isinstance(arg, (list, tuple)) else [arg]
    if not items:
        raise SelectorError(f"{at} needs a type name or a list of them; received an empty list")
    codes: set[int] = set()
    for item in items:
        if item == "number":
            codes |= _NUMBER_CODES
        elif isinstance(item, str) and item in _TYPE_NAMES:
            codes.add(_TYPE_NAMES[item])
        elif isinstance(item, (int, float)) and not isinstance(item, bool) and item in _TYPE_NAMES.values():
            codes.add(int(item))
        else:
            raise SelectorError(
                f"{at}: unknown BSON type {item!r}; use one of 'number', "
                f"{', '.join(repr(n) for n in _TYPE_NAMES)} or their numbers"
            )
    return lambda v: v is not MISSING and _type_code(v) in codes


def _type_code(v: Any) -> int | None:
    if v is None:
        return 10
    if _is_bool(v):
        return 8
    name = type(v).__name__
    bson_type = type(v).__module__.startswith("bson")
    if bson_type and name == "Int64":
        return 18
    if isinstance(v, numbers.Integral):
        return 16 if -(2**31) <= int(v) < 2**31 else 18
    if isinstance(v, (float, numbers.Real)) and not isinstance(v, decimal.Decimal):
        return 1
    if isinstance(v, decimal.Decimal) or (bson_type and name == "Decimal128"):
        return 19
    if isinstance(v, str):
        return 2
    if isinstance(v, Mapping):
        return 3
    if isinstance(v, (list, tuple)):
        return 4
    if isinstance(v, (bytes, bytearray)) or (bson_type and name == "Binary"):
        return 5
    if bson_type:
        return {"ObjectId": 7, "Timestamp": 17, "MinKey": -1, "MaxKey": 127, "Regex": 11}.get(name)
    if isinstance(v, _dt.datetime):
        return 9
    if isinstance(v, re.Pattern):
        return 11
    return None


# -- BSON ordering ---------------------------------------------------------------------------
# Canonical type brackets in MongoDB's comparison order; values of different brackets are
# never equal, and $gt/$lt only compare within one bracket.
_MINKEY, _NULL, _NUMBER, _STRING, _OBJECT, _ARRAY, _BINARY = 0, 5, 10, 15, 20, 25, 30
_OBJECTID, _BOOL, _DATE, _TIMESTAMP, _REGEX, _MAXKEY, _UNKNOWN = 35, 40, 45, 47, 50, 100, 999


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool) or (type(v).__module__ == "numpy" and type(v).__name__ in ("bool_", "bool"))


def _bracket(v: Any) -> int:
    if v is None or v is MISSING:
        return _NULL
    if _is_bool(v):
        return _BOOL
    name = type(v).__name__
    if type(v).__module__.startswith("bson"):
        return {
            "Int64": _NUMBER, "Decimal128": _NUMBER, "ObjectId": _OBJECTID, "Binary": _BINARY,
            "Timestamp": _TIMESTAMP, "Regex": _REGEX, "MinKey": _MINKEY, "MaxKey": _MAXKEY,
            "SON": _OBJECT, "RawBSONDocument": _OBJECT, "DatetimeMS": _DATE,
        }.get(name, _UNKNOWN)  # fmt: skip
    if isinstance(v, (int, float, decimal.Decimal, numbers.Real)):
        return _NUMBER
    if isinstance(v, str):
        return _STRING
    if isinstance(v, Mapping):
        return _OBJECT
    if isinstance(v, (list, tuple)):
        return _ARRAY
    if isinstance(v, (bytes, bytearray)):
        return _BINARY
    if isinstance(v, _dt.datetime):
        return _DATE
    if isinstance(v, re.Pattern):
        return _REGEX
    return _UNKNOWN


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1: MongoDB's order of two values (type bracket first, then value)."""
    ba, bb = _bracket(a), _bracket(b)
    if ba != bb:
        return -1 if ba < bb else 1
    if ba == _NUMBER:
        return _compare_numbers(_number(a), _number(b))
    if ba == _STRING:
        return _cmp(a, b)
    if ba == _OBJECT:
        return _compare_pairs(list(a.items()), list(b.items()))
    if ba == _ARRAY:
        return _compare_pairs([("", x) for x in a], [("", x) for x in b])
    if ba == _BINARY:
        return _cmp(_binary_key(a), _binary_key(b))
    if ba == _BOOL:
        return _cmp(bool(a), bool(b))
    if ba == _DATE:
        return _cmp(_date_key(a), _date_key(b))
    if ba == _OBJECTID:
        return _cmp(a.binary, b.binary)
    if ba == _TIMESTAMP:
        return _cmp((a.time, a.inc), (b.time, b.inc))
    if ba == _REGEX:
        return _cmp(_regex_identity(a)[0], _regex_identity(b)[0]) or _cmp(_regex_identity(a)[1], _regex_identity(b)[1])
    return 0  # null, minKey, maxKey


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _compare_pairs(a: list, b: list) -> int:
    for (ka, va), (kb, vb) in zip(a, b):
        c = _cmp(_bracket(va), _bracket(vb)) or _cmp(ka, kb) or compare(va, vb)
        if c:
            return c
    return _cmp(len(a), len(b))


def _number(v: Any) -> Any:
    if type(v).__name__ == "Decimal128":
        return v.to_decimal()
    if isinstance(v, (int, float, decimal.Decimal)):
        return v
    return v.item() if hasattr(v, "item") else float(v)


def _compare_numbers(a: Any, b: Any) -> int:
    a_nan = _is_nan(a)
    b_nan = _is_nan(b)
    if a_nan or b_nan:  # NaN equals NaN and sorts below every other number
        return _cmp(not a_nan, not b_nan)
    if isinstance(a, decimal.Decimal) or isinstance(b, decimal.Decimal):
        a, b = _as_decimal(a), _as_decimal(b)
    return _cmp(a, b)


def _is_nan(x: Any) -> bool:
    if isinstance(x, float):
        return math.isnan(x)
    return isinstance(x, decimal.Decimal) and x.is_nan()


def _as_decimal(x: Any) -> decimal.Decimal:
    if isinstance(x, decimal.Decimal):
        return x
    if isinstance(x, float) and math.isinf(x):
        return decimal.Decimal("Infinity") if x > 0 else decimal.Decimal("-Infinity")
    return decimal.Decimal(x)


def _binary_key(v: Any) -> tuple:
    subtype = getattr(v, "subtype", 0)
    data = bytes(v)
    return (len(data), subtype, data)


def _date_key(v: Any) -> tuple:
    """Milliseconds since the epoch, as BSON stores dates (aware datetimes → UTC)."""
    if type(v).__name__ == "DatetimeMS":
        return (int(v),)
    if v.tzinfo is not None:
        v = v.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    delta = v - _dt.datetime(1970, 1, 1)
    return ((delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000,)


