"""Judge a MongoDB filter in memory, with the server's semantics, so both sides agree.

``matches(doc, filt)`` answers what ``collection.find(filt)`` would answer for ``doc``:
dotted paths reach into subdocuments and through arrays of subdocuments, a field holding an
array matches when the array *or one of its elements* matches, ``{"a": None}`` matches a
missing field, ``$gt``/``$lt`` only compare values of the same BSON type bracket (numbers
with numbers, strings with strings, …), ``True`` is not ``1``, and embedded documents compare
field by field in order. :class:`~ptdry.db.selector.Selector` builds on it: the filter it sends
to the server is the filter it judges objects with.

``validate_filter(filt)`` refuses what ptdry never sends to a server: server-side JavaScript
(``$where``, ``$function``, ``$accumulator``, BSON ``Code`` values) anywhere in the filter, and
operators this module cannot judge. Example:

    >>> matches({"a": [{"b": 1}, {"b": 5}]}, {"a.b": {"$gt": 3}})
    True
    >>> matches({"a": True}, {"a": 1})
    False
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from ptdry.core.serialize import short_repr as _short
from ptdry.db.bson_order import (
    _NUMBER,
    _UNKNOWN,
    MISSING,
    _bracket,
    _flags_from_text,
    _is_nan,
    _is_regex,
    _number,
    _regex_identity,
    _type_test,
    compare,
)
from ptdry.errors import SelectorError

__all__ = ["FIELD_OPERATORS", "LOGICAL_OPERATORS", "compile_filter", "matches", "refuse_javascript", "validate_filter"]

#: Operators allowed on a field: ``{"field": {"$op": value}}``.
FIELD_OPERATORS = (
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex", "$options",
    "$not", "$all", "$size", "$elemMatch", "$type",
)  # fmt: skip
#: Operators allowed at the top of a filter (or of an ``$elemMatch`` document).
LOGICAL_OPERATORS = ("$and", "$or", "$nor", "$comment")
#: Operators that run JavaScript in the server: refused everywhere.
JS_OPERATORS = ("$where", "$function", "$accumulator")

_SUPPORTED = ", ".join(LOGICAL_OPERATORS + FIELD_OPERATORS)

Predicate = Callable[[Any], bool]


# -- public API ------------------------------------------------------------------------------
def validate_filter(filt: Any) -> dict:
    """Check that ``filt`` is a filter ptdry sends to a server, and return it.

    Raises:
        SelectorError: ``filt`` is not a dict, uses server-side JavaScript anywhere
            (``$where``, ``$function``, ``$accumulator``), uses an operator this module
            cannot judge, or is malformed (``$in`` without a list, …).
    """
    compile_filter(filt)
    return filt


def compile_filter(filt: Any) -> Callable[[Mapping[str, Any]], bool]:
    """Validate ``filt`` once and return ``predicate(doc) -> bool`` (see :func:`matches`)."""
    if not isinstance(filt, Mapping):
        raise SelectorError(
            f"a filter must be a dict like {{'config.lr': {{'$lt': 0.01}}}}; received "
            f"{type(filt).__qualname__}: {_short(filt)}"
        )
    refuse_javascript(filt, "filter")
    return _compile_query(filt, "filter")


def matches(doc: Mapping[str, Any], filt: Mapping[str, Any]) -> bool:
    """True if ``collection.find(filt)`` would return ``doc`` (MongoDB semantics).

    Raises:
        SelectorError: as :func:`validate_filter`.
    """
    return compile_filter(filt)(doc)


# -- refusing JavaScript ---------------------------------------------------------------------
def refuse_javascript(value: Any, where: str) -> None:
    """Raise :class:`SelectorError` if ``$where``, ``$function``, ``$accumulator`` or a BSON
    ``Code`` value appears anywhere in ``value`` (a filter, a sort, a projection)."""
    stack = [(value, where)]
    while stack:
        v, at = stack.pop()
        if isinstance(v, Mapping):
            for k, sub in v.items():
                if k in JS_OPERATORS:
                    raise SelectorError(
                        f"{k} in {at}: server-side JavaScript is not allowed; express the "
                        "condition with query operators ($eq, $gt, $in, $regex, $and, …)"
                    )
                stack.append((sub, f"{at}.{k}"))
        elif isinstance(v, (list, tuple)):
            stack.extend((sub, f"{at}[{i}]") for i, sub in enumerate(v))
        elif type(v).__name__ == "Code" and type(v).__module__.startswith("bson"):
            raise SelectorError(
                f"a JavaScript Code value in {at}: server-side JavaScript is not allowed; express "
                "the condition with query operators"
            )


# -- compiling -------------------------------------------------------------------------------
def _compile_query(filt: Mapping[str, Any], at: str) -> Predicate:
    """A predicate over a document for a whole filter (an implicit AND of its keys)."""
    parts: list[Predicate] = []
    for key, cond in filt.items():
        if not isinstance(key, str):
            raise SelectorError(f"filter keys must be strings; received {key!r} in {at}")
        if key.startswith("$"):
            parts.append(_compile_logical(key, cond, at))
        else:
            parts.append(_compile_field(key, cond, f"{at}[{key!r}]"))
    return _all_of(parts)


def _compile_logical(op: str, cond: Any, at: str) -> Predicate:
    if op == "$comment":
        return lambda doc: True
    if op not in ("$and", "$or", "$nor"):
        kind = "a field operator; put it under a field name" if op in FIELD_OPERATORS else "unknown"
        raise SelectorError(f"operator {op} in {at} is {kind}; supported operators: {_SUPPORTED}")
    if not isinstance(cond, (list, tuple)) or not cond:
        raise SelectorError(f"{op} in {at} needs a non-empty list of filters; received {_short(cond)}")
    subs = []
    for i, sub in enumerate(cond):
        if not isinstance(sub, Mapping):
            raise SelectorError(f"{op}[{i}] in {at} must be a filter dict; received {_short(sub)}")
        subs.append(_compile_query(sub, f"{at}.{op}[{i}]"))
    if op == "$and":
        return _all_of(subs)
    if op == "$or":
        return lambda doc: any(p(doc) for p in subs)
    return lambda doc: not any(p(doc) for p in subs)


def _is_operator_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in value)


def _compile_field(path: str, cond: Any, at: str) -> Predicate:
    parts = path.split(".")
    if any(not p for p in parts):
        raise SelectorError(f"field path {path!r} in {at} has an empty segment")
    field_pred = _compile_condition(cond, at)
    return lambda doc: field_pred(_lookup(doc, parts))


def _compile_condition(cond: Any, at: str) -> Callable[[list], bool]:
    """A predicate over the candidate values of one path (see :func:`_lookup`)."""
    if not _is_operator_dict(cond):
        return _expanding(_equality(cond, at, implicit=True))
    preds: list[Callable[[list], bool]] = []
    ops = dict(cond)
    if "$options" in ops and "$regex" not in ops:
        raise SelectorError(f"$options in {at} needs a $regex next to it")
    for op, arg in ops.items():
        if not isinstance(op, str) or not op.startswith("$"):
            raise SelectorError(
                f"{at} mixes operators and field names ({op!r}); write either "
                "{'$op': value, …} or a plain subdocument"
            )
        if op == "$options":
            continue
        preds.append(_compile_operator(op, arg, ops, f"{at}.{op}"))
    return _all_of(preds)


def _compile_operator(op: str, arg: Any, ops: Mapping[str, Any], at: str) -> Callable[[list], bool]:
    if op == "$eq":
        return _expanding(_equality(arg, at, implicit=False))
    if op == "$ne":
        return _negated(_expanding(_equality(arg, at, implicit=False)))
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _expanding(_comparison(op, arg, at))
    if op in ("$in", "$nin"):
        pred = _expanding(_membership(arg, at))
        return pred if op == "$in" else _negated(pred)
    if op == "$exists":
        if not isinstance(arg, (bool, int, float)):
            raise SelectorError(f"{at} needs true or false; received {_short(arg)}")
        return (lambda c: _exists(c)) if arg else (lambda c: not _exists(c))
    if op == "$regex":
        return _expanding(_regex_test(_regex(arg, ops.get("$options"), at)))
    if op == "$not":
        if _is_regex(arg):
            return _negated(_expanding(_regex_test(_regex(arg, None, at))))
        if not isinstance(arg, Mapping) or not arg or not _is_operator_dict(arg):
            raise SelectorError(f"{at} needs an operator dict or a regex; received {_short(arg)}")
        return _negated(_compile_condition(arg, at))
    if op == "$all":
        return _compile_all(arg, at)
    if op == "$size":
        n = _whole_number(arg, at)
        return lambda cands: any(isinstance(v, (list, tuple)) and len(v) == n for v, _ in cands)
    if op == "$elemMatch":
        elem = _compile_elem_match(arg, at)
        return lambda cands: any(
            isinstance(v, (list, tuple)) and any(elem(e) for e in v) for v, _ in cands
        )
    if op == "$type":
        return _expanding(_type_test(arg, at))
    kind = "a logical operator; use it at the top of a filter" if op in LOGICAL_OPERATORS else "unknown"
    raise SelectorError(f"operator {op} in {at} is {kind}; supported operators: {_SUPPORTED}")


def _compile_all(arg: Any, at: str) -> Callable[[list], bool]:
    if not isinstance(arg, (list, tuple)):
        raise SelectorError(f"{at} needs a list; received {_short(arg)}")
    if not arg:
        return lambda cands: False  # MongoDB: $all of nothing matches nothing
    preds = []
    for i, item in enumerate(arg):
        if isinstance(item, Mapping) and set(item) == {"$elemMatch"}:
            preds.append(_compile_operator("$elemMatch", item["$elemMatch"], item, f"{at}[{i}]"))
        else:
            preds.append(_expanding(_equality(item, f"{at}[{i}]", implicit=True)))
    return _all_of(preds)


def _compile_elem_match(arg: Any, at: str) -> Predicate:
    """A predicate over one array element."""
    if not isinstance(arg, Mapping) or not arg:
        raise SelectorError(f"{at} needs a non-empty dict; received {_short(arg)}")
    keys = [k for k in arg if isinstance(k, str)]
    value_form = all(k.startswith("$") and k not in LOGICAL_OPERATORS for k in keys)
    if value_form:
        # {"$gt": 1, "$lt": 5}: the operators test the element itself, not its elements.
        cond = _compile_condition(arg, at)
        return lambda e: cond([(e, False)])
    if any(k.startswith("$") and k not in LOGICAL_OPERATORS for k in keys):
        raise SelectorError(f"{at} mixes field operators with field names; use one form")
    query = _compile_query(arg, at)
    return lambda e: isinstance(e, Mapping) and query(e)


# -- candidate values of a path ----------------------------------------------------------------
def _lookup(doc: Any, parts: list[str]) -> list[tuple[Any, bool]]:
    """The values a dotted path reaches, as MongoDB sees them.

    Each candidate is ``(value, expand)``; ``expand`` says whether an array value also offers
    its elements to the operators (not when the last step was an array index, as in
    ``"a.0"``). A path that stops short gives ``MISSING``; array elements that are not
    documents give nothing (``"a.b"`` on ``[1, 2]`` has no candidates at all).
    """
    out: list[tuple[Any, bool]] = []
    _walk(doc, parts, 0, out, True)
    return out


def _walk(value: Any, parts: list[str], i: int, out: list, expand: bool) -> None:
    if i == len(parts):
        out.append((value, expand))
        return
    key = parts[i]
    if isinstance(value, Mapping):
        if key in value:
            _walk(value[key], parts, i + 1, out, True)
        else:
            out.append((MISSING, False))
        return
    if isinstance(value, (list, tuple)):
        if key.isdigit() and key.isascii():
            index = int(key)
            if index < len(value):
                _walk(value[index], parts, i + 1, out, i + 1 < len(parts))
            else:
                out.append((MISSING, False))
        for element in value:
            if isinstance(element, Mapping):
                _walk(element, parts, i, out, True)
        return
    out.append((MISSING, False))


def _exists(cands: list) -> bool:
    return any(v is not MISSING for v, _ in cands)


# -- candidate-level combinators ---------------------------------------------------------------
def _expanding(pred: Predicate) -> Callable[[list], bool]:
    """Lift a single-value predicate: true if a candidate, or an element of an array candidate
    (one level deep), satisfies it."""

    def test(cands: list) -> bool:
        for v, expand in cands:
            if pred(v):
                return True
            if expand and isinstance(v, (list, tuple)):
                if any(pred(e) for e in v):
                    return True
        return False

    return test


def _negated(pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda x: not pred(x)


def _all_of(preds: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    if len(preds) == 1:
        return preds[0]
    return lambda x: all(p(x) for p in preds)


# -- single-value predicates -------------------------------------------------------------------
def _equality(arg: Any, at: str, implicit: bool) -> Predicate:
    if _is_regex(arg):
        if implicit:  # {"a": /x/} and $in/$all items: a pattern match
            return _regex_test(_regex(arg, None, at))
        flags_pattern = _regex_identity(arg)  # {"$eq": /x/}: equal to a stored regex only
        return lambda v: _is_regex(v) and _regex_identity(v) == flags_pattern
    _check_value(arg, at)
    if arg is None:
        return lambda v: v is None or v is MISSING
    bracket = _bracket(arg)
    return lambda v: v is not MISSING and _bracket(v) == bracket and compare(v, arg) == 0


def _membership(arg: Any, at: str) -> Predicate:
    if not isinstance(arg, (list, tuple)):
        raise SelectorError(f"{at} needs a list of values; received {_short(arg)}")
    tests = []
    for i, item in enumerate(arg):
        if _is_operator_dict(item):
            raise SelectorError(f"{at}[{i}] is an operator dict; $in/$nin take plain values")
        tests.append(_equality(item, f"{at}[{i}]", implicit=True))
    return lambda v: any(t(v) for t in tests)


def _comparison(op: str, arg: Any, at: str) -> Predicate:
    if _is_regex(arg):
        raise SelectorError(f"{at} cannot compare with a regex; use $regex")
    _check_value(arg, at)
    bracket = _bracket(arg)
    inclusive = op in ("$gte", "$lte")
    sign = 1 if op in ("$gt", "$gte") else -1
    arg_nan = bracket == _NUMBER and _is_nan(_number(arg))

    def test(v: Any) -> bool:
        if v is MISSING:
            return arg is None and inclusive  # $gte/$lte null match a missing field
        if _bracket(v) != bracket:
            return False
        if bracket == _NUMBER and (arg_nan or _is_nan(_number(v))):
            return inclusive and arg_nan and _is_nan(_number(v))  # NaN only reaches NaN
        c = compare(v, arg)
        return c == sign or (inclusive and c == 0)

    return test


def _regex(arg: Any, options: Any, at: str) -> re.Pattern:
    if isinstance(arg, re.Pattern):
        pattern, flags = arg.pattern, arg.flags & (re.I | re.M | re.S | re.X)
    elif _is_regex(arg):  # bson.regex.Regex
        pattern, flags = arg.pattern, _flags_from_text(arg.flags, at) if isinstance(arg.flags, str) else arg.flags
    elif isinstance(arg, str):
        pattern, flags = arg, 0
    else:
        raise SelectorError(f"{at} needs a pattern string or re.compile(...); received {_short(arg)}")
    if options is not None:
        if not isinstance(options, str):
            raise SelectorError(f"$options next to {at} must be a string like 'i'; received {_short(options)}")
        flags |= _flags_from_text(options, at)
    if isinstance(pattern, bytes):
        raise SelectorError(f"{at} needs a text pattern; received bytes")
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise SelectorError(f"{at}: invalid regular expression {pattern!r}: {exc}") from None


def _regex_test(rx: re.Pattern) -> Predicate:
    return lambda v: isinstance(v, str) and rx.search(v) is not None


def _whole_number(arg: Any, at: str) -> int:
    if (
        isinstance(arg, bool)
        or not isinstance(arg, (int, float))
        or (isinstance(arg, float) and not arg.is_integer())
        or arg < 0
    ):
        raise SelectorError(f"{at} needs a non-negative whole number; received {_short(arg)}")
    return int(arg)


def _check_value(arg: Any, at: str) -> None:
    """Refuse operands whose meaning a server and this module might not share."""
    if _bracket(arg) == _UNKNOWN:
        raise SelectorError(
            f"{at}: cannot compare with a {type(arg).__qualname__} value ({_short(arg)}); "
            "use plain data (numbers, strings, bools, None, lists, dicts, datetimes)"
        )
    if isinstance(arg, Mapping):
        for k, v in arg.items():
            if _is_operator_dict(v):
                raise SelectorError(
                    f"{at}: a literal subdocument cannot hold operators ({k!r}: {_short(v)}); "
                    f"match fields one by one with dotted paths ('{k}.…')"
                )
            _check_value(v, f"{at}.{k}")
    elif isinstance(arg, (list, tuple)):
        for i, v in enumerate(arg):
            _check_value(v, f"{at}[{i}]")
